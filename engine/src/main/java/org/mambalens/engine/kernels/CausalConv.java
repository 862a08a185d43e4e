package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;

import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/**
 * Depthwise causal convolution over tokens, vectorised over channels, continuing from a window of the
 * K−1 previous inputs (zeros at the start of a sequence) so that prefill and decode share one kernel.
 */
public final class CausalConv {
    private CausalConv() {
    }

    /**
     * s[t, c] = bias[c] + Σ_k w[k, c]·x[t−K+1+k, c], where a negative token index reads the window.
     * Afterwards the window holds the last K−1 inputs.
     *
     * @param s      output [len, E], packed
     * @param x      input, token t channel c at x[xOff + t·ldx + c]
     * @param w      taps [K, E] (tap-major: the checkpoint's [E, 1, K] transposed)
     * @param bias   [E] or null
     * @param window [K−1, E], oldest first; read, then replaced
     */
    public static void apply(float[] s, float[] x, int xOff, int ldx, float[] w, float[] bias, float[] window,
                             int len, int e, int taps) {
        Parallel.forRange(e / LANES, Math.max(1, 4096 / Math.max(1, len * taps)), (v0, v1) -> {
            for (int c = v0 * LANES; c < v1 * LANES; c += LANES) {
                FloatVector b = bias == null ? FloatVector.zero(F) : FloatVector.fromArray(F, bias, c);
                for (int t = 0; t < len; t++) {
                    FloatVector acc = b;
                    for (int k = 0; k < taps; k++) {
                        int src = t - taps + 1 + k;
                        FloatVector in = src >= 0 ? FloatVector.fromArray(F, x, xOff + src * ldx + c)
                                : FloatVector.fromArray(F, window, (taps - 1 + src) * e + c);
                        acc = FloatVector.fromArray(F, w, k * e + c).fma(in, acc);
                    }
                    acc.intoArray(s, t * e + c);
                }
            }
        });
        for (int c = e / LANES * LANES; c < e; c++) {
            for (int t = 0; t < len; t++) {
                float acc = bias == null ? 0f : bias[c];
                for (int k = 0; k < taps; k++) {
                    int src = t - taps + 1 + k;
                    acc += w[k * e + c] * (src >= 0 ? x[xOff + src * ldx + c] : window[(taps - 1 + src) * e + c]);
                }
                s[t * e + c] = acc;
            }
        }
        slideWindow(window, x, xOff, ldx, len, e, taps);
    }

    /** The window becomes the last K−1 rows of [window; x]. */
    static void slideWindow(float[] window, float[] x, int xOff, int ldx, int len, int e, int taps) {
        int keep = taps - 1;
        if (keep == 0) return;
        float[] old = window.clone();
        for (int r = 0; r < keep; r++) {
            int src = len + r;                      // row index in [window; x] of the r-th kept row
            if (src < keep) System.arraycopy(old, src * e, window, r * e, e);
            else System.arraycopy(x, xOff + (src - keep) * ldx, window, r * e, e);
        }
    }
}
