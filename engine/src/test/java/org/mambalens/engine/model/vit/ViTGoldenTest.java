package org.mambalens.engine.model.vit;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/** ViTForImageClassification against transformers (weights-tools/reference/vit_fixtures.py). */
class ViTGoldenTest {
    @ParameterizedTest
    @ValueSource(strings = {"vit_small", "vit_gray_odd"})
    void logitsAndAttentionMatchTransformers(String name) {
        Path dir = Fixtures.golden().resolve("vit/" + name);
        Npy.Array pixels = Npy.readFloat32(dir.resolve("pixels.npy"));
        Npy.Array expected = Npy.readFloat32(dir.resolve("logits.npy"));
        try (ImageClassifier model = Models.loadImageClassifier(dir)) {
            int n = pixels.dim(0), size = pixels.data().length / n, k = model.numClasses();
            assertThat(expected.shape()).containsExactly(n, k);
            float[] logits = new float[n * k];
            TraceRecorder trace = TraceRecorder.allLayers();
            for (int i = 0; i < n; i++) {
                float[] out = model.classify(Arrays.copyOfRange(pixels.data(), i * size, (i + 1) * size), i == 0 ? trace : null);
                System.arraycopy(out, 0, logits, i * k, k);
            }
            assertThat(Fixtures.relativeError(logits, expected.data())).isLessThan(1e-4);
            int last = ((ViTModel) model).config().layers() - 1;
            for (int layer : new int[]{0, last}) {
                Npy.Array attn = Npy.readFloat32(dir.resolve("attn_" + layer + ".npy"));
                assertThat(trace.attention(layer).heads()).isEqualTo(attn.dim(0));
                assertThat(Fixtures.relativeError(trace.attention(layer).probs(), attn.data())).as("layer %d", layer).isLessThan(1e-5);
            }
        }
    }
}
