package org.mambalens.engine.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.text.Sampler;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Prompts of different lengths generated together give each the ids it gets generated alone (the loop of
 * {@code generate}), greedy (a step's two most likely tokens) and sampled (the logits), each sequence stopping on its own.
 */
class BatchGenerationTest {
    static Stream<Arguments> cases() {
        return Fixtures.devices().flatMap(d -> Stream.of("demo", "mamba/untied_bf16", "gptneox/neox_parallel_f32")
                .flatMap(m -> Stream.of(Arguments.of(d, m, true), Arguments.of(d, m, false))));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void everyPromptGetsTheIdsItGetsAlone(Device device, String model, boolean greedy) {
        if (device == Device.CUDA) GpuRequired.check();
        Random random = new Random(17);
        try (LanguageModel lm = Models.loadLanguageModel(Fixtures.modelDir(model), device, Precision.F32)) {
            int[][] prompts = new int[5][];
            for (int i = 0; i < prompts.length; i++) prompts[i] = random.ints(1 + 4 * i, 0, lm.vocabSize()).toArray();
            var options = new BatchGeneration.Options(12, 3, true);
            Sampler[] samplers = new Sampler[prompts.length];
            for (int i = 0; i < samplers.length; i++) samplers[i] = sampler(greedy);
            int[][] together = BatchGeneration.generate(lm, prompts, samplers, options);
            for (int i = 0; i < prompts.length; i++) {
                assertThat(together[i]).as("prompt %d", i).containsExactly(alone(lm, prompts[i], sampler(greedy), options));
            }
        }
    }

    private static Sampler sampler(boolean greedy) {
        return greedy ? Sampler.greedy() : Sampler.sampling(0.8f, 40, 0.95f, 7);
    }

    /** What {@code generate} does for one prompt. */
    private static int[] alone(LanguageModel lm, int[] prompt, Sampler sampler, BatchGeneration.Options options) {
        int[] ids = new int[options.maxNewTokens()];
        int n = 0;
        LanguageModel.State state = lm.newState();
        float[] logits = lm.prefill(prompt, state);
        while (n < options.maxNewTokens()) {
            if (n < options.minNewTokens()) logits[lm.eosTokenId()] = Float.NEGATIVE_INFINITY;
            int next = sampler.next(logits);
            ids[n++] = next;
            if (next == lm.eosTokenId() && options.stopAtEos()) break;
            if (n < options.maxNewTokens()) logits = lm.step(next, state);
        }
        return Arrays.copyOf(ids, n);
    }
}
