package org.mambalens.xai.attention;

import org.mambalens.engine.trace.SsdTrace;

/**
 * The unified implicit attention of a Mamba-2 mixer (DESIGN §4): per inner channel c (channel p of head h),
 * the data-controlled operator from the conv input x' to the gated, normalised output,
 * <pre>
 *   M_c = diag(w_c · silu(z_c) / rms) · (α_h + D_h·I) · diag(σ(s_c)) · T_c,     out_c = M_c · x'_c + m_c,
 * </pre>
 * where T_c is the causal Toeplitz matrix of the channel's conv taps, silu(s) = σ(s)·s is written as the
 * data-controlled diagonal diag(σ(s)), rms_i is the RMS over all channels of y_i ⊙ silu(z_i) that the gated
 * RMSNorm divides by (a data-controlled scalar per token), and m_c is the conv-bias term.
 */
public final class SsdUnifiedAttention {
    private final SsdTrace t;
    private final SsdAttention alpha;
    private final double[] rowScale;   // 1 / rms_i [L]

    private SsdUnifiedAttention(SsdTrace trace) {
        this.t = trace;
        this.alpha = SsdAttention.of(trace);
        int L = trace.length(), E = trace.heads() * trace.headDim();
        rowScale = new double[L];
        for (int i = 0; i < L; i++) {
            double ss = 0;
            for (int c = 0; c < E; c++) {
                double g = trace.y()[i * E + c] * silu(trace.z()[i * E + c]);
                ss += g * g;
            }
            rowScale[i] = 1 / Math.sqrt(ss / E + trace.norm().eps());
        }
    }

    public static SsdUnifiedAttention of(SsdTrace trace) {
        return new SsdUnifiedAttention(trace);
    }

    /** M_c [L, L], row-major. */
    public float[] channel(int c) {
        return channel(c, alpha.head(c / t.headDim()));
    }

    private float[] channel(int c, float[] alphaH) {
        int L = t.length(), E = t.heads() * t.headDim(), K = t.conv().kernel();
        double[] inner = inner(c, alphaH);
        float[] m = new float[L * L];
        for (int i = 0; i < L; i++) {
            double gate = gate(c, i);
            for (int j = 0; j <= i; j++) {
                double sum = 0;                                             // Σ_k inner[i, k]·T[k, j], T[k, j] = w[K−1−(k−j)]
                for (int k = j; k <= Math.min(i, j + K - 1); k++) sum += inner[i * L + k] * t.conv().taps()[(K - 1 - (k - j)) * E + c];
                m[i * L + j] = (float) (gate * sum);
            }
        }
        return m;
    }

    /** The normalised output rebuilt as M·x' + m, [L, H·P]: equal to the recorded gated RMSNorm output (the invariant). */
    public float[] apply() {
        int L = t.length(), P = t.headDim(), E = t.heads() * P;
        float[] out = new float[L * E];
        for (int h = 0; h < t.heads(); h++) {
            float[] alphaH = alpha.head(h);                                 // one α per head serves its P channels
            for (int c = h * P; c < (h + 1) * P; c++) {
                float[] m = channel(c, alphaH);
                double[] inner = t.conv().bias() == null ? null : inner(c, alphaH);
                for (int i = 0; i < L; i++) {
                    double acc = 0;
                    for (int j = 0; j <= i; j++) acc += m[i * L + j] * t.conv().input()[j * E + c];
                    if (inner != null) {
                        double bias = 0;
                        for (int k = 0; k <= i; k++) bias += inner[i * L + k];
                        acc += gate(c, i) * bias * t.conv().bias()[c];
                    }
                    out[i * E + c] = (float) acc;
                }
            }
        }
        return out;
    }

    /** (α_h + D_h·I)·diag(σ(s_c)) [L, L]. */
    private double[] inner(int c, float[] alphaH) {
        int L = t.length(), E = t.heads() * t.headDim(), h = c / t.headDim();
        double[] out = new double[L * L];
        for (int i = 0; i < L; i++) {
            for (int k = 0; k <= i; k++) {
                double a = alphaH[i * L + k] + (i == k ? t.d()[h] : 0);
                out[i * L + k] = a * sigmoid(t.conv().output()[k * E + c]);
            }
        }
        return out;
    }

    /** w_c · silu(z_c[i]) / rms_i. */
    private double gate(int c, int i) {
        int E = t.heads() * t.headDim();
        return t.norm().weight()[c] * silu(t.z()[i * E + c]) * rowScale[i];
    }

    private static double sigmoid(double v) {
        return 1 / (1 + Math.exp(-v));
    }

    private static double silu(double v) {
        return v * sigmoid(v);
    }
}
