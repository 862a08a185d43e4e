package org.mambalens.engine.kernels;

import org.mambalens.engine.io.DType;
import org.mambalens.engine.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Plain-loop twins of every vector kernel, written straight from the equations in DESIGN §2. Tests
 * compare the vector kernels with these on random data and awkward sizes.
 */
public final class Scalar {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Scalar() {
    }

    static float weight(DType type, MemorySegment seg, long index) {
        return switch (type) {
            case F32 -> seg.getAtIndex(F32, index);
            case BF16 -> Float.intBitsToFloat((seg.getAtIndex(I16, index) & 0xFFFF) << 16);
            case F16 -> Float.float16ToFloat(seg.getAtIndex(I16, index));
            default -> throw new IllegalArgumentException("kernels read F32, F16 or BF16, not " + type);
        };
    }

    /** Y[r, o] = Σ_k X[r, k]·W[o, k] (+ bias[o]), X [rows, in], Y [rows, out], both packed. */
    public static void matmul(float[] y, float[] x, int rows, Tensor w, float[] bias) {
        int out = w.dim(0), in = w.dim(1);
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                double s = bias == null ? 0 : bias[o];
                for (int k = 0; k < in; k++) s += (double) x[r * in + k] * w.getFloat((long) o * in + k);
                y[r * out + o] = (float) s;
            }
        }
    }

    public static float silu(float x) {
        return x / (1f + (float) Math.exp(-x));
    }

    public static float sigmoid(float x) {
        return 1f / (1f + (float) Math.exp(-x));
    }

    /** x rounded to the nearest bfloat16 (ties to even), as PyTorch's float → bfloat16 conversion. */
    public static float roundToBfloat16(float x) {
        int bits = Float.floatToIntBits(x);
        return Float.intBitsToFloat((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000);
    }

    /** softplus(x) = log(1 + e^x), and x itself above 20 as PyTorch does. */
    public static float softplus(float x) {
        return x > 20f ? x : (float) Math.log1p(Math.exp(x));
    }

    /** y = (x − mean) / sqrt(var + eps) ⊙ w + b over rows of length d (biased variance, as PyTorch). */
    public static void layernorm(float[] y, float[] x, float[] w, float[] b, float eps, int rows, int d) {
        for (int r = 0; r < rows; r++) {
            double mean = 0, var = 0;
            for (int i = 0; i < d; i++) mean += x[r * d + i];
            mean /= d;
            for (int i = 0; i < d; i++) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
            double inv = 1.0 / Math.sqrt(var / d + eps);
            for (int i = 0; i < d; i++) y[r * d + i] = (float) ((x[r * d + i] - mean) * inv * w[i] + b[i]);
        }
    }

    /** Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)), as PyTorch's default (not the tanh approximation). */
    public static float gelu(float x) {
        return (float) (0.5 * x * (1 + erf(x / Math.sqrt(2))));
    }

    /** erf to ~1.2e-7 relative (Numerical Recipes' Chebyshev fit of erfc), computed in double. */
    static double erf(double x) {
        double z = Math.abs(x), t = 1 / (1 + 0.5 * z);
        double erfc = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? 1 - erfc : erfc - 1;
    }

    /** Each row of length n becomes softmax(row). */
    public static void softmaxRows(float[] x, int rows, int n) {
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int i = 0; i < n; i++) max = Math.max(max, x[r * n + i]);
            for (int i = 0; i < n; i++) sum += Math.exp(x[r * n + i] - max);
            for (int i = 0; i < n; i++) x[r * n + i] = (float) (Math.exp(x[r * n + i] - max) / sum);
        }
    }

    /** y = x / sqrt(mean(x²) + eps) ⊙ w over rows of length d. */
    public static void rmsnorm(float[] y, float[] x, float[] w, float eps, int rows, int d) {
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double) x[r * d + i] * x[r * d + i];
            float inv = (float) (1.0 / Math.sqrt(ss / d + eps));
            for (int i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * inv * w[i];
        }
    }

    /**
     * s[t, c] = bias[c] + Σ_k w[k, c]·x[t-K+1+k, c], zeros before t = 0.
     * x [L, E], w [K, E] (tap-major), s [L, E].
     */
    public static void causalConv(float[] s, float[] x, float[] w, float[] bias, int len, int e, int taps) {
        for (int t = 0; t < len; t++) {
            for (int c = 0; c < e; c++) {
                double acc = bias == null ? 0 : bias[c];
                for (int k = 0; k < taps; k++) {
                    int src = t - taps + 1 + k;
                    if (src >= 0) acc += (double) w[k * e + c] * x[src * e + c];
                }
                s[t * e + c] = (float) acc;
            }
        }
    }

    /**
     * The selective scan of DESIGN §2 from H = 0, gated: y[t, c] = (Σ_n C[t,n]·H_t[c,n] + D[c]·u[t,c])·silu(z[t,c])
     * with H_t[c,n] = exp(Δ[t,c]·A[c,n])·H_{t-1}[c,n] + Δ[t,c]·B[t,n]·u[t,c].
     * u, Δ, z, y [L, E]; B, C [L, N]; A [E, N] (already −exp(A_log)); D [E].
     */
    public static void selectiveScan(float[] y, float[] u, float[] delta, float[] b, float[] c, float[] z, float[] a,
                                     float[] d, int len, int e, int n) {
        double[] h = new double[e * n];
        for (int t = 0; t < len; t++) {
            for (int ch = 0; ch < e; ch++) {
                double dt = delta[t * e + ch], ut = u[t * e + ch], acc = 0;
                for (int i = 0; i < n; i++) {
                    h[ch * n + i] = Math.exp(dt * a[ch * n + i]) * h[ch * n + i] + dt * b[t * n + i] * ut;
                    acc += c[t * n + i] * h[ch * n + i];
                }
                y[t * e + ch] = (float) ((acc + d[ch] * ut) * silu(z[t * e + ch]));
            }
        }
    }

    /** x[xOff + i] += y[yOff + i] for i < n. */
    public static void addInPlace(float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) x[xOff + i] += y[yOff + i];
    }

    /** out[outOff + i] = s·x[xOff + i] for i < n. */
    public static void scale(float[] out, int outOff, float[] x, int xOff, float s, int n) {
        for (int i = 0; i < n; i++) out[outOff + i] = x[xOff + i] * s;
    }

    /** out[outOff + i] = x[xOff + i]·y[yOff + i] for i < n. */
    public static void multiply(float[] out, int outOff, float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) out[outOff + i] = x[xOff + i] * y[yOff + i];
    }

    /** out[outOff + r·n + k] = x[xOff + r·n + k]·y[yOff + k] for r < rows, k < n. */
    public static void multiplyRows(float[] out, int outOff, float[] x, int xOff, float[] y, int yOff, int rows, int n) {
        for (int r = 0; r < rows; r++) multiply(out, outOff + r * n, x, xOff + r * n, y, yOff, n);
    }

    /** x[off + i] = 0 where it is below floor, for i < n. */
    public static void zeroBelow(float[] x, int off, float floor, int n) {
        for (int i = 0; i < n; i++) if (x[off + i] < floor) x[off + i] = 0f;
    }

    /** One past the last element of x[off ..+ n) that is not zero; 0 if all are. */
    public static int endOfNonZeros(float[] x, int off, int n) {
        int end = n;
        while (end > 0 && x[off + end - 1] == 0f) end--;
        return end;
    }

    /** out[outOff + i] = exp(s·x[xOff + i]) for i < n. */
    public static void expOfScaled(float[] out, int outOff, float[] x, int xOff, float s, int n) {
        for (int i = 0; i < n; i++) out[outOff + i] = (float) Math.exp(x[xOff + i] * s);
    }

    /** out[outOff + i] = exp(s·x[xOff + i])·y[yOff + i] for i < n. */
    public static void expOfScaledTimes(float[] out, int outOff, float[] x, int xOff, float s, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) out[outOff + i] = (float) Math.exp(x[xOff + i] * s) * y[yOff + i];
    }

    /** out[outOff + i] = exp(s·x[xOff + i])·y[yOff + i]·z[zOff + i] for i < n. */
    public static void expOfScaledTimes(float[] out, int outOff, float[] x, int xOff, float s, float[] y, int yOff, float[] z, int zOff, int n) {
        for (int i = 0; i < n; i++) out[outOff + i] = (float) Math.exp(x[xOff + i] * s) * y[yOff + i] * z[zOff + i];
    }

    /** out[at + p·ld + q] = Σ_m rows[r + p·n + m]·columns[c + m·cld + q] for p < count, q < width: {@link AttentionKernels#product}. */
    public static void product(float[] out, int at, int ld, float[] rows, int r, int count, float[] columns, int c, int cld, int width, int n) {
        for (int p = 0; p < count; p++) {
            for (int q = 0; q < width; q++) {
                double s = 0;
                for (int m = 0; m < n; m++) s += (double) rows[r + p * n + m] * columns[c + m * cld + q];
                out[at + p * ld + q] = (float) s;
            }
        }
    }

    /** out[at + m·ld + b·LANES + q] = columns[c + m·cld + b·LANES + q]·factors[f + b·n + m], m &lt; states: {@link AttentionKernels#scaleBlocks}. */
    public static void scaleBlocks(float[] out, int at, int ld, float[] columns, int c, int cld, float[] factors, int f, int blocks, int n, int states) {
        int V = Vectors.LANES;
        for (int m = 0; m < states; m++) {
            for (int q = 0; q < blocks * V; q++) out[at + m * ld + q] = columns[c + m * cld + q] * factors[f + (q / V) * n + m];
        }
    }

    /** sum[at + p·ld + q] += v, pos[..] += max(v, 0) for v = values[from + p·vld + q], p < count, q < width + p·growth; extremes {min, max} widen to every v. */
    public static void accumulate(float[] sum, float[] pos, int at, int ld, float[] extremes, float[] values, int from, int vld, int count,
                                  int width, int growth) {
        for (int p = 0; p < count; p++) {
            for (int q = 0; q < width + p * growth; q++) {
                float v = values[from + p * vld + q];
                sum[at + p * ld + q] += v;
                pos[at + p * ld + q] += Math.max(v, 0f);
                extremes[0] = Math.min(extremes[0], v);
                extremes[1] = Math.max(extremes[1], v);
            }
        }
    }
}
