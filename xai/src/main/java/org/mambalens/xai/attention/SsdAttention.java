package org.mambalens.xai.attention;

import org.mambalens.engine.trace.SsdTrace;

/**
 * The implicit attention of a Mamba-2 mixer (DESIGN §4): the decay is one scalar per head, so one matrix
 * per head h (of group g) instead of one per channel,
 * <pre>
 *   α_h[i, j] = (C_i[g] · B_j[g]) · exp(A_h · (S_i[h] − S_j[h])) · Δ_j[h],   j ≤ i,
 * </pre>
 * with S the prefix sums of Δ (log space: one exponential of a non-positive number per weight). The scan
 * output is then y_i[h, p] = Σ_j α_h[i, j]·x_j[h, p] + D_h·x_i[h, p] for every channel p of the head.
 */
public final class SsdAttention {
    private final SsdTrace t;
    private final double[] prefix;   // S [H, L]

    private SsdAttention(SsdTrace trace) {
        this.t = trace;
        int L = trace.length(), H = trace.heads();
        prefix = new double[H * L];
        for (int h = 0; h < H; h++) {
            double s = 0;
            for (int i = 0; i < L; i++) prefix[h * L + i] = s += trace.delta()[i * H + h];
        }
    }

    public static SsdAttention of(SsdTrace trace) {
        return new SsdAttention(trace);
    }

    /** α_h [L, L], row-major, zeros above the diagonal. */
    public float[] head(int h) {
        int L = t.length(), H = t.heads(), N = t.stateSize(), g = t.group(h) * N, GN = t.groups() * N;
        float[] out = new float[L * L];
        for (int i = 0; i < L; i++) {
            for (int j = 0; j <= i; j++) {
                double cb = 0;
                for (int n = 0; n < N; n++) cb += (double) t.c()[i * GN + g + n] * t.b()[j * GN + g + n];
                out[i * L + j] = (float) (cb * Math.exp(t.a()[h] * (prefix[h * L + i] - prefix[h * L + j])) * t.delta()[j * H + h]);
            }
        }
        return out;
    }

    /** Every head, [H, L, L]. */
    public float[] heads() {
        int L = t.length();
        float[] out = new float[t.heads() * L * L];
        for (int h = 0; h < t.heads(); h++) System.arraycopy(head(h), 0, out, h * L * L, L * L);
        return out;
    }

    /** The scan output rebuilt from the attention, [L, H·P]: equal to the recorded y (the DESIGN §3 invariant). */
    public float[] apply() {
        int L = t.length(), H = t.heads(), P = t.headDim(), E = H * P;
        float[] y = new float[L * E];
        for (int h = 0; h < H; h++) {
            float[] alpha = head(h);
            for (int i = 0; i < L; i++) {
                for (int p = 0; p < P; p++) {
                    int ch = h * P + p;
                    double acc = t.d()[h] * t.x()[i * E + ch];
                    for (int j = 0; j <= i; j++) acc += alpha[i * L + j] * t.x()[j * E + ch];
                    y[i * E + ch] = (float) acc;
                }
            }
        }
        return y;
    }
}
