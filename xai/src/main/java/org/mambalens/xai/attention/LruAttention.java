package org.mambalens.xai.attention;

import org.mambalens.engine.trace.LruTrace;

/**
 * The implicit attention of a Griffin recurrent block (DESIGN §4 for the RG-LRU, "Explaining Modern Gated-Linear
 * RNNs via a Unified Implicit Attention Formulation"). Unrolling h_t = a_t ⊙ h_{t−1} + b_t ⊙ x_t gives, per
 * channel c,
 * <pre>
 *   α_c[t, j] = (Π_{k=j+1..t} a_k[c]) · b_j[c]   (j ≤ t),      h_c = α_c · x_c,
 * </pre>
 * and with the conv and the GeLU branch folded in, the operator from the conv input x' = linear_x(input) to the
 * gated output,
 * <pre>
 *   M_c = diag(gate_c) · α_c · T_c,      h_c ⊙ gate_c = M_c · x'_c + m_c,      m_c = diag(gate_c) · α_c · 1·bias_c,
 * </pre>
 * T_c the causal Toeplitz matrix of the channel's conv taps. Both are lower-triangular.
 */
public final class LruAttention {
    private final LruTrace t;

    private LruAttention(LruTrace trace) {
        this.t = trace;
    }

    public static LruAttention of(LruTrace trace) {
        return new LruAttention(trace);
    }

    /** α_c [L, L], row-major, zeros above the diagonal. */
    public float[] channel(int c) {
        int L = t.length(), W = t.channels();
        float[] out = new float[L * L];
        for (int row = 0; row < L; row++) {
            double decay = 1;                                              // Π_{k=j+1..row} a_k
            for (int j = row; j >= 0 && decay != 0; j--) {
                out[row * L + j] = (float) (decay * t.b()[j * W + c]);
                decay *= t.a()[j * W + c];
            }
        }
        return out;
    }

    /** M_c [L, L]: α_c with the conv's taps on its right and the gate on its left. */
    public float[] unifiedChannel(int c) {
        return unified(c, channel(c));
    }

    private float[] unified(int c, float[] alpha) {
        int L = t.length(), W = t.channels(), K = t.convTaps().length / W;
        float[] out = new float[L * L];
        for (int row = 0; row < L; row++) {
            double g = t.gate()[row * W + c];
            for (int s = 0; s <= row; s++) {                               // Σ_j α[row, j]·tap[s − j + K − 1], j ∈ [s, s + K − 1]
                double acc = 0;
                for (int j = s; j <= Math.min(row, s + K - 1); j++) acc += alpha[row * L + j] * t.convTaps()[(s - j + K - 1) * W + c];
                out[row * L + s] = (float) (g * acc);
            }
        }
        return out;
    }

    /** α·x per channel, [L, W]: equal to the recorded RG-LRU output h (the invariant). */
    public float[] apply() {
        return applyEach(false);
    }

    /** M·x' + m per channel, [L, W]: equal to h ⊙ gate, what linear_out reads (the invariant of the unified form). */
    public float[] applyUnified() {
        return applyEach(true);
    }

    private float[] applyEach(boolean unified) {
        int L = t.length(), W = t.channels();
        float[] y = new float[L * W], input = unified ? t.convInput() : t.x();
        for (int c = 0; c < W; c++) {
            float[] alpha = channel(c), m = unified ? unified(c, alpha) : alpha;
            for (int row = 0; row < L; row++) {
                double acc = 0, bias = 0;
                for (int j = 0; j <= row; j++) {
                    acc += m[row * L + j] * input[j * W + c];
                    if (unified) bias += alpha[row * L + j];
                }
                if (unified) acc += t.gate()[row * W + c] * bias * t.convBias()[c];
                y[row * W + c] = (float) acc;
            }
        }
        return y;
    }
}
