package org.mambalens.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The contract of {@code ./mambalens gradient}: {@link LanguageModel#inputGradient}, ∂logits[P, T]/∂inputs_embeds, against
 * transformers' autograd in float64 (input_gradient_fixtures.py) for every language-model golden fixture, F32, F16 and BF16
 * checkpoints, within 1e-4 of the largest gradient magnitude. A fixture whose family has no reverse pass on this build is
 * skipped, saying so; a missing reference file fails.
 */
class InputGradientGoldenTest {
    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/conv3_rank_given", "mamba/untied_bf16", "mamba/bias_untied_f16",
            "mamba2/mamba2_f32", "mamba2/mamba2_groups_bf16", "rwkv/rwkv_f32", "rwkv/rwkv_bf16",
            "griffin/griffin_f32", "griffin/griffin_bf16", "gptneox/neox_parallel_f32", "gptneox/neox_sequential_bf16"})
    void inputGradientMatchesTransformersAutograd(String fixture) {
        Path dir = Fixtures.golden().resolve(fixture);
        JsonNode target = Fixtures.json(dir.resolve("grad_inputs_embeds.json"));
        Npy.Array expected = Npy.readFloat32(dir.resolve("grad_inputs_embeds.npy"));
        assertThat(Families.forDirectory(dir).has(ModelFamily.Capability.REVERSE_PASS)).as(fixture + "'s family has a reverse pass").isTrue();
        int[] ids = Fixtures.ints(target.get("tokens"));
        try (LanguageModel model = Models.loadLanguageModel(dir)) {
            float[] gradient = model.inputGradient(ids, target.get("position").asInt(), target.get("target").asInt());
            assertThat(expected.shape()).containsExactly(ids.length, gradient.length / ids.length);
            assertThat(Fixtures.relativeError(gradient, expected.data())).as(fixture + " vs transformers (" + target.get("dtype").asText() + ")")
                    .isLessThan(1e-4);
        }
    }
}
