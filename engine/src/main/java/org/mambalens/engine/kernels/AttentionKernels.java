package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/**
 * The loops of the hidden attention (DESIGN §3) computed block by block, and of its layer summary. A block of
 * a channel's α between two runs of Q tokens is a rank-N product, row factors [Q, N] times a column block
 * [N, Q]; Q = {@link #BLOCK} is four vectors, so a row of the product is four accumulators and has no tail.
 */
public final class AttentionKernels {
    /** Tokens per block: four vectors, so a row of a block is four accumulators. */
    public static final int BLOCK = 4 * LANES;

    private AttentionKernels() {
    }

    /**
     * out[at + p·ld + q] = Σ_k rows[r + p·n + k]·block[k·Q + q] for p &lt; count, q &lt; Q: rows [count, N]
     * times block [N, Q], k ascending in fused multiply-adds. Rows go two at a time, so that each load of the
     * block feeds two FMAs.
     */
    public static void rowsTimesBlock(float[] out, int at, int ld, float[] rows, int r, int count, float[] block, int n) {
        int p = 0;
        for (; p + 1 < count; p += 2) twoRowsTimesBlock(out, at + p * ld, ld, rows, r + p * n, block, n);
        if (p < count) rowTimesBlock(out, at + p * ld, rows, r + p * n, block, n);
    }

    /**
     * The product of {@link #rowsTimesBlock}, summed instead of written: for each of its elements v at (p, q),
     * sum[p·Q + q] += v and pos[p·Q + q] += max(v, 0), and extremes {min, max} widen to v. sum, pos [count, Q].
     */
    public static void accumulateRowsTimesBlock(float[] sum, float[] pos, float[] extremes, float[] rows, int r, int count,
                                                float[] block, int n) {
        int V = LANES;
        FloatVector zero = FloatVector.zero(F), lo = FloatVector.broadcast(F, extremes[0]), hi = FloatVector.broadcast(F, extremes[1]);
        for (int p = 0; p < count; p++) {
            FloatVector a0 = zero, a1 = zero, a2 = zero, a3 = zero;
            for (int k = 0; k < n; k++) {
                FloatVector x = FloatVector.broadcast(F, rows[r + p * n + k]);
                int o = k * BLOCK;
                a0 = FloatVector.fromArray(F, block, o).fma(x, a0);
                a1 = FloatVector.fromArray(F, block, o + V).fma(x, a1);
                a2 = FloatVector.fromArray(F, block, o + 2 * V).fma(x, a2);
                a3 = FloatVector.fromArray(F, block, o + 3 * V).fma(x, a3);
            }
            int s = p * BLOCK;
            FloatVector.fromArray(F, sum, s).add(a0).intoArray(sum, s);
            FloatVector.fromArray(F, sum, s + V).add(a1).intoArray(sum, s + V);
            FloatVector.fromArray(F, sum, s + 2 * V).add(a2).intoArray(sum, s + 2 * V);
            FloatVector.fromArray(F, sum, s + 3 * V).add(a3).intoArray(sum, s + 3 * V);
            FloatVector.fromArray(F, pos, s).add(a0.max(zero)).intoArray(pos, s);
            FloatVector.fromArray(F, pos, s + V).add(a1.max(zero)).intoArray(pos, s + V);
            FloatVector.fromArray(F, pos, s + 2 * V).add(a2.max(zero)).intoArray(pos, s + 2 * V);
            FloatVector.fromArray(F, pos, s + 3 * V).add(a3.max(zero)).intoArray(pos, s + 3 * V);
            lo = lo.min(a0.min(a1).min(a2.min(a3)));
            hi = hi.max(a0.max(a1).max(a2.max(a3)));
        }
        extremes[0] = lo.reduceLanes(VectorOperators.MIN);
        extremes[1] = hi.reduceLanes(VectorOperators.MAX);
    }

    /**
     * sum[k] += v and pos[k] += max(v, 0) for v = values[k], k in [from, from + n), and extremes {min, max}
     * widen to every v: one stretch of an attention matrix into a layer summary's running sums.
     */
    public static void accumulate(float[] sum, float[] pos, float[] extremes, float[] values, int from, int n) {
        FloatVector zero = FloatVector.zero(F), lo = FloatVector.broadcast(F, extremes[0]), hi = FloatVector.broadcast(F, extremes[1]);
        int k = from, end = from + n;
        for (; k + LANES <= end; k += LANES) {
            FloatVector v = FloatVector.fromArray(F, values, k);
            FloatVector.fromArray(F, sum, k).add(v).intoArray(sum, k);
            FloatVector.fromArray(F, pos, k).add(v.max(zero)).intoArray(pos, k);
            lo = lo.min(v);
            hi = hi.max(v);
        }
        float min = lo.reduceLanes(VectorOperators.MIN), max = hi.reduceLanes(VectorOperators.MAX);
        for (; k < end; k++) {
            float v = values[k];
            sum[k] += v;
            if (v > 0) pos[k] += v;
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        extremes[0] = min;
        extremes[1] = max;
    }

    /** {@link #rowTimesBlock} for rows r and r + n into out at `at` and `at + ld`. */
    private static void twoRowsTimesBlock(float[] out, int at, int ld, float[] rows, int r, float[] block, int n) {
        int V = LANES;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int k = 0; k < n; k++) {
            FloatVector x = FloatVector.broadcast(F, rows[r + k]), y = FloatVector.broadcast(F, rows[r + n + k]);
            int o = k * BLOCK;
            FloatVector s = FloatVector.fromArray(F, block, o);
            a0 = s.fma(x, a0);
            b0 = s.fma(y, b0);
            s = FloatVector.fromArray(F, block, o + V);
            a1 = s.fma(x, a1);
            b1 = s.fma(y, b1);
            s = FloatVector.fromArray(F, block, o + 2 * V);
            a2 = s.fma(x, a2);
            b2 = s.fma(y, b2);
            s = FloatVector.fromArray(F, block, o + 3 * V);
            a3 = s.fma(x, a3);
            b3 = s.fma(y, b3);
        }
        a0.intoArray(out, at);
        a1.intoArray(out, at + V);
        a2.intoArray(out, at + 2 * V);
        a3.intoArray(out, at + 3 * V);
        b0.intoArray(out, at + ld);
        b1.intoArray(out, at + ld + V);
        b2.intoArray(out, at + ld + 2 * V);
        b3.intoArray(out, at + ld + 3 * V);
    }

    /** out[at .. at + Q) = Σ_k rows[r + k]·block[k·Q .. k·Q + Q), four vectors wide. */
    private static void rowTimesBlock(float[] out, int at, float[] rows, int r, float[] block, int n) {
        int V = LANES;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < n; k++) {
            FloatVector x = FloatVector.broadcast(F, rows[r + k]);
            int o = k * BLOCK;
            a0 = FloatVector.fromArray(F, block, o).fma(x, a0);
            a1 = FloatVector.fromArray(F, block, o + V).fma(x, a1);
            a2 = FloatVector.fromArray(F, block, o + 2 * V).fma(x, a2);
            a3 = FloatVector.fromArray(F, block, o + 3 * V).fma(x, a3);
        }
        a0.intoArray(out, at);
        a1.intoArray(out, at + V);
        a2.intoArray(out, at + 2 * V);
        a3.intoArray(out, at + 3 * V);
    }
}
