package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import org.mambalens.engine.tensor.Tensor;

import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/**
 * The reverse pass of the forward kernels, for gradients with respect to activations (never weights:
 * explanations differentiate a logit by the model's inputs and intermediate tensors). Each function
 * takes the upstream gradient dy and the forward pass's inputs, and writes dx; callers add gradients
 * that meet at a branch point themselves.
 */
public final class Backward {
    private Backward() {
    }

    /** For Y = X·Wᵀ: dX [rows, in] = dY [rows, out] · W, W [out, in] in its checkpoint dtype. */
    public static void linear(float[] dx, float[] dy, int rows, Tensor w) {
        int out = w.dim(0), in = w.dim(1);
        float[] wt = new float[in * out];                                  // Wᵀ [in, out], so the forward GEMM computes dY·W
        float[] wf = w.toFloatArray();
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) wt[i * out + o] = wf[o * in + i];
        MatMul.matmul(dx, 0, in, dy, 0, out, rows, Tensor.of(w.name() + "ᵀ", wt, in, out), null);
    }

    /** For y = x·r·w with r = 1/√(mean(x²) + eps), per row: dx = r·(w⊙dy) − x·r³·mean(w⊙dy⊙x). */
    public static void rmsnorm(float[] dx, float[] dy, float[] x, float[] w, float eps, int rows, int d) {
        for (int t = 0; t < rows; t++) {
            int o = t * d;
            double ss = 0, dot = 0;
            for (int i = 0; i < d; i++) {
                ss += (double) x[o + i] * x[o + i];
                dot += (double) w[i] * dy[o + i] * x[o + i];
            }
            double r = 1 / Math.sqrt(ss / d + eps), k = r * r * r * dot / d;
            for (int i = 0; i < d; i++) dx[o + i] = (float) (r * w[i] * dy[o + i] - x[o + i] * k);
        }
    }

    /** For y = x̂·w + b with x̂ = (x − μ)·r, per row: dx = r·(g − mean(g) − x̂·mean(g⊙x̂)), g = w⊙dy. */
    public static void layernorm(float[] dx, float[] dy, float[] x, float[] w, float eps, int rows, int d) {
        double[] xhat = new double[d];
        for (int t = 0; t < rows; t++) {
            int o = t * d;
            double mean = 0, var = 0;
            for (int i = 0; i < d; i++) mean += x[o + i];
            mean /= d;
            for (int i = 0; i < d; i++) var += (x[o + i] - mean) * (x[o + i] - mean);
            double r = 1 / Math.sqrt(var / d + eps), gMean = 0, gxMean = 0;
            for (int i = 0; i < d; i++) {
                xhat[i] = (x[o + i] - mean) * r;
                double g = (double) w[i] * dy[o + i];
                gMean += g;
                gxMean += g * xhat[i];
            }
            gMean /= d;
            gxMean /= d;
            for (int i = 0; i < d; i++) dx[o + i] = (float) (r * (w[i] * dy[o + i] - gMean - xhat[i] * gxMean));
        }
    }

    /** dx = dy·silu'(x), silu'(x) = σ(x)·(1 + x·(1 − σ(x))). */
    public static void silu(float[] dx, float[] dy, float[] x, int n) {
        for (int i = 0; i < n; i++) dx[i] = dy[i] * siluDerivative(x[i]);
    }

    static float siluDerivative(float x) {
        float s = 1 / (1 + (float) Math.exp(-x));
        return s * (1 + x * (1 - s));
    }

    /** dx = dy·softplus'(x) = dy·σ(x), and dy itself where the forward returned x (x > 20, as PyTorch). */
    public static void softplus(float[] dx, float[] dy, float[] x, int n) {
        for (int i = 0; i < n; i++) dx[i] = x[i] > 20f ? dy[i] : dy[i] / (1 + (float) Math.exp(-x[i]));
    }

    /** dx = dy·gelu'(x) for the exact GELU x·Φ(x): gelu'(x) = Φ(x) + x·φ(x). */
    public static void gelu(float[] dx, float[] dy, float[] x, int n) {
        for (int i = 0; i < n; i++) {
            double v = x[i];
            double cdf = 0.5 * (1 + Scalar.erf(v / Math.sqrt(2))), pdf = Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
            dx[i] = (float) (dy[i] * (cdf + v * pdf));
        }
    }

    /** For rows p = softmax(s) at p[off + r·n]: ds = p⊙(dp − Σ p⊙dp), in place of dp. */
    public static void softmaxRows(float[] dp, float[] p, int off, int rows, int n) {
        for (int r = 0; r < rows; r++) {
            int o = off + r * n;
            double dot = 0;
            for (int j = 0; j < n; j++) dot += (double) p[o + j] * dp[o + j];
            for (int j = 0; j < n; j++) dp[o + j] = (float) (p[o + j] * (dp[o + j] - dot));
        }
    }

    /**
     * For the causal conv s[t, c] = bias[c] + Σ_k w[k, c]·x[t−K+1+k, c] from a zero window:
     * dx[t, c] = Σ_k w[k, c]·ds[t+K−1−k, c] over the outputs that exist.
     *
     * @param dx output [len, E] at dx[dxOff + t·lddx + c]
     */
    public static void causalConv(float[] dx, int dxOff, int lddx, float[] ds, float[] w, int len, int e, int taps) {
        for (int t = 0; t < len; t++) {
            for (int c = 0; c < e; c++) {
                float acc = 0;
                for (int k = 0; k < taps; k++) {
                    int out = t + taps - 1 - k;
                    if (out < len) acc += w[k * e + c] * ds[out * e + c];
                }
                dx[dxOff + t * lddx + c] = acc;
            }
        }
    }

    /** Where the selective scan's input gradients go: du, dΔ, dz [len, E]; dB, dC into dbc like the forward's bc. */
    public record ScanGradients(float[] du, float[] ddelta, float[] dbc, float[] dz) {
    }

    /**
     * The reverse of {@link SelectiveScan#scan} from a zero state. With g = silu(z) and p_t = C_t·H_t + D·u_t
     * (so y = p⊙g), the state gradient G runs backwards: G_t += C_t·dp_t, then
     * du_t = D·dp_t + Σ_n G_t·Δ_t·B_t, dB_t = Σ_c G_t·Δ_t·u_t, dC_t = Σ_c dp_t·H_t,
     * dΔ_t = Σ_n G_t·(A·Ā_t·H_{t−1} + B_t·u_t), G_{t−1} = Ā_t·G_t.
     * The states H_t are recomputed block by block of channels ([len, N, block] floats per thread).
     */
    public static void scan(ScanGradients out, float[] dy, SelectiveScan.Inputs in, float[] aT, float[] d, int len, int e, int n) {
        int vectors = e / LANES, perBlock = Math.max(1, Math.min(vectors, 128 / LANES));
        int blocks = (vectors + perBlock - 1) / perBlock;
        float[][] perBlockDbc = new float[blocks + (vectors * LANES < e ? 1 : 0)][];
        Parallel.forRange(perBlockDbc.length, 1, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                float[] dbc = perBlockDbc[b] = new float[out.dbc().length];
                int c0 = b * perBlock * LANES, c1 = b < blocks ? Math.min(vectors, (b + 1) * perBlock) * LANES : e;
                if (b < blocks) scanVectors(out, dbc, dy, in, aT, d, len, e, n, c0, c1);
                else scanBlock(out, dbc, dy, in, aT, d, len, e, n, c0, c1);
            }
        });
        // Summed block by block in channel order, whichever thread made each: the same bits for any thread count.
        java.util.Arrays.fill(out.dbc(), 0f);
        for (float[] dbc : perBlockDbc) for (int k = 0; k < dbc.length; k++) out.dbc()[k] += dbc[k];
    }

    /**
     * Channels [c0, c1), a whole number of vectors: the same recurrences as {@link #scanBlock}, vectorised
     * over channels, keeping Ā_t from the recomputation so that the reverse sweep needs no exponential.
     */
    private static void scanVectors(ScanGradients out, float[] dbc, float[] dy, SelectiveScan.Inputs in, float[] aT, float[] d,
                                    int len, int e, int n, int c0, int c1) {
        int w = c1 - c0;
        float[] u = in.u(), delta = in.delta(), bc = in.bc(), z = in.z();
        float[] h = new float[(len + 1) * n * w];                           // H_{t−1} at row t: row 0 is the zero state
        float[] decay = new float[len * n * w];                             // Ā_t = exp(Δ_t·A)
        float[] p = new float[len * w];                                     // p_t = C_t·H_t + D·u_t
        for (int t = 0; t < len; t++) {
            int bt = t * in.ldbc() + in.bOff(), ct = t * in.ldbc() + in.cOff();
            for (int c = c0; c < c1; c += LANES) {
                FloatVector.fromArray(F, d, c).mul(FloatVector.fromArray(F, u, t * e + c)).intoArray(p, t * w + c - c0);
            }
            for (int i = 0; i < n; i++) {
                FloatVector bti = FloatVector.broadcast(F, bc[bt + i]), cti = FloatVector.broadcast(F, bc[ct + i]);
                for (int c = c0; c < c1; c += LANES) {
                    int k = c - c0;
                    FloatVector dt = FloatVector.fromArray(F, delta, t * e + c), ut = FloatVector.fromArray(F, u, t * e + c);
                    FloatVector dA = Vectors.exp(dt.mul(FloatVector.fromArray(F, aT, i * e + c)));
                    dA.intoArray(decay, (t * n + i) * w + k);
                    FloatVector hv = dA.fma(FloatVector.fromArray(F, h, (t * n + i) * w + k), dt.mul(ut).mul(bti));
                    hv.intoArray(h, ((t + 1) * n + i) * w + k);
                    hv.fma(cti, FloatVector.fromArray(F, p, t * w + k)).intoArray(p, t * w + k);
                }
            }
        }
        float[] g = new float[n * w], dp = new float[w], du = new float[w], dd = new float[w];
        for (int t = len - 1; t >= 0; t--) {
            int bt = t * in.ldbc() + in.bOff(), ct = t * in.ldbc() + in.cOff(), zt = in.zOff() + t * in.ldz();
            for (int c = c0; c < c1; c += LANES) {
                int k = c - c0;
                FloatVector zv = FloatVector.fromArray(F, z, zt + c), dyt = FloatVector.fromArray(F, dy, t * e + c);
                FloatVector sig = FloatVector.broadcast(F, 1f).div(Vectors.exp(zv.neg()).add(1f));
                FloatVector dpv = dyt.mul(zv.mul(sig));                     // dy·silu(z)
                dpv.intoArray(dp, k);
                FloatVector siluPrime = sig.mul(zv.mul(sig.neg().add(1f)).add(1f));
                dyt.mul(FloatVector.fromArray(F, p, t * w + k)).mul(siluPrime).intoArray(out.dz(), t * e + c);
                FloatVector.fromArray(F, d, c).mul(dpv).intoArray(du, k);
                FloatVector.zero(F).intoArray(dd, k);
            }
            for (int i = 0; i < n; i++) {
                FloatVector bti = FloatVector.broadcast(F, bc[bt + i]), cti = FloatVector.broadcast(F, bc[ct + i]);
                FloatVector sumC = FloatVector.zero(F), sumB = sumC;
                for (int c = c0; c < c1; c += LANES) {
                    int k = c - c0, gi0 = i * w + k;
                    FloatVector dpv = FloatVector.fromArray(F, dp, k);
                    FloatVector dt = FloatVector.fromArray(F, delta, t * e + c), ut = FloatVector.fromArray(F, u, t * e + c);
                    FloatVector dA = FloatVector.fromArray(F, decay, (t * n + i) * w + k);
                    FloatVector hPrev = FloatVector.fromArray(F, h, (t * n + i) * w + k), hNow = FloatVector.fromArray(F, h, ((t + 1) * n + i) * w + k);
                    FloatVector gi = cti.fma(dpv, FloatVector.fromArray(F, g, gi0));
                    sumC = dpv.fma(hNow, sumC);
                    FloatVector giDt = gi.mul(dt);
                    giDt.fma(bti, FloatVector.fromArray(F, du, k)).intoArray(du, k);
                    sumB = giDt.fma(ut, sumB);
                    FloatVector a = FloatVector.fromArray(F, aT, i * e + c);
                    gi.fma(a.mul(dA).mul(hPrev).add(bti.mul(ut)), FloatVector.fromArray(F, dd, k)).intoArray(dd, k);
                    dA.mul(gi).intoArray(g, gi0);
                }
                dbc[ct + i] += Vectors.sum(sumC);
                dbc[bt + i] += Vectors.sum(sumB);
            }
            System.arraycopy(du, 0, out.du(), t * e + c0, w);
            System.arraycopy(dd, 0, out.ddelta(), t * e + c0, w);
        }
    }

    private static void scanBlock(ScanGradients out, float[] dbc, float[] dy, SelectiveScan.Inputs in, float[] aT, float[] d,
                                  int len, int e, int n, int c0, int c1) {
        int w = c1 - c0;
        float[] u = in.u(), delta = in.delta(), bc = in.bc(), z = in.z();
        float[] h = new float[(len + 1) * n * w];                           // H_{t−1} at row t: row 0 is the zero state
        float[] p = new float[len * w];                                     // p_t = C_t·H_t + D·u_t
        for (int t = 0; t < len; t++) {
            int bt = t * in.ldbc() + in.bOff(), ct = t * in.ldbc() + in.cOff();
            for (int c = c0; c < c1; c++) {
                float dt = delta[t * e + c], ut = u[t * e + c], acc = d[c] * ut;
                for (int i = 0; i < n; i++) {
                    float hv = (float) Math.exp(dt * aT[i * e + c]) * h[(t * n + i) * w + c - c0] + dt * ut * bc[bt + i];
                    h[((t + 1) * n + i) * w + c - c0] = hv;
                    acc += bc[ct + i] * hv;
                }
                p[t * w + c - c0] = acc;
            }
        }
        float[] g = new float[n * w];                                       // state gradient G [N, block]
        for (int t = len - 1; t >= 0; t--) {
            int bt = t * in.ldbc() + in.bOff(), ct = t * in.ldbc() + in.cOff(), zt = in.zOff() + t * in.ldz();
            for (int c = c0; c < c1; c++) {
                int k = c - c0;
                float zv = z[zt + c], gate = Scalar.silu(zv), dyt = dy[t * e + c];
                float dp = dyt * gate, dt = delta[t * e + c], ut = u[t * e + c];
                out.dz()[t * e + c] = dyt * p[t * w + k] * siluDerivative(zv);
                float du = d[c] * dp, dd = 0;
                for (int i = 0; i < n; i++) {
                    float hPrev = h[(t * n + i) * w + k], hNow = h[((t + 1) * n + i) * w + k];
                    float a = aT[i * e + c], decay = (float) Math.exp(dt * a);
                    float gi = g[i * w + k] + bc[ct + i] * dp;
                    dbc[ct + i] += dp * hNow;
                    du += gi * dt * bc[bt + i];
                    dbc[bt + i] += gi * dt * ut;
                    dd += gi * (a * decay * hPrev + bc[bt + i] * ut);
                    g[i * w + k] = decay * gi;
                }
                out.du()[t * e + c] = du;
                out.ddelta()[t * e + c] = dd;
            }
        }
    }
}
