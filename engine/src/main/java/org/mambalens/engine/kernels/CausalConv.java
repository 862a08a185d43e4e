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
     * @param window [K−1, E] from window[windowOff], oldest first; read, then replaced
     */
    public static void apply(float[] s, float[] x, int xOff, int ldx, float[] w, float[] bias, float[] window, int windowOff,
                             int len, int e, int taps) {
        apply(s, 0, null, 0, x, xOff, ldx, w, bias, window, windowOff, len, e, taps);
    }

    /**
     * As above, with s [len, E] from s[sOff] (or null: not kept) and, when {@code u} is given, u = silu(s) [len, E]
     * from u[uOff], each thread activating the rows it has just convolved instead of a serial pass after.
     */
    public static void apply(float[] s, int sOff, float[] u, int uOff, float[] x, int xOff, int ldx, float[] w, float[] bias,
                             float[] window, int windowOff, int len, int e, int taps) {
        // The window rows followed by the new inputs: row t + k of `padded` is input t − K + 1 + k.
        float[] padded = new float[(taps - 1 + len) * e];
        System.arraycopy(window, windowOff, padded, 0, (taps - 1) * e);
        for (int t = 0; t < len; t++) System.arraycopy(x, xOff + t * ldx, padded, (taps - 1 + t) * e, e);
        float[] b = bias == null ? new float[e] : bias;
        float[] conv = s != null ? s : u;                         // without s, u holds the sums until activated in place
        int convOff = s != null ? sOff : uOff, vectors = e / LANES;
        Parallel.forRange(len, Math.max(1, 65536 / Math.max(1, e * taps)), (t0, t1) -> {
            for (int t = t0; t < t1; t++) {
                int row = convOff + t * e;
                for (int c = 0; c < vectors * LANES; c += LANES) {
                    FloatVector acc = FloatVector.fromArray(F, b, c);
                    for (int k = 0; k < taps; k++) {
                        acc = FloatVector.fromArray(F, w, k * e + c).fma(FloatVector.fromArray(F, padded, (t + k) * e + c), acc);
                    }
                    acc.intoArray(conv, row + c);
                }
                for (int c = vectors * LANES; c < e; c++) {
                    float acc = b[c];
                    for (int k = 0; k < taps; k++) acc += w[k * e + c] * padded[(t + k) * e + c];
                    conv[row + c] = acc;
                }
            }
            if (u != null) Elementwise.silu(u, uOff + t0 * e, e, conv, convOff + t0 * e, e, t1 - t0, e);
        });
        System.arraycopy(padded, len * e, window, windowOff, (taps - 1) * e);
    }
}
