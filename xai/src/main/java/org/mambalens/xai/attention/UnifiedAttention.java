package org.mambalens.xai.attention;

import org.mambalens.engine.trace.MixerTrace;

/**
 * The unified implicit attention of a Mamba mixer branch (DESIGN §4, "Explaining Modern Gated-Linear
 * RNNs via a Unified Implicit Attention Formulation"): per channel c, the data-controlled operator from
 * the conv input x' (in_proj's first half) to the gated branch output y,
 * <pre>
 *   M_c = diag(silu(z_c)) · (α_c + diag(D_c)) · diag(σ(s_c)) · T_c,     y_c = M_c · x'_c + m_c,
 * </pre>
 * where T_c is the causal Toeplitz matrix of the conv kernel, silu(s) = σ(s)·s is written as the
 * data-controlled diagonal diag(σ(s)), and m_c = diag(silu(z_c)) · (α_c + diag(D_c)) · σ(s_c)·bias_c
 * is the conv-bias term. M_c is lower-triangular.
 */
public final class UnifiedAttention {
    private final MixerTrace t;
    private final HiddenAttention alpha;

    private UnifiedAttention(MixerTrace trace) {
        this.t = trace;
        this.alpha = HiddenAttention.of(trace);
    }

    public static UnifiedAttention of(MixerTrace trace) {
        return new UnifiedAttention(trace);
    }

    public int length() {
        return t.length();
    }

    public int channels() {
        return t.channels();
    }

    /** M_c [L, L], row-major. */
    public float[] channel(int c) {
        int L = t.length();
        float[] out = new float[L * L];
        channel(c, out, new HiddenAttention.Workspace(t), new float[L * L]);
        return out;
    }

    /** M_c into out [L, L]; {@code alphaBuffer} [L, L] receives α_c on the way. */
    void channel(int c, float[] out, HiddenAttention.Workspace ws, float[] alphaBuffer) {
        alpha.channel(c, alphaBuffer, ws);
        double[] inner = innerRows(c, alphaBuffer);
        int L = t.length(), E = t.channels(), K = t.convKernel();
        java.util.Arrays.fill(out, 0f);
        for (int i = 0; i < L; i++) {
            double gate = silu(t.z()[i * E + c]);
            for (int j = 0; j <= i; j++) {
                double sum = 0;                                             // Σ_k inner[i, k]·T[k, j], T[k, j] = w[K−1−(k−j)]
                for (int k = j; k <= Math.min(i, j + K - 1); k++) sum += inner[i * L + k] * t.convTaps()[(K - 1 - (k - j)) * E + c];
                out[i * L + j] = (float) (gate * sum);
            }
        }
    }

    /** The conv-bias term m_c [L] (zeros without a conv bias). */
    public float[] biasTerm(int c) {
        int L = t.length();
        return t.convBias() == null ? new float[L] : biasTerm(c, innerRows(c, alpha.channel(c)));
    }

    private float[] biasTerm(int c, double[] inner) {
        int L = t.length(), E = t.channels();
        float[] out = new float[L];
        if (t.convBias() == null) return out;
        for (int i = 0; i < L; i++) {
            double sum = 0;
            for (int k = 0; k <= i; k++) sum += inner[i * L + k];
            out[i] = (float) (silu(t.z()[i * E + c]) * sum * t.convBias()[c]);
        }
        return out;
    }

    /** y rebuilt as M·x' + m, [L, E]: equal to the recorded y (the DESIGN §4 invariant). */
    public float[] apply() {
        int L = t.length(), E = t.channels();
        float[] y = new float[L * E], m = new float[L * L], alphaC = new float[L * L];
        HiddenAttention.Workspace ws = new HiddenAttention.Workspace(t);
        for (int c = 0; c < E; c++) {
            channel(c, m, ws, alphaC);
            float[] bias = biasTerm(c, innerRows(c, alphaC));
            for (int i = 0; i < L; i++) {
                double acc = bias[i];
                for (int j = 0; j <= i; j++) acc += m[i * L + j] * t.x()[j * E + c];
                y[i * E + c] = (float) acc;
            }
        }
        return y;
    }

    /** (α_c + diag(D_c))·diag(σ(s_c)) [L, L]. */
    private double[] innerRows(int c, float[] alphaC) {
        int L = t.length(), E = t.channels();
        double[] out = new double[L * L];
        for (int i = 0; i < L; i++) {
            for (int k = 0; k <= i; k++) {
                double a = alphaC[i * L + k] + (i == k ? t.dSkip()[c] : 0);
                out[i * L + k] = a * sigmoid(t.s()[k * E + c]);
            }
        }
        return out;
    }

    private static double sigmoid(double v) {
        return 1 / (1 + Math.exp(-v));
    }

    private static double silu(double v) {
        return v * sigmoid(v);
    }
}
