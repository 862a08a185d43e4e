package org.mambalens.engine.model.vim;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/** Vision Mamba against the plain-PyTorch reference with official key names (weights-tools/reference/vim_fixtures.py). */
class VimGoldenTest {
    @ParameterizedTest
    @ValueSource(strings = {"vim_small", "vim_gray_cls0"})
    void logitsAndBothDirectionsMatchTheReference(String name) {
        Path dir = Fixtures.golden().resolve("vim/" + name);
        Npy.Array pixels = Npy.readFloat32(dir.resolve("pixels.npy"));
        Npy.Array expected = Npy.readFloat32(dir.resolve("logits.npy"));
        try (ImageClassifier model = Models.loadImageClassifier(dir)) {
            TraceRecorder trace = TraceRecorder.layers(Set.of(0));
            float[] logits = Fixtures.classifyAll(model, pixels, trace);
            assertThat(Fixtures.relativeError(logits, expected.data())).isLessThan(1e-4);
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
