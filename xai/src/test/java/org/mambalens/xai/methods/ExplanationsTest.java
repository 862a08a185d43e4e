package org.mambalens.xai.methods;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.xai.attention.AttentionSummary;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

/** The methods on hand-made attention with known answers. */
class ExplanationsTest {
    @Test
    void rolloutOfNoAttentionIsTheIdentityAndOfUniformAttentionIsKnown() {
        int T = 3;
        AttentionSummary none = AttentionSummary.of(new float[2 * T * T], 2, T);
        assertThat(Explanations.rollout(List.of(none, none), 0, 1)).containsExactly(0f, 1f, 0f);
        // one layer, every weight 1/3: Â = (U + I) row-normalised = (1/3 + δ)/2; the cls row of token 0
        float[] uniform = new float[T * T];
        java.util.Arrays.fill(uniform, 1f / 3);
        float[] row = Explanations.rollout(List.of(AttentionSummary.of(uniform, 1, T)), 0, 0);
        assertThat(row[0]).isCloseTo(2f / 3, offset(1e-6f));
        assertThat(row[1]).isCloseTo(1f / 6, offset(1e-6f));
        // two layers multiply: R = Â·Â
        float[] two = Explanations.rollout(List.of(AttentionSummary.of(uniform, 1, T), AttentionSummary.of(uniform, 1, T)), 0, 0);
        assertThat(two[0]).isCloseTo(2f / 3 * 2f / 3 + 2 * (1f / 6) * (1f / 6), offset(1e-6f));
        assertThat(two[0] + two[1] + two[2]).isCloseTo(1f, offset(1e-6f));
    }

    @Test
    void rawAttentionNormalisesEachLayerAndAveragesFromTheStartLayer() {
        int T = 2;
        AttentionSummary ignored = AttentionSummary.of(new float[]{100, 0, 0, 0}, 1, T);
        AttentionSummary a = AttentionSummary.of(new float[]{0, 2, 4, 8, /* channel 2 */ 0, 2, 4, 8}, 2, T);
        assertThat(Explanations.raw(List.of(ignored, a), 1, 1)).containsExactly(0.5f, 1f);
        assertThat(Explanations.patchMap(new float[]{1, 2, 3, 4, 5}, 2)).containsExactly(1, 2, 4, 5);
    }

    @Test
    void upsamplingKeepsConstantsAndTheIdentity() {
        float[] constant = {3, 3, 3, 3};
        for (float v : Explanations.upsample(constant, 2, 8)) assertThat(v).isEqualTo(3f);
        float[] m = {1, 2, 3, 4};
        assertThat(Explanations.upsample(m, 2, 2)).containsExactly(m);
        assertThat(Explanations.normalised(new float[]{2, 4, 3})).containsExactly(0f, 1f, 0.5f);
    }

    @Test
    void mambaAttributionWeightsColumnsByTheGradientAndRollsOut() {
        int T = 3;
        // one channel of causal ones: min 0, max 1, so the normalised α⁺ is α itself
        float[] alpha = {1, 0, 0, /**/ 1, 1, 0, /**/ 1, 1, 1};
        AttentionSummary layer = AttentionSummary.of(alpha, 1, T);
        float[] g = {0, 0, /* token 1 */ 3, -1, /* token 2 */ 1, 0};   // D = 2: token weights max(g⁺) = 0, 3, 1 → 0, 1, 1/3
        float[] row = Explanations.mambaAttribution(List.of(layer), List.of(g), 0, 2);
        // Â row 2 = ([1·0, 1·1, 1·1/3] + e_2) / (1 + 1 + 1/3 + 1)
        double sum = 0 + 1 + 1.0 / 3 + 1;
        assertThat(row[0]).isCloseTo(0f, offset(1e-6f));
        assertThat(row[1]).isCloseTo((float) (1 / sum), offset(1e-6f));
        assertThat(row[2]).isCloseTo((float) ((1.0 / 3 + 1) / sum), offset(1e-6f));
        // a negative gradient everywhere gives no column weight: the identity remains
        assertThat(Explanations.mambaAttribution(List.of(layer), List.of(new float[]{-1, -1, -1, -1, -1, -1}), 0, 2)).containsExactly(0f, 0f, 1f);
    }

    @Test
    void transformerAttributionAddsPositiveGradientWeightedAttention() {
        int T = 2;
        AttentionTrace a = new AttentionTrace(2, T, new float[]{0.5f, 0.5f, 0.2f, 0.8f, /* head 2 */ 1, 0, 0, 1});
        float[] grad = {2, -4, 1, 1, /* head 2 */ 3, 5, 5, -1};
        // Ē = mean_h((∇A ⊙ A)⁺) = ([1, 0, 0.2, 0.8] + [3, 0, 0, 0]) / 2 = [2, 0, 0.1, 0.4]; R = I + Ē; row 0
        assertThat(Explanations.transformerAttribution(List.of(a), List.of(grad), 0)).containsExactly(3f, 0f);
        float[] two = Explanations.transformerAttribution(List.of(a, a), List.of(grad, grad), 1);
        // row 1 of (I + Ē)² = [0.1, 1.4]·(I + Ē) = [0.1·3 + 1.4·0.1, 0.1·0 + 1.4·1.4]
        assertThat(two[0]).isCloseTo(0.44f, offset(1e-6f));
        assertThat(two[1]).isCloseTo(1.96f, offset(1e-6f));
    }
}
