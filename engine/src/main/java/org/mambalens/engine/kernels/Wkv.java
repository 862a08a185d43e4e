package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;

import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/**
 * RWKV-4's time-mix kernels: the token shift that interpolates each token with the one before it, and
 * the WKV recurrence, kept as transformers keeps it (numerator, denominator and a running maximum
 * exponent per channel, so that no exponential overflows).
 */
public final class Wkv {
    private Wkv() {
    }

    /**
     * out[t, j] = x[t, j]·μ[j] + x[t−1, j]·(1 − μ[j]) for `rows` packed rows of `dim`, with x[−1] = shift
     * [dim] (only read). out and x start at their offsets and must not overlap.
     */
    public static void tokenShift(float[] out, int outOff, float[] x, int xOff, float[] mix, int mixOff, float[] shift, int shiftOff,
                                  int rows, int dim) {
        for (int t = 0; t < rows; t++) {
            float[] prev = t == 0 ? shift : x;
            int p = t == 0 ? shiftOff : xOff + (t - 1) * dim, s = xOff + t * dim, o = outOff + t * dim, j = 0;
            for (; j + LANES <= dim; j += LANES) {
                FloatVector mu = FloatVector.fromArray(F, mix, mixOff + j);
                FloatVector.fromArray(F, x, s + j).mul(mu).add(FloatVector.fromArray(F, prev, p + j).mul(mu.neg().add(1f))).intoArray(out, o + j);
            }
            for (; j < dim; j++) out[o + j] = x[s + j] * mix[mixOff + j] + prev[p + j] * (1 - mix[mixOff + j]);
        }
    }

    /**
     * The WKV recurrence over T tokens of A channels, gated: out[t, a] = g[t, a]·wkv[t, a] with
     * <pre>
     *   wkv_t = (Σ_{i<t} e^{(t−1−i)·w + k_i}·v_i + e^{u + k_t}·v_t) / (Σ_{i<t} e^{(t−1−i)·w + k_i} + e^{u + k_t}),
     * </pre>
     * w = decay [A] (already −exp(time_decay)), u = bonus [A]. gate, k, v, out are packed [T, A] from their
     * offsets; state [3A] (numerator, denominator, maximum exponent; a fresh one is 0, 0, −1e38) is
     * continued from and left after the last token.
     */
    public static void recurrence(float[] out, int outOff, float[] gate, int gateOff, float[] k, int kOff, float[] v, int vOff,
                                  float[] decay, float[] bonus, float[] state, int stateOff, int tokens, int channels) {
        int A = channels, T = tokens;
        Parallel.forRange(A, Math.max(1, 4096 / Math.max(1, T)), (a0, a1) -> {
            for (int a = a0; a < a1; a++) {
                float num = state[stateOff + a], den = state[stateOff + A + a], max = state[stateOff + 2 * A + a];
                float w = decay[a], u = bonus[a];
                for (int t = 0; t < T; t++) {
                    int o = t * A + a;
                    float kt = k[kOff + o], vt = v[vOff + o];
                    float m = Math.max(max, kt + u);                                 // output: the past and the bonus-weighted present
                    float e1 = (float) Math.exp(max - m), e2 = (float) Math.exp(kt + u - m);
                    out[outOff + o] = gate[gateOff + o] * (e1 * num + e2 * vt) / (e1 * den + e2);
                    m = Math.max(max + w, kt);                                       // state: decay the past, add the present
                    e1 = (float) Math.exp(max + w - m);
                    e2 = (float) Math.exp(kt - m);
                    num = e1 * num + e2 * vt;
                    den = e1 * den + e2;
                    max = m;
                }
                state[stateOff + a] = num;
                state[stateOff + A + a] = den;
                state[stateOff + 2 * A + a] = max;
            }
        });
    }
}
