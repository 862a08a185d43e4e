package org.mambalens.engine.model.mamba;

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
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The engine against transformers' MambaForCausalLM on the same safetensors (weights-tools/reference/mamba_fixtures.py
 * and train_demo_lm.py made the expected values), on the CPU and, where a GPU opens, on CUDA (skipped with the
 * reason otherwise; scripts/device-cuda.sh runs them on the GPU machine, with every activation buffer poisoned).
 */
class MambaGoldenTest {
    static final String[] CONFIGS = {"mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16"};

    static Path dir(String name) {
        return Fixtures.golden().resolve(name);
    }

    static Stream<Arguments> withDemo() {
        return Fixtures.onEveryDevice("mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16", "demo");
    }

    static Stream<Arguments> configs() {
        return Fixtures.onEveryDevice(CONFIGS);
    }

    static Stream<Device> devices() {
        return Fixtures.devices();
    }

    static LanguageModel load(Device device, String name) {
        if (device == Device.CUDA) GpuRequired.check();
        LanguageModel model = Models.loadLanguageModel(Fixtures.modelDir(name), device, Precision.F32);
        assertThat(model).isInstanceOf(MambaModel.class);
        assertThat(model.onGpu()).isEqualTo(device == Device.CUDA);
        return model;
    }

    @ParameterizedTest
    @MethodSource("withDemo")
    void logitsMatchTransformers(Device device, String name) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        Npy.Array expected = Npy.readFloat32(dir(name).resolve("logits.npy"));
        try (LanguageModel model = load(device, name)) {
            float[] logits = model.forward(Fixtures.ints(ref.get("token_ids")), null);
            assertThat(expected.shape()).containsExactly(ref.get("token_ids").size(), model.vocabSize());
            assertThat(Fixtures.relativeError(logits, expected.data())).isLessThan(1e-4);
        }
    }

    @ParameterizedTest
    @MethodSource("withDemo")
    void greedyIdsMatchTransformers(Device device, String name) {
        try (LanguageModel model = load(device, name)) {
            Fixtures.assertGreedyIdsMatch(model, dir(name));
        }
    }

    /** A prompt prefilled in two parts, then one token at a time (on a GPU, replayed graphs): every row equals the forward pass. */
    @ParameterizedTest
    @MethodSource("configs")
    void stepByStepDecodeEqualsPrefill(Device device, String name) {
        int[] ids = Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids"));
        try (LanguageModel model = load(device, name)) {
            Fixtures.assertDecodeEqualsForward(model, ids, 3, 7);
        }
    }

    /** Four sequences stepped as one batch (on a GPU: the fused decode kernels, replayed) get the bits each gets alone. */
    @ParameterizedTest
    @MethodSource("configs")
    void aBatchDecodesEverySequenceAsAlone(Device device, String name) {
        try (LanguageModel model = load(device, name)) {
            Fixtures.assertBatchDecodesEachAsAlone(model, 4, 6, 11);
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void traceMatchesTheReferenceInternals(Device device, String name) {
        int[] ids = Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids"));
        try (LanguageModel model = load(device, name)) {
            int last = model.layers() - 1;
            TraceRecorder trace = TraceRecorder.layers(Set.of(0, last));
            model.forward(ids, trace);
            assertThat(trace.recordedLayers()).containsExactlyInAnyOrder(0, last);
            for (int layer : new int[]{0, last}) {
                MixerTrace t = trace.layer(layer, MambaLayerTrace.class).forward();
                assertThat(t.length()).isEqualTo(ids.length);
                check(name, layer, "delta", t.delta());
                check(name, layer, "B", t.b());
                check(name, layer, "C", t.c());
                check(name, layer, "s", t.s());
                check(name, layer, "u", t.u());
                check(name, layer, "z", t.z());
            }
        }
    }

    private static void check(String name, int layer, String key, float[] actual) {
        Npy.Array expected = Npy.readFloat32(dir(name).resolve("trace_" + layer + "_" + key + ".npy"));
        assertThat(Fixtures.relativeError(actual, expected.data())).as("layer %d %s", layer, key).isLessThan(1e-5);
    }

    @ParameterizedTest
    @MethodSource("devices")
    void aBadTokenIdIsRefusedBeforeAnythingRuns(Device device) {
        try (LanguageModel model = load(device, CONFIGS[0])) {
            LanguageModel.State state = model.newState();
            int[] ids = new int[1200];                       // spans three prefill chunks; the bad id is in the last
            ids[1100] = model.vocabSize();
            assertThatThrownBy(() -> model.prefill(ids, state)).hasMessageContaining("token id " + model.vocabSize() + " is outside the vocabulary");
            assertThat(state.position()).isZero();
        }
    }

    /** A prompt longer than two prefill chunks, then a step: the last rows as the whole-sequence forward gives them. */
    @ParameterizedTest
    @MethodSource("devices")
    void longPromptsArePrefilledInChunksWithTheSameResult(Device device) {
        try (LanguageModel model = load(device, CONFIGS[2])) {
            int[] ids = new Random(5).ints(2 * MambaModel.PREFILL_CHUNK + 37, 0, model.vocabSize()).toArray();
            int v = model.vocabSize(), n = ids.length - 1;
            float[] all = model.forward(ids, null);
            LanguageModel.State state = model.newState();
            float[] last = model.prefill(Arrays.copyOf(ids, n), state);
            assertThat(Fixtures.relativeError(last, Arrays.copyOfRange(all, (n - 1) * v, n * v))).isLessThan(1e-5);
            assertThat(Fixtures.relativeError(model.step(ids[n], state), Arrays.copyOfRange(all, n * v, (n + 1) * v))).isLessThan(1e-5);
            assertThat(state.position()).isEqualTo(ids.length);
        }
    }

    /** Every traced tensor on a GPU as the CPU records it: the fixture's prompt, then 300 tokens (a prompt the scan cuts into 4 chunks). */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {0, 300})
    void onAGpuEveryTracedTensorEqualsTheCpus(int randomTokens) {
        String name = "mamba/conv3_rank_given";
        int[] ids = randomTokens == 0 ? Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids"))
                : new Random(9).ints(randomTokens, 0, 100).toArray();
        TraceRecorder onGpu = TraceRecorder.allLayers(), onCpu = TraceRecorder.allLayers();
        try (LanguageModel gpu = load(Device.CUDA, name); LanguageModel cpu = load(Device.CPU, name)) {
            assertThat(Fixtures.relativeError(gpu.forward(ids, onGpu), cpu.forward(ids, onCpu))).isLessThan(1e-4);
            for (int layer = 0; layer < cpu.layers(); layer++) {
                Fixtures.assertSameScan(onGpu.layer(layer, MambaLayerTrace.class).forward(), onCpu.layer(layer, MambaLayerTrace.class).forward());
            }
        }
    }

    @Test
    void withoutARecorderNothingIsKept() {
        try (LanguageModel model = load(Device.CPU, CONFIGS[0])) {
            TraceRecorder onlyLayerOne = TraceRecorder.layers(Set.of(1));
            model.forward(new int[]{1, 2, 3}, onlyLayerOne);
            assertThat(onlyLayerOne.recordedLayers()).containsExactly(1);
        }
    }
}
