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

    /** dx = dy·σ'(x) from the forward's output y = σ(x): σ'(x) = y·(1 − y). */
    public static void sigmoid(float[] dx, float[] dy, float[] y, int n) {
        for (int i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
    }

    /** dx = dy·2·max(x, 0), for y = max(x, 0)² (RWKV's channel mix). */
    public static void reluSquared(float[] dx, float[] dy, float[] x, int n) {
        for (int i = 0; i < n; i++) dx[i] = x[i] > 0 ? 2 * x[i] * dy[i] : 0f;
    }

    /** dx = dy where lo ≤ x ≤ hi, else 0: PyTorch's clamp, which passes the gradient at the bounds. */
    public static void clamp(float[] dx, float[] dy, float[] x, double lo, double hi, int n) {
        for (int i = 0; i < n; i++) dx[i] = x[i] >= lo && x[i] <= hi ? dy[i] : 0f;
    }

    /** dx = dy·gelu'(x) for the exact GELU x·Φ(x): gelu'(x) = Φ(x) + x·φ(x). */
    public static void gelu(float[] dx, float[] dy, float[] x, int n) {
        for (int i = 0; i < n; i++) {
            double v = x[i];
            double cdf = 0.5 * (1 + Scalar.erf(v / Math.sqrt(2))), pdf = Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
            dx[i] = (float) (dy[i] * (cdf + v * pdf));
        }
    }

    /**
     * dx = dy·gelu_tanh'(x) for PyTorch's tanh-approximated GELU x/2·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³):
     * gelu_tanh'(x) = (1 + tanh u)/2 + x/2·(1 − tanh² u)·√(2/π)·(1 + 3·0.044715·x²).
     */
    public static void geluTanh(float[] dx, float[] dy, float[] x, int n) {
        final double c = Math.sqrt(2 / Math.PI);
        for (int i = 0; i < n; i++) {
            double v = x[i], th = Math.tanh(c * (v + 0.044715 * v * v * v));
            dx[i] = (float) (dy[i] * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * c * (1 + 3 * 0.044715 * v * v)));
        }
    }

    /** For the soft cap y = cap·tanh(x/cap), given its output y: dx = dy·(1 − (y/cap)²). */
    public static void softCap(float[] dx, float[] dy, float[] y, float cap, int n) {
        for (int i = 0; i < n; i++) {
            double t = y[i] / (double) cap;
            dx[i] = (float) (dy[i] * (1 - t * t));
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

    /**
     * For Mamba-2's gated norm out = RMSNorm(y ⊙ silu(z)) [rows, dim]: with g = y ⊙ silu(z) and dg its
     * RMSNorm's reverse, dy = dg ⊙ silu(z) and dz = dg ⊙ y ⊙ silu'(z). All packed [rows, dim].
     */
    public static void gatedRmsnorm(float[] dy, float[] dz, float[] dOut, float[] y, float[] z, float[] w, float eps, int rows, int dim) {
        int n = rows * dim;
        float[] g = new float[n], dg = new float[n];
        for (int i = 0; i < n; i++) g[i] = y[i] * Scalar.silu(z[i]);
        rmsnorm(dg, dOut, g, w, eps, rows, dim);
        for (int i = 0; i < n; i++) {
            dy[i] = dg[i] * Scalar.silu(z[i]);
            dz[i] = dg[i] * y[i] * siluDerivative(z[i]);
        }
    }

    /** For RWKV's token shift out_t = μ ⊙ x_t + (1 − μ) ⊙ x_{t−1} from a zero state: dx_t = μ ⊙ dy_t + (1 − μ) ⊙ dy_{t+1}. */
    public static void tokenShift(float[] dx, float[] dy, float[] mix, int rows, int dim) {
        for (int t = 0; t < rows; t++) {
            for (int j = 0; j < dim; j++) {
                float next = t + 1 < rows ? dy[(t + 1) * dim + j] : 0f;
                dx[t * dim + j] = mix[j] * dy[t * dim + j] + (1 - mix[j]) * next;
            }
        }
    }

    /** Where the gated WKV's input gradients go, each packed [T, A]. */
    public record WkvGradients(float[] dGate, float[] dk, float[] dv) {
    }

    /**
     * The reverse of {@link Wkv#recurrence} from a fresh state. With ω_{t,i} the weights of wkv_t = Σ_{i≤t} ω_{t,i}·v_i
     * (the softmax over i of ℓ_{t,i} = (t−1−i)·w + k_i for i < t and u + k_t for i = t) and dw_t = dOut_t·gate_t:
     * <pre>
     *   dGate_t = dOut_t·wkv_t,     dv_i = Σ_{t≥i} dw_t·ω_{t,i},     dk_i = Σ_{t≥i} dw_t·ω_{t,i}·(v_i − wkv_t).
     * </pre>
     * The terms t > i come from β_i = Σ_{t>i} e^{(t−1−i)·w}·dw_t/Z_t and γ_i (the same with wkv_t), Z_t the row's
     * normaliser, run backwards as β_{i−1} = e^w·β_i + dw_i/Z_i; then Σ_{t>i} dw_t·ω_{t,i} = e^{k_i}·β_i. Like the
     * forward's state they are held as mantissas and one exponent, so e^{k_i}·β_i never overflows. The forward's
     * per-token wkv_t, ω_{t,t} and Z_t are recomputed first, as {@link Wkv#recurrence} computes them. Channels are
     * independent and run in parallel.
     */
    public static void wkv(WkvGradients out, float[] dOut, float[] gate, float[] k, float[] v, float[] decay, float[] bonus,
                           int tokens, int channels) {
        int A = channels, T = tokens;
        Parallel.forRange(A, Math.max(1, 4096 / Math.max(1, T)), (a0, a1) -> {
            float[] wkv = new float[T], self = new float[T], z = new float[T], zMax = new float[T];   // wkv_t, ω_{t,t}, Z_t = z·e^{zMax}
            for (int a = a0; a < a1; a++) {
                float w = decay[a], u = bonus[a], num = 0, den = 0, max = -1e38f;
                for (int t = 0; t < T; t++) {
                    int o = t * A + a;
                    float kt = k[o], vt = v[o];
                    float m = Math.max(max, kt + u), e1 = (float) Math.exp(max - m), e2 = (float) Math.exp(kt + u - m);
                    z[t] = e1 * den + e2;
                    zMax[t] = m;
                    wkv[t] = (e1 * num + e2 * vt) / z[t];
                    self[t] = e2 / z[t];
                    m = Math.max(max + w, kt);
                    e1 = (float) Math.exp(max + w - m);
                    e2 = (float) Math.exp(kt - m);
                    num = e1 * num + e2 * vt;
                    den = e1 * den + e2;
                    max = m;
                }
                double beta = 0, gamma = 0, exponent = -1e38;                    // β_t = beta·e^exponent, γ_t = gamma·e^exponent
                for (int t = T - 1; t >= 0; t--) {
                    int o = t * A + a;
                    double dw = (double) dOut[o] * gate[o], present = dw * self[t], past = Math.exp(k[o] + exponent);
                    out.dGate()[o] = dOut[o] * wkv[t];
                    out.dv()[o] = (float) (present + past * beta);
                    out.dk()[o] = (float) (present * (v[o] - wkv[t]) + past * (v[o] * beta - gamma));
                    double e = Math.max(-zMax[t], w + exponent);                // fold token t in: β_{t−1} = e^w·β_t + dw_t/Z_t
                    double kept = Math.exp(w + exponent - e), fresh = Math.exp(-zMax[t] - e) * dw / z[t];
                    beta = kept * beta + fresh;
                    gamma = kept * gamma + fresh * wkv[t];
                    exponent = e;
                }
            }
        });
    }

    /** Where the SSD scan's input gradients go: dx, dB, dC into dxbc [len, ld] at the forward's x·B·C columns; dΔ [len, H]. */
    public record SsdGradients(float[] dxbc, float[] ddelta) {
    }

    /**
     * The reverse of {@link SsdScan#scan} from a zero state. Per head h (of group g) and channel p, the state
     * gradient G_t = ∂/∂S_t [N] runs backwards, G_t = C_t·dy_t + Ā_{t+1}·G_{t+1} with Ā_t = exp(Δ_t·A), and
     * <pre>
     *   dx_t = D·dy_t + Δ_t·Σ_n G_t·B_t          dB_t = Σ_{h∈g, p} G_t·Δ_t·x_t        dC_t = Σ_{h∈g, p} dy_t·S_t
     *   dΔ_t = Σ_p ( A·Ā_t·Σ_n G_t·S_{t−1} + x_t·Σ_n G_t·B_t )
     * </pre>
     * The states S are recomputed channel by channel ([len + 1, N] floats per thread), vectorised over n. Heads
     * run in parallel, each into its own dB and dC, summed over the group's heads in head order afterwards: the
     * result does not depend on the number of threads (nor on the JIT: lanes are summed in order, not by reduceLanes).
     * Columns of dxbc outside x·B·C are left as they are.
     */
    public static void ssd(SsdGradients out, float[] dy, SsdScan.Inputs in, float[] a, float[] d, int len, int heads, int headDim,
                           int groups, int n) {
        ssd(out, dy, in, a, d, len, heads, headDim, groups, n, true);
    }

    /** {@link #ssd}, or with {@code vectorised} false its scalar twin (the same loops, every n in the scalar tail). */
    static void ssd(SsdGradients out, float[] dy, SsdScan.Inputs in, float[] a, float[] d, int len, int heads, int headDim,
                    int groups, int n, boolean vectorised) {
        int perGroup = heads / groups;
        float[][] dB = new float[heads][], dC = new float[heads][];        // per head [len, N]
        Parallel.forRange(heads, 1, (h0, h1) -> {
            float[] states = new float[(len + 1) * n];                      // S_{t−1} at row t: row 0 is the zero state
            for (int h = h0; h < h1; h++) {
                dB[h] = new float[len * n];
                dC[h] = new float[len * n];
                ssdHead(out, dB[h], dC[h], states, dy, in, a[h], d[h], h, h / perGroup, len, heads, headDim, n, vectorised ? n - n % LANES : 0);
            }
        });
        for (int t = 0; t < len; t++) {
            int row = t * in.ld();
            for (int g = 0; g < groups; g++) {
                for (int i = 0; i < n; i++) {
                    float sumB = 0, sumC = 0;
                    for (int h = g * perGroup; h < (g + 1) * perGroup; h++) {
                        sumB += dB[h][t * n + i];
                        sumC += dC[h][t * n + i];
                    }
                    out.dxbc()[row + in.bOff() + g * n + i] = sumB;
                    out.dxbc()[row + in.cOff() + g * n + i] = sumC;
                }
            }
        }
    }

    /** Head h of {@link #ssd}: its channels' dx and its dΔ into {@code out}, its dB, dC [len, N]; states [0, vectorEnd) as vectors. */
    private static void ssdHead(SsdGradients out, float[] dB, float[] dC, float[] states, float[] dy, SsdScan.Inputs in, float a, float d,
                                int h, int g, int len, int heads, int headDim, int n, int vectorEnd) {
        int E = heads * headDim;
        float[] xbc = in.xbc(), decay = new float[len], dDelta = new float[len], grad = new float[n];   // Ā_t, Σ_p dΔ_t, G [N]
        float[] lanes = new float[2 * LANES];
        for (int t = 0; t < len; t++) decay[t] = (float) Math.exp(in.delta()[t * heads + h] * a);
        for (int p = 0; p < headDim; p++) {
            int col = in.xOff() + h * headDim + p;
            for (int t = 0; t < len; t++) {                                 // S_t = Ā_t·S_{t−1} + Δ_t·x_t·B_t
                int b = t * in.ld() + in.bOff() + g * n, s0 = t * n, s1 = s0 + n, i = 0;
                float dx = in.delta()[t * heads + h] * xbc[t * in.ld() + col];
                for (; i < vectorEnd; i += LANES) {
                    FloatVector.fromArray(F, states, s0 + i).mul(decay[t]).add(FloatVector.fromArray(F, xbc, b + i).mul(dx)).intoArray(states, s1 + i);
                }
                for (; i < n; i++) states[s1 + i] = decay[t] * states[s0 + i] + dx * xbc[b + i];
            }
            java.util.Arrays.fill(grad, 0f);
            for (int t = len - 1; t >= 0; t--) {
                int row = t * in.ld(), b = row + in.bOff() + g * n, c = row + in.cOff() + g * n, s0 = t * n, s1 = s0 + n, i = 0;
                float dyt = dy[t * E + h * headDim + p], dt = in.delta()[t * heads + h], xt = xbc[row + col], dtx = dt * xt;
                FloatVector gbv = FloatVector.zero(F), gsv = gbv;               // Σ_n G_t·B_t, Σ_n G_t·S_{t−1}
                FloatVector dyv = FloatVector.broadcast(F, dyt), dtxv = FloatVector.broadcast(F, dtx);
                for (; i < vectorEnd; i += LANES) {
                    FloatVector gi = FloatVector.fromArray(F, xbc, c + i).fma(dyv, FloatVector.fromArray(F, grad, i));
                    FloatVector bv = FloatVector.fromArray(F, xbc, b + i);
                    FloatVector.fromArray(F, states, s1 + i).fma(dyv, FloatVector.fromArray(F, dC, s0 + i)).intoArray(dC, s0 + i);
                    gi.fma(dtxv, FloatVector.fromArray(F, dB, s0 + i)).intoArray(dB, s0 + i);
                    gbv = gi.fma(bv, gbv);
                    gsv = gi.fma(FloatVector.fromArray(F, states, s0 + i), gsv);
                    gi.mul(decay[t]).intoArray(grad, i);
                }
                float gb = 0, gs = 0;
                if (vectorEnd > 0) {                                        // lane by lane, in order: reduceLanes may sum in any order
                    gbv.intoArray(lanes, 0);
                    gsv.intoArray(lanes, LANES);
                    for (int l = 0; l < LANES; l++) {
                        gb += lanes[l];
                        gs += lanes[LANES + l];
                    }
                }
                for (; i < n; i++) {
                    float gi = grad[i] + xbc[c + i] * dyt;
                    dC[s0 + i] += dyt * states[s1 + i];
                    dB[s0 + i] += gi * dtx;
                    gb += gi * xbc[b + i];
                    gs += gi * states[s0 + i];
                    grad[i] = decay[t] * gi;
                }
                out.dxbc()[row + col] = d * dyt + dt * gb;
                dDelta[t] += a * decay[t] * gs + xt * gb;
            }
        }
        for (int t = 0; t < len; t++) out.ddelta()[t * heads + h] = dDelta[t];
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

    /**
     * transformers' bound on the derivative of √ in the RG-LRU's normaliser √(1 − a²) (its SqrtBoundDerivative):
     * d√y/dy = 1/√(max(4y, 1/1000²)), so at most 1000 where a is within about 1e-7 of 1.
     */
    private static final double MAX_SQRT_GRADIENT = 1000;

    /**
     * The reverse of {@link RgLru#scan} from position 0 (h_0 = i_0 ⊙ x_0) over T tokens of W channels in blocks of bw:
     * from dy = ∂/∂h [T, W] to dx = ∂/∂x [T, W], x [T, W] the scan's input. Per channel, the state gradient runs
     * backwards, G_t = dy_t + a_{t+1}·G_{t+1}; with m_t = √(1 − a_t²) (1 at t = 0, where a_0 does not act),
     * <pre>
     *   ∂x_t (direct) = G_t·i_t·m_t,   ∂i_t = G_t·x_t·m_t,
     *   ∂log a_t = G_t·a_t·h_{t−1} + G_t·x_t·i_t·∂m_t/∂log a_t,   ∂m_t/∂log a_t = −2a_t²·d√/dy at y = 1 − a_t²   (t > 0),
     *   ∂r_t = ∂log a_t·(−8·softplus(Λ)),
     * </pre>
     * then through σ to the gates' pre-activations and back through each block's [bw in, bw out] matrices to x_t.
     * The gates and states are recomputed here, block by block (blocks run in parallel).
     */
    public static void rgLru(float[] dx, float[] dy, float[] x, RgLru.Weights w, int tokens, int width, int blockWidth) {
        int T = tokens, W = width, bw = blockWidth;
        float[] ig = w.inputGate(), rg = w.recurrentGate(), lambda = w.softplusLambda();
        Parallel.forRange(W / bw, 1, (b0, b1) -> {
            float[] i = new float[T * bw], r = new float[T * bw], a = new float[T * bw], m = new float[T * bw];   // per token, the block's
            float[] h = new float[(T + 1) * bw];                            // h_{t−1} at row t: row 0 is the zero state
            float[] carry = new float[bw], dInputPre = new float[bw], dRecurrentPre = new float[bw];
            for (int block = b0; block < b1; block++) {
                int c0 = block * bw;
                for (int t = 0; t < T; t++) {                               // the forward again, as RgLru.scan computes it
                    for (int o = 0; o < bw; o++) {
                        float inputPre = w.inputGateBias()[c0 + o], recurrentPre = w.recurrentGateBias()[c0 + o];
                        for (int in = 0; in < bw; in++) {
                            float v = x[t * W + c0 + in];
                            inputPre += v * ig[(c0 + in) * bw + o];
                            recurrentPre += v * rg[(c0 + in) * bw + o];
                        }
                        int k = t * bw + o;
                        i[k] = Scalar.sigmoid(inputPre);
                        r[k] = Scalar.sigmoid(recurrentPre);
                        float logA = -8f * r[k] * lambda[c0 + o];
                        a[k] = (float) Math.exp(logA);
                        m[k] = t == 0 ? 1f : (float) Math.sqrt(1 - (float) Math.exp(2 * logA));
                        h[(t + 1) * bw + o] = (t == 0 ? 0f : a[k] * h[t * bw + o]) + x[t * W + c0 + o] * i[k] * m[k];
                    }
                }
                java.util.Arrays.fill(carry, 0f);                           // a_{t+1}·G_{t+1}
                for (int t = T - 1; t >= 0; t--) {
                    for (int o = 0; o < bw; o++) {
                        int k = t * bw + o, c = c0 + o;
                        double g = dy[t * W + c] + carry[o], xt = x[t * W + c], dLogA = 0;
                        dx[t * W + c] = (float) (g * i[k] * m[k]);
                        double dInput = g * xt * m[k];
                        if (t > 0) {
                            double aa = (double) a[k] * a[k], slope = 1 / Math.sqrt(Math.max(4 * (1 - aa), 1 / (MAX_SQRT_GRADIENT * MAX_SQRT_GRADIENT)));
                            dLogA = g * a[k] * h[t * bw + o] + g * xt * i[k] * (-2 * aa * slope);
                        }
                        dInputPre[o] = (float) (dInput * i[k] * (1 - i[k]));
                        dRecurrentPre[o] = (float) (dLogA * -8 * lambda[c] * r[k] * (1 - r[k]));
                        carry[o] = (float) (a[k] * g);
                    }
                    for (int in = 0; in < bw; in++) {                       // x_t's block feeds both gates through [in, out] matrices
                        int row = (c0 + in) * bw;
                        double acc = 0;
                        for (int o = 0; o < bw; o++) acc += ig[row + o] * dInputPre[o] + rg[row + o] * dRecurrentPre[o];
                        dx[t * W + c0 + in] += (float) acc;
                    }
                }
            }
        });
    }

    /**
     * The reverse of causal softmax attention over the whole sequence ({@link SlidingWindowAttention#apply} from
     * position 0) with grouped key/value heads: q [T, H·dh], k and v [T, KV·dh] are columns qOff, kOff, vOff of the
     * rows of qkv (ld apart), and dqkv [T, ld] receives ∂q, ∂k, ∂v at the same places. For head h (key/value head
     * g = h / (H/KV)) with its probabilities A_h [T, T] from probs [H, T, T] (0 where a query does not see, so a
     * window needs no parameter here):
     * <pre>
     *   ∂A = ∂C_h·V_gᵀ,   ∂S = A ⊙ (∂A − rowsum(A ⊙ ∂A))·scale,   ∂Q_h = ∂S·K_g,   ∂K_g += ∂Sᵀ·Q_h,   ∂V_g += A_hᵀ·∂C_h
     * </pre>
     * with ∂C = dContext [T, H·dh]. Key/value groups run in parallel.
     */
    public static void attention(float[] dqkv, float[] dContext, float[] qkv, int ld, int qOff, int kOff, int vOff, float[] probs,
                                 int tokens, int heads, int kvHeads, int headSize, float scale) {
        int T = tokens, H = heads, dh = headSize, perGroup = H / kvHeads;
        for (int t = 0; t < T; t++) java.util.Arrays.fill(dqkv, t * ld, t * ld + ld, 0f);
        Parallel.forRange(kvHeads, 1, (g0, g1) -> {
            float[] dA = new float[T];
            for (int g = g0; g < g1; g++) {
                int k = kOff + g * dh, v = vOff + g * dh;
                for (int h = g * perGroup; h < (g + 1) * perGroup; h++) {
                    int q = qOff + h * dh, c = h * dh;
                    for (int t = 0; t < T; t++) {
                        int p = (h * T + t) * T;
                        double dot = 0;
                        for (int s = 0; s <= t; s++) {
                            if (probs[p + s] == 0f) continue;
                            dA[s] = MatMul.dot(dContext, t * H * dh + c, qkv, s * ld + v, dh);
                            dot += (double) probs[p + s] * dA[s];
                        }
                        for (int s = 0; s <= t; s++) {
                            float pr = probs[p + s];
                            if (pr == 0f) continue;
                            float dS = (float) (pr * (dA[s] - dot) * scale);
                            MatMul.axpy(dS, qkv, s * ld + k, dqkv, t * ld + q, dh);           // ∂Q_h[t] += ∂S·K_g[s]
                            MatMul.axpy(dS, qkv, t * ld + q, dqkv, s * ld + k, dh);           // ∂K_g[s] += ∂S·Q_h[t]
                            MatMul.axpy(pr, dContext, t * H * dh + c, dqkv, s * ld + v, dh);  // ∂V_g[s] += A·∂C_h[t]
                        }
                    }
                }
            }
        });
    }
}
