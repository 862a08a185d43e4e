package org.mambalens.engine.model.griffin;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The engine against transformers' RecurrentGemmaForCausalLM on the same safetensors
 * (weights-tools/reference/recurrent_gemma_fixtures.py), on the CPU and, where one can be opened, a CUDA GPU.
 */
class GriffinGoldenTest {
    static Path dir(String name) {
        return Fixtures.golden().resolve("griffin/" + name);
    }

    static Stream<Device> devices() {
        return Stream.of(Device.CPU, Device.CUDA);
    }

    static Stream<Arguments> fixturesOnDevices() {
        return devices().flatMap(d -> Stream.of("griffin_f32", "griffin_bf16").map(name -> Arguments.of(name, d)));
    }

    static LanguageModel load(String name, Device device) {
        if (device == Device.CUDA) GpuRequired.check();
        return Models.loadLanguageModel(dir(name), device, Precision.F32);
    }

    @ParameterizedTest
    @MethodSource("fixturesOnDevices")
    void logitsRgLruOutputsAndAttentionMatchTransformers(String name, Device device) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        try (LanguageModel model = load(name, device)) {
            assertThat(model).isInstanceOf(GriffinModel.class);
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = model.forward(Fixtures.ints(ref.get("token_ids")), trace);
            assertThat(Fixtures.relativeError(logits, Npy.readFloat32(dir(name).resolve("logits.npy")).data())).isLessThan(1e-4);
            int lru = 0, attention = 0;
            for (int layer = 0; layer < model.layers(); layer++) {
                Path h = dir(name).resolve("lru_" + layer + ".npy"), probs = dir(name).resolve("attn_" + layer + ".npy");
                if (Files.exists(h)) {
                    assertThat(Fixtures.relativeError(trace.layer(layer, LruTrace.class).h(), Npy.readFloat32(h).data())).as(name + " layer " + layer).isLessThan(1e-5);
                    lru++;
                }
                if (Files.exists(probs)) {
                    assertThat(Fixtures.relativeError(trace.layer(layer, AttentionTrace.class).probs(), Npy.readFloat32(probs).data())).as(name + " layer " + layer).isLessThan(1e-4);
                    attention++;
                }
            }
            assertThat(lru).isEqualTo(2);
            assertThat(attention).isEqualTo(1);
        }
    }

    @ParameterizedTest
    @MethodSource("fixturesOnDevices")
    void greedyIdsMatchTransformers(String name, Device device) {
        try (LanguageModel model = load(name, device)) {
            Fixtures.assertGreedyIdsMatch(model, dir(name));
        }
    }

    /** A prefill chunk longer than the attention window (16), starting mid-sequence, then single steps across the window's edge. */
    @ParameterizedTest
    @MethodSource("devices")
    void decodingAcrossTheWindowEqualsTheForwardPass(Device device) {
        int[] ids = Fixtures.ints(Fixtures.json(dir("griffin_f32").resolve("reference.json")).get("token_ids"));
        try (LanguageModel model = load("griffin_f32", device)) {
            assertThat(((GriffinModel) model).config().window()).isLessThan(25);
            Fixtures.assertDecodeEqualsForward(model, ids, 5, 30);
        }
    }

    /** On a GPU: every traced tensor as the CPU records it, and a prompt longer than a prefill chunk, then a step, as the CPU runs them. */
    @Test
    void onAGpuTracesAndALongPromptMatchTheCpu() {
        try (LanguageModel gpu = load("griffin_f32", Device.CUDA); LanguageModel cpu = load("griffin_f32", Device.CPU)) {
            int[] ids = Fixtures.ints(Fixtures.json(dir("griffin_f32").resolve("reference.json")).get("token_ids"));
            TraceRecorder onGpu = TraceRecorder.allLayers(), onCpu = TraceRecorder.allLayers();
            assertThat(Fixtures.relativeError(gpu.forward(ids, onGpu), cpu.forward(ids, onCpu))).isLessThan(1e-4);
            for (int layer = 0; layer < cpu.layers(); layer++) {
                if (((GriffinModel) cpu).config().isAttention(layer)) {
                    assertThat(Fixtures.relativeError(onGpu.layer(layer, AttentionTrace.class).probs(), onCpu.layer(layer, AttentionTrace.class).probs())).as("probs %d", layer).isLessThan(1e-5);
                    continue;
                }
                LruTrace g = onGpu.layer(layer, LruTrace.class), c = onCpu.layer(layer, LruTrace.class);
                String where = " of layer " + layer;
                Map.<String, Function<LruTrace, float[]>>of("a", LruTrace::a, "b", LruTrace::b, "x", LruTrace::x, "h", LruTrace::h,
                        "gate", LruTrace::gate, "convInput", LruTrace::convInput, "convTaps", LruTrace::convTaps, "convBias", LruTrace::convBias)
                        .forEach((field, get) -> assertThat(Fixtures.relativeError(get.apply(g), get.apply(c))).as(field + where).isLessThan(1e-5));
            }
            int[] prompt = new Random(3).ints(GriffinModel.PREFILL_CHUNK + 90, 0, gpu.vocabSize()).toArray();
            var gs = gpu.newState();
            var cs = cpu.newState();
            assertThat(Fixtures.relativeError(gpu.prefill(prompt, gs), cpu.prefill(prompt, cs))).isLessThan(1e-4);
            assertThat(Fixtures.relativeError(gpu.step(7, gs), cpu.step(7, cs))).isLessThan(1e-4);
            assertThat(gs.position()).isEqualTo(prompt.length + 1);
        }
    }
}
