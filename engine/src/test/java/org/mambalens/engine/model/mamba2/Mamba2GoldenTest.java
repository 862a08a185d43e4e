package org.mambalens.engine.model.mamba2;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.SsdTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The engine against transformers' Mamba2ForCausalLM on the same safetensors (weights-tools/reference/
 * mamba2_fixtures.py): one group, F32, tied head; two groups, BF16, biases, conv kernel 3, a Δ limit. Each
 * test runs on the CPU and, where a GPU can be opened, on CUDA (skipped with the reason otherwise).
 */
class Mamba2GoldenTest {
    static final String[] CONFIGS = {"mamba2_f32", "mamba2_groups_bf16"};

    static Path dir(String name) {
        return Fixtures.golden().resolve("mamba2/" + name);
    }

    /** Every fixture on every device. */
    static Stream<Arguments> cases() {
        return Stream.of(Device.CPU, Device.CUDA).flatMap(device -> Stream.of(CONFIGS).map(name -> Arguments.of(device, name)));
    }

    static LanguageModel load(Device device, String name) {
        if (device == Device.CUDA) GpuRequired.check();
        LanguageModel model = Models.loadLanguageModel(dir(name), device, Precision.F32);
        assertThat(model).isInstanceOf(Mamba2Model.class);
        assertThat(model.onGpu()).isEqualTo(device == Device.CUDA);
        return model;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void logitsAndMixerInternalsMatchTransformers(Device device, String name) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        try (LanguageModel model = load(device, name)) {
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = model.forward(Fixtures.ints(ref.get("token_ids")), trace);
            assertThat(Fixtures.relativeError(logits, Npy.readFloat32(dir(name).resolve("logits.npy")).data())).isLessThan(1e-4);
            int checked = 0;
            for (int layer = 0; layer < model.layers(); layer++) {
                if (!Files.exists(dir(name).resolve("trace_" + layer + "_dt.npy"))) continue;
                SsdTrace t = trace.layer(layer, SsdTrace.class);
                for (var e : Map.of("dt", t.delta(), "B", t.b(), "C", t.c(), "x", t.x(), "y", t.y()).entrySet()) {
                    float[] expected = Npy.readFloat32(dir(name).resolve("trace_" + layer + "_" + e.getKey() + ".npy")).data();
                    assertThat(Fixtures.relativeError(e.getValue(), expected)).as(name + " layer " + layer + " " + e.getKey()).isLessThan(1e-5);
                }
                checked++;
            }
            assertThat(checked).isEqualTo(2);
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void greedyIdsMatchTransformers(Device device, String name) {
        try (LanguageModel model = load(device, name)) {
            Fixtures.assertGreedyIdsMatch(model, dir(name));
        }
    }

    /** A prompt prefilled in two parts (one of them a single token), then one token at a time (replayed as a graph on a GPU). */
    @ParameterizedTest
    @MethodSource("cases")
    void decodingEqualsTheForwardPass(Device device, String name) {
        int[] ids = Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids"));
        try (LanguageModel model = load(device, name)) {
            Fixtures.assertDecodeEqualsForward(model, ids, 1, 9);
        }
    }

    /** A prompt longer than one prefill chunk gives the logits of the whole-sequence forward pass. */
    @ParameterizedTest
    @MethodSource("cases")
    void longPromptsArePrefilledInChunks(Device device, String name) {
        try (LanguageModel model = load(device, name)) {
            int[] ids = new int[Mamba2Model.PREFILL_CHUNK + 37];
            for (int i = 0; i < ids.length; i++) ids[i] = (i * 31 + 7) % model.vocabSize();
            int v = model.vocabSize();
            float[] all = model.forward(ids, null);
            float[] last = model.prefill(ids, model.newState());
            assertThat(Fixtures.relativeError(last, Arrays.copyOfRange(all, (ids.length - 1) * v, ids.length * v))).isLessThan(1e-5);
        }
    }

    /** On a GPU, every recorded tensor (the conv's and the gated norm's too, which the reference does not hold) equals the CPU's. */
    @ParameterizedTest
    @ValueSource(strings = {"mamba2_f32", "mamba2_groups_bf16"})
    void gpuTracesEqualTheCpus(String name) {
        int[] ids = Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids"));
        try (LanguageModel gpu = load(Device.CUDA, name); LanguageModel cpu = load(Device.CPU, name)) {
            TraceRecorder g = TraceRecorder.allLayers(), c = TraceRecorder.allLayers();
            gpu.forward(ids, g);
            cpu.forward(ids, c);
            for (int layer = 0; layer < cpu.layers(); layer++) {
                SsdTrace a = g.layer(layer, SsdTrace.class), b = c.layer(layer, SsdTrace.class);
                var pairs = Map.of("delta", new float[][]{a.delta(), b.delta()}, "B", new float[][]{a.b(), b.b()}, "C", new float[][]{a.c(), b.c()},
                        "x", new float[][]{a.x(), b.x()}, "z", new float[][]{a.z(), b.z()}, "y", new float[][]{a.y(), b.y()},
                        "conv input", new float[][]{a.conv().input(), b.conv().input()}, "conv output", new float[][]{a.conv().output(), b.conv().output()},
                        "norm output", new float[][]{a.norm().output(), b.norm().output()});
                for (var e : pairs.entrySet()) {
                    assertThat(Fixtures.relativeError(e.getValue()[0], e.getValue()[1])).as(name + " layer " + layer + " " + e.getKey()).isLessThan(1e-5);
                }
                assertThat(a.a()).containsExactly(b.a());
                assertThat(a.d()).containsExactly(b.d());
                assertThat(a.conv().taps()).containsExactly(b.conv().taps());
                assertThat(a.conv().bias()).containsExactly(b.conv().bias());
                assertThat(a.norm().weight()).containsExactly(b.norm().weight());
            }
        }
    }
}
