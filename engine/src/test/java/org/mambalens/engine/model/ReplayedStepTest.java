package org.mambalens.engine.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.text.Sampler;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The position-taking families (GPT-NeoX's rotary and growing cache, Griffin's rotary, ring and RG-LRU) decode on a
 * GPU through one captured step replayed at every position (Backend.replayAt): 90 greedy steps give the bits of the same
 * steps launched one by one, past a cache growth (64 → 128 positions) and past a full turn of Griffin's 64-position ring.
 */
class ReplayedStepTest {
    @ParameterizedTest
    @ValueSource(strings = {"gptneox/neox_parallel_f32", "griffin/griffin_f32"})
    void aReplayedStepGivesTheBitsOfTheLaunchedOne(String fixture) {
        GpuRequired.check();
        List<float[]> replayed = decode(fixture, false), launched = decode(fixture, true);
        for (int i = 0; i < launched.size(); i++) {
            assertThat(replayed.get(i)).as("logits of step " + i).containsExactly(launched.get(i));
        }
    }

    /** The logits of 90 greedy steps after a 5-token prompt, each step replayed from a graph or (noGraphs) launched afresh. */
    private static List<float[]> decode(String fixture, boolean noGraphs) {
        if (noGraphs) System.setProperty("mambalens.cuda.noGraphs", "true");
        try (LanguageModel model = Models.loadLanguageModel(Fixtures.golden().resolve(fixture), Device.CUDA, Precision.F32)) {
            LanguageModel.State state = model.newState();
            List<float[]> out = new ArrayList<>();
            float[] logits = model.prefill(new int[]{3, 17, 5, 11, 2}, state);
            for (int step = 0; step < 90; step++) {
                logits = model.step(Sampler.argmax(logits), state);
                out.add(logits);
            }
            return out;
        } finally {
            System.clearProperty("mambalens.cuda.noGraphs");
        }
    }
}
