package org.mambalens.engine.model.griffin;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.model.MovedEmbeddings;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Griffin's whole reverse pass against finite differences of its forward pass: the input embeddings moved along a
 * random direction R (the checkpoint rewritten at E ± h·R, the tied head kept in place) change the explained logit by
 * Σ_t ⟨∂logit/∂inputs_embeds_t, R[id_t]⟩, which exercises every block's reverse (RG-LRU, conv, GeLU branch, local
 * attention with partial rotary, grouped keys and the window, the MLP, the Gemma norms), the soft cap and the √D
 * normaliser at once. griffin_f32's window (16) is shorter than the 40 tokens; griffin_bf16 has two key/value heads.
 */
class GriffinGradientsTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"griffin_f32", "griffin_bf16"})
    void inputGradientMatchesFiniteDifferences(String name) {
        Path dir = Fixtures.golden().resolve("griffin/" + name);
        int[] ids = Fixtures.ints(Fixtures.json(dir.resolve("reference.json")).get("token_ids"));
        int L = ids.length, position = L - 3;
        float[] direction = MovedEmbeddings.direction(dir, 9);
        double h = 1e-2;
        Path same = MovedEmbeddings.write(dir, tmp.resolve("same"), direction, 0);
        try (LanguageModel model = Models.loadLanguageModel(same)) {
            int V = model.vocabSize();
            float[] logits = Arrays.copyOfRange(model.forward(ids, null), position * V, (position + 1) * V);
            int token = org.mambalens.engine.text.Sampler.argmax(logits);
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] explained = model.forwardWithGradients(ids, position, token, trace);
            assertThat(Fixtures.relativeError(explained, logits)).isLessThan(1e-6);
            float[] g = trace.inputGradient();
            int D = g.length / L;
            for (int k = (position + 1) * D; k < L * D; k++) assertThat(g[k]).as("rows after the position cannot reach its logit").isZero();
            double numeric = (logit(MovedEmbeddings.write(dir, tmp.resolve("plus"), direction, h), ids, position, token)
                    - logit(MovedEmbeddings.write(dir, tmp.resolve("minus"), direction, -h), ids, position, token)) / (2 * h);
            assertThat(MovedEmbeddings.predicted(g, direction, ids)).isCloseTo(numeric, within(2e-3 * Math.max(1e-2, Math.abs(numeric))));
            GriffinConfig c = ((GriffinModel) model).config();
            for (int layer = 0; layer < model.layers(); layer++) {
                assertThat(trace.residualGradient(layer)).hasSize(L * D);
                assertThat(trace.layer(layer)).as("the forward is traced for attribution").isInstanceOf(c.isAttention(layer) ? AttentionTrace.class : LruTrace.class);
            }
            float normalizer = (float) Fixtures.json(dir.resolve("reference.json")).get("normalizer").asDouble();
            float[] first = trace.residualGradient(0);                      // inputs_embeds are multiplied by the normaliser √D (bfloat16)
            for (int k = 0; k < L * D; k++) assertThat(g[k]).isEqualTo(first[k] * normalizer);
        }
    }

    private static double logit(Path dir, int[] ids, int position, int token) {
        try (LanguageModel model = Models.loadLanguageModel(dir)) {
            return model.forward(ids, null)[position * model.vocabSize() + token];
        }
    }
}
