package org.mambalens.engine.model.gptneox;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.model.MovedEmbeddings;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * GPT-NeoX's reverse pass against finite differences of its forward pass: the embedding table moved along a
 * random direction R (the checkpoint rewritten in F32 at E ± h·R) changes the explained logit by
 * Σ_t ⟨∂logit/∂x_t, R[id_t]⟩ — which exercises every layer's reverse pass (attention with rotary embeddings,
 * the MLP, both residual layouts) at once.
 */
class GptNeoXGradientsTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"neox_parallel_f32", "neox_sequential_bf16"})
    void inputGradientMatchesFiniteDifferences(String name) throws Exception {
        Path dir = Fixtures.golden().resolve("gptneox/" + name);
        int[] ids = Arrays.copyOf(Fixtures.ints(Fixtures.json(dir.resolve("reference.json")).get("token_ids")), 12);
        float[] direction = MovedEmbeddings.direction(dir, 9);
        double h = 1e-2;
        Path plus = MovedEmbeddings.write(dir, tmp.resolve("plus"), direction, h), minus = MovedEmbeddings.write(dir, tmp.resolve("minus"), direction, -h);
        Path same = MovedEmbeddings.write(dir, tmp.resolve("same"), direction, 0);
        try (LanguageModel model = Models.loadLanguageModel(same)) {
            int L = ids.length, V = model.vocabSize();
            float[] logits = model.forward(ids, null);
            int token = org.mambalens.engine.text.Sampler.argmax(Arrays.copyOfRange(logits, (L - 1) * V, L * V));
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] explained = model.forwardWithGradients(ids, L - 1, token, trace);
            assertThat(Fixtures.relativeError(explained, Arrays.copyOfRange(logits, (L - 1) * V, L * V))).isLessThan(1e-6);
            float[] g = trace.inputGradient();
            int width = g.length / L;
            double analytic = MovedEmbeddings.predicted(g, direction, ids);
            double numeric = (logit(plus, ids, token) - logit(minus, ids, token)) / (2 * h);
            assertThat(analytic).isCloseTo(numeric, org.assertj.core.data.Offset.offset(2e-3 * Math.max(1e-2, Math.abs(numeric))));
            for (int layer = 0; layer < model.layers(); layer++) {
                float[] dA = trace.attentionGradient(layer);
                assertThat(dA).hasSize(((GptNeoXModel) model).config().heads() * L * L);
                for (int r = 0; r < L; r++) for (int c = r + 1; c < L; c++) assertThat(dA[r * L + c]).as("causal").isZero();
                assertThat(trace.residualGradient(layer)).hasSize(L * width);
            }
        }
    }

    private static double logit(Path dir, int[] ids, int token) {
        try (LanguageModel model = Models.loadLanguageModel(dir)) {
            return model.forward(ids, null)[(ids.length - 1) * model.vocabSize() + token];
        }
    }
}
