package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/** Activations, RMSNorm, scaling and residual adds over rows of F32 activations. */
public final class Elementwise {
    private Elementwise() {
    }

    /** out[i] = silu(in[i]) = in·σ(in), i < n, for `rows` rows with the given strides. */
    public static void silu(float[] out, int outOff, int ldOut, float[] in, int inOff, int ldIn, int rows, int n) {
        for (int r = 0; r < rows; r++) {
            int o = outOff + r * ldOut, s = inOff + r * ldIn, i = 0;
            for (; i + LANES <= n; i += LANES) {
                FloatVector v = FloatVector.fromArray(F, in, s + i);
                v.div(Vectors.exp(v.neg()).add(1f)).intoArray(out, o + i);
            }
            for (; i < n; i++) out[o + i] = Scalar.silu(in[s + i]);
        }
    }

    /**
     * y[i] ·= silu(z[i]), i &lt; n: the gate as the fused kernels apply it (y·(z / (e^−z + 1)), the same bits). A method of its
     * own so that the kernel calling it stays below C2's inlining budget: past it, the gate's exponential was left out of
     * line and its vectors were boxed on the heap at every call.
     */
    public static void multiplyBySilu(float[] y, int yOff, float[] z, int zOff, int n) {
        int i = 0;
        for (; i + LANES <= n; i += LANES) {
            FloatVector zv = FloatVector.fromArray(F, z, zOff + i);
            FloatVector.fromArray(F, y, yOff + i).mul(zv.div(Vectors.exp(zv.neg()).add(1f))).intoArray(y, yOff + i);
        }
        for (; i < n; i++) y[yOff + i] *= Scalar.silu(z[zOff + i]);
    }

    /** x = softplus(x) in place over x[off, off + n), with PyTorch's threshold of 20. */
    public static void softplus(float[] x, int off, int n) {
        int i = 0;
        for (; i + LANES <= n; i += LANES) {
            FloatVector v = FloatVector.fromArray(F, x, off + i);
            // log(1 + e^x) = max(x, 0) + log(1 + e^−|x|): the logarithm's argument stays in (1, 2], and the exponential's
            // in range (the same bits as exp, with fewer operations: with both functions inlined, the fuller exp took
            // this loop past C2's inlining budget where callers inline it, and the logarithm's vectors were boxed).
            FloatVector sp = v.max(0f).add(Vectors.log1pUnit(Vectors.expInRange(v.abs().neg())));
            sp.blend(v, v.compare(VectorOperators.GT, 20f)).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] = Scalar.softplus(x[off + i]);
    }

    /** y = x / sqrt(mean(x²) + eps) ⊙ w for `rows` packed rows of length d. */
    public static void rmsnorm(float[] y, float[] x, float[] w, float eps, int rows, int d) {
        for (int r = 0; r < rows; r++) {
            int base = r * d, i = 0;
            FloatVector acc = FloatVector.zero(F);
            for (; i + LANES <= d; i += LANES) {
                FloatVector v = FloatVector.fromArray(F, x, base + i);
                acc = v.fma(v, acc);
            }
            float ss = Vectors.sum(acc);
            for (; i < d; i++) ss += x[base + i] * x[base + i];
            float inv = (float) (1.0 / Math.sqrt(ss / d + eps));
            i = 0;
            for (; i + LANES <= d; i += LANES) {
                FloatVector.fromArray(F, x, base + i).mul(inv).mul(FloatVector.fromArray(F, w, i)).intoArray(y, base + i);
            }
            for (; i < d; i++) y[base + i] = x[base + i] * inv * w[i];
        }
    }

    /** y = (x − mean) / sqrt(var + eps) ⊙ w + b for `rows` packed rows of length d. */
    public static void layernorm(float[] y, float[] x, float[] w, float[] b, float eps, int rows, int d) {
        layernorm(y, 0, d, x, 0, d, w, b, eps, rows, d);
    }

    /** As above, row r of y at y[yOff + r·ldy] and of x at x[xOff + r·ldx] (y may be x itself). */
    public static void layernorm(float[] y, int yOff, int ldy, float[] x, int xOff, int ldx, float[] w, float[] b, float eps, int rows, int d) {
        for (int r = 0; r < rows; r++) {
            int base = xOff + r * ldx, out = yOff + r * ldy, i = 0;
            FloatVector acc = FloatVector.zero(F);
            for (; i + LANES <= d; i += LANES) acc = acc.add(FloatVector.fromArray(F, x, base + i));
            float sum = Vectors.sum(acc);
            for (; i < d; i++) sum += x[base + i];
            float mean = sum / d;
            FloatVector m = FloatVector.broadcast(F, mean);
            acc = FloatVector.zero(F);
            for (i = 0; i + LANES <= d; i += LANES) {
                FloatVector c = FloatVector.fromArray(F, x, base + i).sub(m);
                acc = c.fma(c, acc);
            }
            float ss = Vectors.sum(acc);
            for (; i < d; i++) ss += (x[base + i] - mean) * (x[base + i] - mean);
            float inv = (float) (1.0 / Math.sqrt(ss / d + eps));
            for (i = 0; i + LANES <= d; i += LANES) {
                FloatVector.fromArray(F, x, base + i).sub(m).mul(inv).fma(FloatVector.fromArray(F, w, i), FloatVector.fromArray(F, b, i))
                        .intoArray(y, out + i);
            }
            for (; i < d; i++) y[out + i] = (x[base + i] - mean) * inv * w[i] + b[i];
        }
    }

    /**
     * x = gelu(x) = x/2·(1 + erf(x/√2)) in place over x[off, off + n): the exact GELU, with erf from the
     * same Chebyshev fit as {@link Scalar#erf} (1.2e-7 relative), evaluated in float lanes.
     */
    public static void gelu(float[] x, int off, int n) {
        int i = off, end = off + n;
        for (; i + LANES <= end; i += LANES) {
            FloatVector v = FloatVector.fromArray(F, x, i);
            FloatVector z = v.mul((float) (1 / Math.sqrt(2))).abs();
            FloatVector t = z.mul(0.5f).add(1f);
            t = FloatVector.broadcast(F, 1f).div(t);
            FloatVector p = t.fma(0.17087277f, -0.82215223f);
            p = p.fma(t, FloatVector.broadcast(F, 1.48851587f));
            p = p.fma(t, FloatVector.broadcast(F, -1.13520398f));
            p = p.fma(t, FloatVector.broadcast(F, 0.27886807f));
            p = p.fma(t, FloatVector.broadcast(F, -0.18628806f));
            p = p.fma(t, FloatVector.broadcast(F, 0.09678418f));
            p = p.fma(t, FloatVector.broadcast(F, 0.37409196f));
            p = p.fma(t, FloatVector.broadcast(F, 1.00002368f));
            p = p.fma(t, FloatVector.broadcast(F, -1.26551223f));
            FloatVector erfc = t.mul(Vectors.exp(p.sub(z.mul(z))));      // erfc(|x|/√2)
            FloatVector erf = FloatVector.broadcast(F, 1f).sub(erfc);
            erf = erf.blend(erf.neg(), v.compare(VectorOperators.LT, 0f));
            v.mul(0.5f).mul(erf.add(1f)).intoArray(x, i);
        }
        for (; i < end; i++) x[i] = Scalar.gelu(x[i]);
    }

    /** x = x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³))) in place over x[off, off + n): PyTorch's tanh-approximated GELU. */
    public static void geluTanh(float[] x, int off, int n) {
        final double c = Math.sqrt(2 / Math.PI);
        for (int i = off; i < off + n; i++) {
            double v = x[i];
            x[i] = (float) (0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v))));
        }
    }

    /**
     * Each of `rows` rows of length n starting at x[off] becomes softmax(row), max-subtracted; a row's last, partial
     * vector is taken masked, so every exponential is {@link Vectors#exp}.
     */
    public static void softmaxRows(float[] x, int off, int rows, int n) {
        int whole = n - n % LANES;
        VectorMask<Float> tail = Vectors.firstLanes(n - whole);
        for (int r = 0; r < rows; r++) {
            int base = off + r * n, i = 0;
            FloatVector mv = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; i < whole; i += LANES) mv = mv.max(FloatVector.fromArray(F, x, base + i));
            if (i < n) mv = mv.blend(mv.max(FloatVector.fromArray(F, x, base + i, tail)), tail);
            float max = mv.reduceLanes(VectorOperators.MAX);
            FloatVector sv = FloatVector.zero(F);
            for (i = 0; i < whole; i += LANES) {
                FloatVector e = Vectors.exp(FloatVector.fromArray(F, x, base + i).sub(max));
                e.intoArray(x, base + i);
                sv = sv.add(e);
            }
            if (i < n) {
                FloatVector e = Vectors.exp(FloatVector.fromArray(F, x, base + i, tail).sub(max));
                e.intoArray(x, base + i, tail);
                sv = sv.add(e, tail);
            }
            float inv = 1f / Vectors.sum(sv);
            for (i = 0; i < whole; i += LANES) FloatVector.fromArray(F, x, base + i).mul(inv).intoArray(x, base + i);
            if (i < n) FloatVector.fromArray(F, x, base + i, tail).mul(inv).intoArray(x, base + i, tail);
        }
    }

    /** x += y over n elements. */
    public static void addInPlace(float[] x, float[] y, int n) {
        addInPlace(x, 0, y, 0, n);
    }

    /** x[xOff + i] += y[yOff + i] for i &lt; n. */
    public static void addInPlace(float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        for (; i + LANES <= n; i += LANES) {
            FloatVector.fromArray(F, x, xOff + i).add(FloatVector.fromArray(F, y, yOff + i)).intoArray(x, xOff + i);
        }
        for (; i < n; i++) x[xOff + i] += y[yOff + i];
    }

    /** out[outOff + i] = s·x[xOff + i] for i &lt; n. */
    public static void scale(float[] out, int outOff, float[] x, int xOff, float s, int n) {
        int i = 0;
        for (; i + LANES <= n; i += LANES) FloatVector.fromArray(F, x, xOff + i).mul(s).intoArray(out, outOff + i);
        for (; i < n; i++) out[outOff + i] = x[xOff + i] * s;
    }

    /** out[outOff + r·n + k] = x[xOff + r·n + k]·y[yOff + k] for r &lt; rows, k &lt; n: each row of x times the same y. */
    public static void multiplyRows(float[] out, int outOff, float[] x, int xOff, float[] y, int yOff, int rows, int n) {
        int whole = n - n % LANES;
        for (int r = 0; r < rows; r++) {
            int o = outOff + r * n, i = xOff + r * n, k = 0;
            for (; k < whole; k += LANES) FloatVector.fromArray(F, x, i + k).mul(FloatVector.fromArray(F, y, yOff + k)).intoArray(out, o + k);
            for (; k < n; k++) out[o + k] = x[i + k] * y[yOff + k];
        }
    }

    /** x[off + i] = 0 where it is below floor, for i &lt; n. */
    public static void zeroBelow(float[] x, int off, float floor, int n) {
        int i = 0;
        for (; i + LANES <= n; i += LANES) {
            FloatVector v = FloatVector.fromArray(F, x, off + i);
            v.blend(0f, v.compare(VectorOperators.LT, floor)).intoArray(x, off + i);
        }
        for (; i < n; i++) if (x[off + i] < floor) x[off + i] = 0f;
    }

    /** One past the last element of x[off ..+ n) that is not zero; 0 if all are. */
    public static int endOfNonZeros(float[] x, int off, int n) {
        int end = n;
        for (; end % LANES != 0; end--) if (x[off + end - 1] != 0f) return end;
        for (; end > 0; end -= LANES) {
            int last = FloatVector.fromArray(F, x, off + end - LANES).compare(VectorOperators.NE, 0f).lastTrue();
            if (last >= 0) return end - LANES + last + 1;
        }
        return 0;
    }

    /**
     * out[outOff + i] = exp(s·x[xOff + i]) for i &lt; n, each s·x at most 88 (above it the result is undefined): the
     * decays of the hidden attention, exp(A·(S_i − S_j)).
     */
    public static void expOfScaled(float[] out, int outOff, float[] x, int xOff, float s, int n) {
        int i = 0;
        for (; i + LANES <= n; i += LANES) {
            Vectors.expInRange(FloatVector.fromArray(F, x, xOff + i).mul(s)).intoArray(out, outOff + i);
        }
        for (; i < n; i++) out[outOff + i] = (float) Math.exp(x[xOff + i] * s);
    }

    /**
     * out[outOff + r·n + i] = exp(s_r·x[xOff + i])·y[yOff + r·n + i] for r &lt; rows, i &lt; n, s_r = scales[sOff + r], each
     * s_r·x at most 88: every token's decays times its C, in one pass (a row is a vector or two of states, too short for
     * a call of its own).
     */
    public static void expOfScaledRowsTimes(float[] out, int outOff, float[] x, int xOff, float[] scales, int sOff, float[] y, int yOff,
                                            int rows, int n) {
        int whole = n - n % LANES;
        for (int r = 0; r < rows; r++) {
            float s = scales[sOff + r];
            int o = outOff + r * n, yo = yOff + r * n, i = 0;
            for (; i < whole; i += LANES) {
                FloatVector e = Vectors.expInRange(FloatVector.fromArray(F, x, xOff + i).mul(s));
                e.mul(FloatVector.fromArray(F, y, yo + i)).intoArray(out, o + i);
            }
            for (; i < n; i++) out[o + i] = (float) Math.exp(x[xOff + i] * s) * y[yo + i];
        }
    }

    /**
     * out[outOff + i] = exp(s·x[xOff + i])·y[yOff + i]·z[zOff + i] for i &lt; n, multiplied left to right, s·x at most 88: a
     * state's column decays times B times Δ, in one pass.
     */
    public static void expOfScaledTimes(float[] out, int outOff, float[] x, int xOff, float s, float[] y, int yOff, float[] z, int zOff, int n) {
        int i = 0;
        for (; i + LANES <= n; i += LANES) {
            FloatVector e = Vectors.expInRange(FloatVector.fromArray(F, x, xOff + i).mul(s));
            e.mul(FloatVector.fromArray(F, y, yOff + i)).mul(FloatVector.fromArray(F, z, zOff + i)).intoArray(out, outOff + i);
        }
        for (; i < n; i++) out[outOff + i] = (float) Math.exp(x[xOff + i] * s) * y[yOff + i] * z[zOff + i];
    }
}
