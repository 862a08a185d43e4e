package org.mambalens.xai.attention;

import org.mambalens.engine.trace.MixerTrace;

/**
 * The hidden attention of a Mamba mixer (SPEC §3, "The Hidden Attention of Mamba Models"), from a
 * recorded trace: per channel c, the causal matrix
 * <pre>
 *   α_c[i, j] = Σ_n C_i[n] · exp(A[c, n] · (S_i[c] − S_j[c])) · Δ_j[c] · B_j[n],   j ≤ i,
 * </pre>
 * with S the prefix sums of Δ, so the product of the discretised Ā over (j, i] is one exponential of a
 * non-positive number and never underflows step by step. Then y_i[c] = Σ_j α_c[i, j]·u_j[c] + D[c]·u_i[c].
 *
 * <p>Matrices are computed on demand: one channel, one row, or the channel mean, never all E·L² floats
 * unless asked for.
 */
public final class HiddenAttention {
    private final MixerTrace t;
    private final double[] prefix;   // S [L, E]: S_i[c] = Σ_{k ≤ i} Δ_k[c], in double

    private HiddenAttention(MixerTrace trace) {
        this.t = trace;
        int L = trace.length(), E = trace.channels();
        prefix = new double[L * E];
        for (int c = 0; c < E; c++) {
            double s = 0;
            for (int i = 0; i < L; i++) prefix[i * E + c] = s += trace.delta(i, c);
        }
    }

    public static HiddenAttention of(MixerTrace trace) {
        return new HiddenAttention(trace);
    }

    public int length() {
        return t.length();
    }

    public int channels() {
        return t.channels();
    }

    /** α_c[i, j] for j ≤ i (0 above the diagonal). */
    public double weight(int c, int i, int j) {
        if (j > i) return 0;
        int E = t.channels(), N = t.stateSize();
        double decay = prefix[i * E + c] - prefix[j * E + c], sum = 0;
        for (int n = 0; n < N; n++) sum += t.c(i, n) * Math.exp(t.a()[c * N + n] * decay) * t.b(j, n);
        return sum * t.delta(j, c);
    }

    /** Row i of channel c: α_c[i, 0..L). */
    public float[] row(int c, int i) {
        float[] out = new float[t.length()];
        for (int j = 0; j <= i; j++) out[j] = (float) weight(c, i, j);
        return out;
    }

    /** α_c [L, L], row-major. */
    public float[] channel(int c) {
        int L = t.length();
        float[] out = new float[L * L];
        for (int i = 0; i < L; i++) for (int j = 0; j <= i; j++) out[i * L + j] = (float) weight(c, i, j);
        return out;
    }

    /** The layer map: the mean over channels of α_c (or of |α_c| when {@code absolute}), [L, L]. */
    public float[] meanOverChannels(boolean absolute) {
        int L = t.length(), E = t.channels();
        double[] sum = new double[L * L];
        for (int c = 0; c < E; c++) {
            for (int i = 0; i < L; i++) {
                for (int j = 0; j <= i; j++) {
                    double w = weight(c, i, j);
                    sum[i * L + j] += absolute ? Math.abs(w) : w;
                }
            }
        }
        float[] out = new float[L * L];
        for (int k = 0; k < out.length; k++) out[k] = (float) (sum[k] / E);
        return out;
    }

    /**
     * The branch output rebuilt from the attention: (Σ_j α_c[i, j]·u_j[c] + D[c]·u_i[c]) · silu(z_i[c]),
     * [L, E]. Equal to the recorded y: the invariant every form of α must satisfy (SPEC §3).
     */
    public float[] apply() {
        int L = t.length(), E = t.channels();
        float[] y = new float[L * E];
        for (int c = 0; c < E; c++) {
            for (int i = 0; i < L; i++) {
                double acc = t.dSkip()[c] * t.u()[i * E + c];
                for (int j = 0; j <= i; j++) acc += weight(c, i, j) * t.u()[j * E + c];
                double z = t.z()[i * E + c];
                y[i * E + c] = (float) (acc * z / (1 + Math.exp(-z)));
            }
        }
        return y;
    }
}
