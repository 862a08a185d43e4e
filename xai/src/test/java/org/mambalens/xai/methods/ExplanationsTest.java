package org.mambalens.xai.methods;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

/** The methods on hand-made attention with known answers. */
class ExplanationsTest {
    @Test
    void rolloutOfNoAttentionIsTheIdentityAndOfUniformAttentionIsKnown() {
        int T = 3;
        LayerAttention none = new LayerAttention(2, T, new float[2 * T * T]);
        assertThat(Explanations.rollout(List.of(none, none), 0, 1)).containsExactly(0f, 1f, 0f);
        // one layer, every weight 1/3: Â = (U + I) row-normalised = (1/3 + δ)/2; the cls row of token 0
        float[] uniform = new float[T * T];
        java.util.Arrays.fill(uniform, 1f / 3);
        float[] row = Explanations.rollout(List.of(new LayerAttention(1, T, uniform)), 0, 0);
        assertThat(row[0]).isCloseTo(2f / 3, offset(1e-6f));
        assertThat(row[1]).isCloseTo(1f / 6, offset(1e-6f));
        // two layers multiply: R = Â·Â
        float[] two = Explanations.rollout(List.of(new LayerAttention(1, T, uniform), new LayerAttention(1, T, uniform)), 0, 0);
        assertThat(two[0]).isCloseTo(2f / 3 * 2f / 3 + 2 * (1f / 6) * (1f / 6), offset(1e-6f));
        assertThat(two[0] + two[1] + two[2]).isCloseTo(1f, offset(1e-6f));
    }

    @Test
    void rawAttentionNormalisesEachLayerAndAveragesFromTheStartLayer() {
        int T = 2;
        LayerAttention ignored = new LayerAttention(1, T, new float[]{100, 0, 0, 0});
        LayerAttention a = new LayerAttention(2, T, new float[]{0, 2, 4, 8, /* channel 2 */ 0, 2, 4, 8});
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
}
