package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/**
 * Mamba-2's state-space recurrence (SSD) with a scalar decay per head, run as a recurrence: for head h
 * of group g = h / (H / G), channel p of the head and state n,
 * <pre>
 *   S_t[h, p, n] = exp(Δ_t[h]·A[h]) · S_{t−1}[h, p, n] + Δ_t[h] · x_t[h, p] · B_t[g, n]
 *   y_t[h, p]    = Σ_n C_t[g, n] · S_t[h, p, n] + D[h] · x_t[h, p]
 * </pre>
 * vectorised over n, split across threads by head. The state [H, P, N] is read and updated in place,
 * so prefill and decode are the same kernel.
 */
public final class SsdScan {
    private SsdScan() {
    }

    /** Where x, B and C live in the wider matrix the model holds (row t at t·ld). */
    public record Inputs(float[] xbc, int ld, int xOff, int bOff, int cOff, float[] delta) {
    }

    /**
     * @param y     output [len, H·P]
     * @param in    x [len, H·P] at xOff, B and C [len, G·N] at bOff and cOff, Δ [len, H]
     * @param a     A = −exp(A_log) [H]
     * @param d     D [H]
     * @param state S [H, P, N]
     */
    public static void scan(float[] y, Inputs in, float[] a, float[] d, float[] state, int len, int heads, int headDim, int groups, int n) {
        int perGroup = heads / groups, E = heads * headDim;
        Parallel.forRange(heads, Math.max(1, 4096 / Math.max(1, len * headDim * n)), (h0, h1) -> {
            for (int h = h0; h < h1; h++) {
                int g = h / perGroup;
                for (int t = 0; t < len; t++) {
                    int row = t * in.ld();
                    float dt = in.delta()[t * heads + h], decay = (float) Math.exp(dt * a[h]);
                    int b = row + in.bOff() + g * n, c = row + in.cOff() + g * n;
                    for (int p = 0; p < headDim; p++) {
                        float xv = in.xbc()[row + in.xOff() + h * headDim + p], dx = dt * xv;
                        int s = (h * headDim + p) * n, k = 0;
                        FloatVector acc = FloatVector.zero(F);
                        for (; k + LANES <= n; k += LANES) {
                            FloatVector sv = FloatVector.fromArray(F, state, s + k).mul(decay)
                                    .add(FloatVector.fromArray(F, in.xbc(), b + k).mul(dx));
                            sv.intoArray(state, s + k);
                            acc = sv.fma(FloatVector.fromArray(F, in.xbc(), c + k), acc);
                        }
                        float out = Vectors.sum(acc);
                        for (; k < n; k++) {
                            float sv = decay * state[s + k] + dx * in.xbc()[b + k];
                            state[s + k] = sv;
                            out += sv * in.xbc()[c + k];
                        }
                        y[t * E + h * headDim + p] = out + d[h] * xv;
                    }
                }
            }
        });
    }
}
