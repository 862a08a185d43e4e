package org.mambalens.engine.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The bundled Fashion-MNIST demo classifiers against the PyTorch modules they were trained as
 * (weights-tools/reference/train_fashion.py): logits of the first 16 test images.
 */
class TrainedModelsTest {
    @ParameterizedTest
    @ValueSource(strings = {"vim-fashion", "vit-fashion"})
    void bundledClassifiersMatchTheirTrainingModules(String name) {
        Path ref = Fixtures.golden().resolve("trained/" + name);
        Npy.Array pixels = Npy.readFloat32(ref.resolve("pixels.npy"));
        Npy.Array expected = Npy.readFloat32(ref.resolve("logits.npy"));
        try (ImageClassifier model = Models.loadImageClassifier(Fixtures.repository().resolve("models/" + name))) {
            assertThat(Fixtures.relativeError(Fixtures.classifyAll(model, pixels, null), expected.data())).isLessThan(1e-4);
        }
    }
}
