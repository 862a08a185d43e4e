package org.mambalens.engine.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The bundled image classifiers against the PyTorch modules they were trained as: the Fashion-MNIST pair
 * (weights-tools/reference/train_fashion.py; logits of the first 16 test images) and the placed Fashion-MNIST pair
 * (train_fashion_placed.py; the first 8 test images, 64×64).
 */
class TrainedModelsTest {
    @ParameterizedTest
    @ValueSource(strings = {"vim-fashion", "vit-fashion", "vim-placed", "vit-placed"})
    void bundledClassifiersMatchTheirTrainingModules(String name) {
        Path ref = Fixtures.golden().resolve("trained/" + name);
        Npy.Array pixels = Npy.readFloat32(ref.resolve("pixels.npy"));
        Npy.Array expected = Npy.readFloat32(ref.resolve("logits.npy"));
        try (ImageClassifier model = Models.loadImageClassifier(Fixtures.repository().resolve("models/" + name))) {
            assertThat(Fixtures.relativeError(Fixtures.classifyAll(model, pixels, null), expected.data())).isLessThan(1e-4);
        }
    }
}
