package org.mambalens.xai.attention;

import org.mambalens.engine.trace.RwkvTrace;

/**
 * The implicit attention of an RWKV-4 time mix (DESIGN §4): per channel a, the WKV weights normalised over
 * the past, the bonus u on the diagonal, times the receptance gate,
 * <pre>
 *   α_a[t, i] = σ(r_t[a]) · e^{l_i} / Σ_{j ≤ t} e^{l_j},   l_i = (t−1−i)·w_a + k_i[a] for i &lt; t,   l_t = u_a + k_t[a],
 * </pre>
 * computed with the row's largest exponent subtracted. Then σ(r) ⊙ WKV = α·v, what the output projection reads.
 */
public final class RwkvAttention {
    private final RwkvTrace t;

    private RwkvAttention(RwkvTrace trace) {
        this.t = trace;
    }

    public static RwkvAttention of(RwkvTrace trace) {
        return new RwkvAttention(trace);
    }

    /** α_a [L, L], row-major, zeros above the diagonal. */
    public float[] channel(int a) {
        int L = t.length(), A = t.channels();
        float[] out = new float[L * L];
        double[] logits = new double[L];
        for (int row = 0; row < L; row++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i <= row; i++) {
                logits[i] = i < row ? (row - 1 - i) * (double) t.decay()[a] + t.k()[i * A + a] : t.bonus()[a] + (double) t.k()[row * A + a];
                max = Math.max(max, logits[i]);
            }
            double sum = 0;
            for (int i = 0; i <= row; i++) sum += Math.exp(logits[i] - max);
            double gate = t.r()[row * A + a] / sum;
            for (int i = 0; i <= row; i++) out[row * L + i] = (float) (gate * Math.exp(logits[i] - max));
        }
        return out;
    }

    /** Every channel, [A, L, L]. */
    public float[] channels() {
        int L = t.length();
        float[] out = new float[t.channels() * L * L];
        for (int a = 0; a < t.channels(); a++) System.arraycopy(channel(a), 0, out, a * L * L, L * L);
        return out;
    }

    /** σ(r) ⊙ WKV rebuilt as α·v, [L, A]: equal to the recorded gated output (the invariant). */
    public float[] apply() {
        int L = t.length(), A = t.channels();
        float[] y = new float[L * A];
        for (int a = 0; a < A; a++) {
            float[] alpha = channel(a);
            for (int row = 0; row < L; row++) {
                double acc = 0;
                for (int i = 0; i <= row; i++) acc += alpha[row * L + i] * t.v()[i * A + a];
                y[row * A + a] = (float) acc;
            }
        }
        return y;
    }
}
