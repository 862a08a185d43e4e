package org.mambalens.engine.model.vim;

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
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Vision Mamba against the plain-PyTorch reference with official key names (weights-tools/reference/vim_fixtures.py,
 * and the bundled trained model), on the CPU and, where a GPU opens, on CUDA.
 */
class VimGoldenTest {
    static Stream<Arguments> fixtures() {
        return Fixtures.onEveryDevice("vim/vim_small", "vim/vim_gray_cls0", "trained/vim-fashion");
    }

    static Stream<Arguments> traced() {
        return Fixtures.onEveryDevice("vim/vim_small", "vim/vim_gray_cls0");
    }

    static ImageClassifier load(Device device, String name) {
        if (device == Device.CUDA) GpuRequired.check();
        ImageClassifier model = Models.loadImageClassifier(Fixtures.modelDir(name), device, Precision.F32);
        assertThat(model).isInstanceOf(VimModel.class);
        return model;
    }

    /** One image at a time and all of them in one batch (a smaller batch after it reuses the larger buffers). */
    @ParameterizedTest
    @MethodSource("fixtures")
    void logitsMatchTheReferenceOneByOneAndInABatch(Device device, String name) {
        Path dir = Fixtures.golden().resolve(name);
        float[] expected = Npy.readFloat32(dir.resolve("logits.npy")).data();
        try (ImageClassifier model = load(device, name)) {
            assertThat(Fixtures.relativeError(Fixtures.classifyAll(model, Npy.readFloat32(dir.resolve("pixels.npy")), null), expected)).isLessThan(1e-4);
            float[][] images = Fixtures.images(name);
            assertThat(Fixtures.relativeError(Fixtures.flatten(model.classifyBatch(images)), expected)).as("batch").isLessThan(1e-4);
        }
    }

    @ParameterizedTest
    @MethodSource("traced")
    void bothDirectionsMatchTheReference(Device device, String name) {
        Path dir = Fixtures.golden().resolve(name);
        try (ImageClassifier model = load(device, name)) {
            TraceRecorder trace = TraceRecorder.layers(Set.of(0));
            model.classify(Fixtures.images(name)[0], trace);
            for (TraceRecorder.Direction d : TraceRecorder.Direction.values()) {
                String tag = d == TraceRecorder.Direction.FORWARD ? "fwd" : "bwd";
                MixerTrace t = trace.layer(0, MambaLayerTrace.class).scan(d);
                assertThat(Fixtures.relativeError(t.delta(), Npy.readFloat32(dir.resolve("trace_0_" + tag + "_delta.npy")).data())).as(tag).isLessThan(1e-5);
                assertThat(Fixtures.relativeError(t.b(), Npy.readFloat32(dir.resolve("trace_0_" + tag + "_B.npy")).data())).as(tag).isLessThan(1e-5);
                assertThat(Fixtures.relativeError(t.c(), Npy.readFloat32(dir.resolve("trace_0_" + tag + "_C.npy")).data())).as(tag).isLessThan(1e-5);
            }
        }
    }
}
