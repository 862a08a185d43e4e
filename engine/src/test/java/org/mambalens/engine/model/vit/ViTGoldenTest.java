package org.mambalens.engine.model.vit;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * ViTForImageClassification against transformers (weights-tools/reference/vit_fixtures.py, and the bundled trained
 * model), on the CPU and, where a GPU opens, on CUDA.
 */
class ViTGoldenTest {
    static Stream<Arguments> fixtures() {
        return Fixtures.onEveryDevice("vit/vit_small", "vit/vit_gray_odd", "trained/vit-fashion");
    }

    static Stream<Arguments> traced() {
        return Fixtures.onEveryDevice("vit/vit_small", "vit/vit_gray_odd");
    }

    static ImageClassifier load(Device device, String name) {
        if (device == Device.CUDA) GpuRequired.check();
        ImageClassifier model = Models.loadImageClassifier(Fixtures.modelDir(name), device, Precision.F32);
        assertThat(model).isInstanceOf(ViTModel.class);
        return model;
    }

    /** One image at a time and all of them in one batch. */
    @ParameterizedTest
    @MethodSource("fixtures")
    void logitsMatchTransformersOneByOneAndInABatch(Device device, String name) {
        Path dir = Fixtures.golden().resolve(name);
        Npy.Array expected = Npy.readFloat32(dir.resolve("logits.npy"));
        try (ImageClassifier model = load(device, name)) {
            float[][] images = Fixtures.images(name);
            assertThat(expected.shape()).containsExactly(images.length, model.numClasses());
            assertThat(Fixtures.relativeError(Fixtures.classifyAll(model, Npy.readFloat32(dir.resolve("pixels.npy")), null), expected.data())).isLessThan(1e-4);
            assertThat(Fixtures.relativeError(Fixtures.flatten(model.classifyBatch(images)), expected.data())).as("batch").isLessThan(1e-4);
        }
    }

    @ParameterizedTest
    @MethodSource("traced")
    void attentionMatchesTransformers(Device device, String name) {
        Path dir = Fixtures.golden().resolve(name);
        try (ImageClassifier model = load(device, name)) {
            TraceRecorder trace = TraceRecorder.allLayers();
            model.classify(Fixtures.images(name)[0], trace);
            int last = ((ViTModel) model).config().layers() - 1;
            for (int layer : new int[]{0, last}) {
                Npy.Array attn = Npy.readFloat32(dir.resolve("attn_" + layer + ".npy"));
                assertThat(trace.layer(layer, AttentionTrace.class).heads()).isEqualTo(attn.dim(0));
                assertThat(Fixtures.relativeError(trace.layer(layer, AttentionTrace.class).probs(), attn.data())).as("layer %d", layer).isLessThan(1e-5);
            }
        }
    }
}
