package org.mambalens.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What every language model family owes its reference, on the golden fixtures of Mamba-2, RWKV-4 and
 * GPT-NeoX (Mamba-1 has its own, with the demo model): greedy decoding through prefill and step gives
 * transformers' generate() ids, and the recurrent (or cached) path gives the whole-sequence logits.
 */
class LanguageModelsTest {
    @ParameterizedTest
    @ValueSource(strings = {"mamba2/mamba2_f32", "mamba2/mamba2_groups_bf16", "rwkv/rwkv_f32", "rwkv/rwkv_bf16",
            "gptneox/neox_parallel_f32", "gptneox/neox_sequential_bf16", "griffin/griffin_f32", "griffin/griffin_bf16"})
    void greedyIdsMatchTransformers(String name) {
        Path dir = Fixtures.golden().resolve(name);
        JsonNode ref = Fixtures.json(dir.resolve("reference.json"));
        int[] expected = Fixtures.ints(ref.get("greedy_ids"));
        try (LanguageModel model = Models.loadLanguageModel(dir)) {
            assertThat(Fixtures.greedy(model, Fixtures.ints(ref.get("greedy_prompt")), expected.length)).containsExactly(expected);
        }
    }

    /** A prompt prefilled in two parts (one of them a single token), then one token at a time. */
    @ParameterizedTest
    @ValueSource(strings = {"mamba2/mamba2_f32", "mamba2/mamba2_groups_bf16", "rwkv/rwkv_f32", "rwkv/rwkv_bf16",
            "gptneox/neox_parallel_f32", "gptneox/neox_sequential_bf16", "griffin/griffin_f32", "griffin/griffin_bf16"})
    void decodingEqualsTheForwardPass(String name) {
        Path dir = Fixtures.golden().resolve(name);
        int[] ids = Fixtures.ints(Fixtures.json(dir.resolve("reference.json")).get("token_ids"));
        try (LanguageModel model = Models.loadLanguageModel(dir)) {
            Fixtures.assertDecodeEqualsForward(model, ids, 1, 9);
        }
    }
}
