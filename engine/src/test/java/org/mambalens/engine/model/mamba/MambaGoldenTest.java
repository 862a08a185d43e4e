package org.mambalens.engine.model.mamba;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.text.Sampler;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The engine against transformers' MambaForCausalLM on the same safetensors
 * (weights-tools/reference/mamba_fixtures.py and train_demo_lm.py made the expected values).
 */
class MambaGoldenTest {
    static final String[] CONFIGS = {"mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16"};

    static Path dir(String name) {
        return Fixtures.golden().resolve(name);
    }

    static Path modelDir(String name) {
        return name.equals("demo") ? Fixtures.repository().resolve("models/mamba-fortunes") : dir(name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16", "demo"})
    void logitsMatchTransformers(String name) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        Npy.Array expected = Npy.readFloat32(dir(name).resolve("logits.npy"));
        try (MambaModel model = MambaModel.load(modelDir(name))) {
            float[] logits = model.forward(Fixtures.ints(ref.get("token_ids")), null);
            assertThat(expected.shape()).containsExactly(ref.get("token_ids").size(), model.vocabSize());
            assertThat(Fixtures.relativeError(logits, expected.data())).isLessThan(1e-4);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16", "demo"})
    void greedyIdsMatchTransformers(String name) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        int[] expected = Fixtures.ints(ref.get("greedy_ids"));
        int[] prompt = Fixtures.ints(ref.has("greedy_prompt") ? ref.get("greedy_prompt") : ref.get("token_ids"));
        try (MambaModel model = MambaModel.load(modelDir(name))) {
            int[] ids = Fixtures.greedy(model, prompt, expected.length);
            assertThat(ids).containsExactly(expected);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16"})
    void stepByStepDecodeEqualsPrefill(String name) {
        int[] ids = Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids"));
        try (MambaModel model = MambaModel.load(modelDir(name))) {
            int v = model.vocabSize();
            float[] all = model.forward(ids, null);
            LanguageModel.State state = model.newState();
            // A prompt prefilled in two parts, then one token at a time: every row must equal the forward pass.
            float[] first = model.prefill(Arrays.copyOf(ids, 7), state);
            assertThat(Fixtures.relativeError(first, Arrays.copyOfRange(all, 6 * v, 7 * v))).isLessThan(1e-5);
            for (int t = 7; t < ids.length; t++) {
                float[] row = model.step(ids[t], state);
                assertThat(Fixtures.relativeError(row, Arrays.copyOfRange(all, t * v, (t + 1) * v)))
                        .as("position %d", t).isLessThan(1e-5);
            }
            assertThat(state.position()).isEqualTo(ids.length);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16"})
    void traceMatchesTheReferenceInternals(String name) {
        int[] ids = Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids"));
        try (MambaModel model = MambaModel.load(modelDir(name))) {
            int last = model.config().layers() - 1;
            TraceRecorder trace = TraceRecorder.layers(java.util.Set.of(0, last));
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

    @org.junit.jupiter.api.Test
    void aBadTokenIdIsRefusedBeforeAnythingRuns() {
        try (MambaModel model = MambaModel.load(dir(CONFIGS[0]))) {
            LanguageModel.State state = model.newState();
            int[] ids = new int[1200];                       // spans three prefill chunks; the bad id is in the last
            ids[1100] = model.vocabSize();
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> model.prefill(ids, state))
                    .hasMessageContaining("token id " + model.vocabSize() + " is outside the vocabulary");
            assertThat(state.position()).isZero();
        }
    }

    @org.junit.jupiter.api.Test
    void longPromptsArePrefilledInChunksWithTheSameResult() {
        try (MambaModel model = MambaModel.load(dir(CONFIGS[2]))) {
            int[] ids = new int[MambaModel.PREFILL_CHUNK + 37];
            for (int i = 0; i < ids.length; i++) ids[i] = (i * 31 + 7) % model.vocabSize();
            float[] all = model.forward(ids, null);
            int v = model.vocabSize();
            float[] last = model.prefill(ids, model.newState());
            assertThat(Fixtures.relativeError(last, Arrays.copyOfRange(all, (ids.length - 1) * v, ids.length * v))).isLessThan(1e-5);
        }
    }

    @org.junit.jupiter.api.Test
    void withoutARecorderNothingIsKept() {
        try (MambaModel model = MambaModel.load(dir(CONFIGS[0]))) {
            TraceRecorder onlyLayerOne = TraceRecorder.layers(java.util.Set.of(1));
            model.forward(new int[]{1, 2, 3}, onlyLayerOne);
            assertThat(onlyLayerOne.recordedLayers()).containsExactly(1);
        }
    }
}
