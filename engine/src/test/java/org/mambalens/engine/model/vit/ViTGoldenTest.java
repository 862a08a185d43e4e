package org.mambalens.engine.model.vit;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;

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
            assertThat(expected.shape()).containsExactly(pixels.dim(0), model.numClasses());
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = Fixtures.classifyAll(model, pixels, trace);
            assertThat(Fixtures.relativeError(logits, expected.data())).isLessThan(1e-4);
            int last = ((ViTModel) model).config().layers() - 1;
            for (int layer : new int[]{0, last}) {
                Npy.Array attn = Npy.readFloat32(dir.resolve("attn_" + layer + ".npy"));
                assertThat(trace.layer(layer, AttentionTrace.class).heads()).isEqualTo(attn.dim(0));
                assertThat(Fixtures.relativeError(trace.layer(layer, AttentionTrace.class).probs(), attn.data())).as("layer %d", layer).isLessThan(1e-5);
            }
        }
    }
}
