package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/**
 * The loops of the hidden attention (DESIGN §3) and of its layer summary. A stretch of a channel's α between a
 * run of rows and a run of earlier columns is a rank-N product, row factors [rows, N] times column factors
 * [N, columns]; it is made four rows at a time against four vectors of columns where there are 32 vector
 * registers (AVX-512: sixteen accumulators, four loads and four broadcasts per state), two vectors where there
 * are 16 (AVX2), and what remains two or one at a time; a summary sums it by a separate pass over it.
 */
public final class AttentionKernels {
    /** Tokens per block: one vector of columns, and whole groups of the product's four rows. */
    public static final int BLOCK = LANES;
    private static final boolean WIDE = LANES >= 16;
    /** Rows the product makes at a time: its row counts are multiples of this. */
    public static final int PRODUCT_ROWS = 4;

    /**
     * A row stride for a matrix of {@code length} columns whose consecutive rows are read or written up to
     * {@code width} columns at a time: whole blocks, and enough more that consecutive rows start at least that
     * width (up to 2 KiB) apart modulo 4 KiB. Rows a multiple of 4 KiB long share L1 sets, and a row's loads wait
     * on the previous row's stores to the same 4 KiB offsets (4K aliasing): three to four times slower at 1,024
     * tokens.
     */
    public static int rowStride(int length, int width) {
        int stride = (length + BLOCK - 1) / BLOCK * BLOCK, bytes = Math.min(Math.min(width, length) * Float.BYTES, 2048);
        while (stride * Float.BYTES % 4096 < bytes || stride * Float.BYTES % 4096 > 4096 - bytes) stride += BLOCK;
        return stride;
    }

    private AttentionKernels() {
    }

    /**
     * out[at + p·ld + q] = Σ_m rows[r + p·n + m]·columns[c + m·cld + q] for p &lt; count, q &lt; width: rows [count, n]
     * times columns [n, width], m ascending in fused multiply-adds from zero. count is a multiple of
     * {@link #PRODUCT_ROWS}, width of the vector width.
     */
    public static void product(float[] out, int at, int ld, float[] rows, int r, int count, float[] columns, int c, int cld, int width, int n) {
        product(out, at, ld, rows, r, count, columns, c, cld, width, n, null, 0);
    }

    /**
     * As above, where the b-th vector of columns is zero from state {@code states[s + b]} on (null: none is): the
     * sums leave those zero terms out, as many as the other vectors made at the same time allow. The values are the
     * same (a zero term changes a sum at most from −0 to +0); at long sequences the far columns' fast-decaying
     * states are such zeros.
     */
    public static void product(float[] out, int at, int ld, float[] rows, int r, int count, float[] columns, int c, int cld, int width, int n,
                               int[] states, int s) {
        int q = 0;                                      // a run of columns at a time, down all the rows: its terms counted once
        if (WIDE) {
            for (; q + 4 * LANES <= width; q += 4 * LANES) {
                int terms = states == null ? n : terms(states, s + q / LANES, 4);
                for (int p = 0; p < count; p += PRODUCT_ROWS) fourRowsTimesFourVectors(out, at + p * ld + q, ld, rows, r + p * n, n, columns, c + q, cld, terms);
            }
        }
        for (; q + 2 * LANES <= width; q += 2 * LANES) {
            int terms = states == null ? n : terms(states, s + q / LANES, 2);
            for (int p = 0; p < count; p += PRODUCT_ROWS) fourRowsTimesTwoVectors(out, at + p * ld + q, ld, rows, r + p * n, n, columns, c + q, cld, terms);
        }
        if (q < width) {
            int terms = states == null ? n : states[s + q / LANES];
            for (int p = 0; p < count; p += PRODUCT_ROWS) fourRowsTimesOneVector(out, at + p * ld + q, ld, rows, r + p * n, n, columns, c + q, cld, terms);
        }
    }

    /** The states that some vector among states[from ..+ vectors) needs. */
    private static int terms(int[] states, int from, int vectors) {
        int most = 0;
        for (int b = from; b < from + vectors; b++) most = Math.max(most, states[b]);
        return most;
    }

    private static void fourRowsTimesFourVectors(float[] out, int at, int ld, float[] rows, int r, int n, float[] columns, int c, int cld, int terms) {
        int V = LANES;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
        for (int m = 0; m < terms; m++) {
            FloatVector w = FloatVector.broadcast(F, rows[r + m]), x = FloatVector.broadcast(F, rows[r + n + m]);
            FloatVector y = FloatVector.broadcast(F, rows[r + 2 * n + m]), z = FloatVector.broadcast(F, rows[r + 3 * n + m]);
            int o = c + m * cld;
            FloatVector s = FloatVector.fromArray(F, columns, o);
            a0 = s.fma(w, a0);
            b0 = s.fma(x, b0);
            c0 = s.fma(y, c0);
            d0 = s.fma(z, d0);
            s = FloatVector.fromArray(F, columns, o + V);
            a1 = s.fma(w, a1);
            b1 = s.fma(x, b1);
            c1 = s.fma(y, c1);
            d1 = s.fma(z, d1);
            s = FloatVector.fromArray(F, columns, o + 2 * V);
            a2 = s.fma(w, a2);
            b2 = s.fma(x, b2);
            c2 = s.fma(y, c2);
            d2 = s.fma(z, d2);
            s = FloatVector.fromArray(F, columns, o + 3 * V);
            a3 = s.fma(w, a3);
            b3 = s.fma(x, b3);
            c3 = s.fma(y, c3);
            d3 = s.fma(z, d3);
        }
        storeRow(out, at, a0, a1, a2, a3);
        storeRow(out, at + ld, b0, b1, b2, b3);
        storeRow(out, at + 2 * ld, c0, c1, c2, c3);
        storeRow(out, at + 3 * ld, d0, d1, d2, d3);
    }

    private static void storeRow(float[] out, int at, FloatVector v0, FloatVector v1, FloatVector v2, FloatVector v3) {
        v0.intoArray(out, at);
        v1.intoArray(out, at + LANES);
        v2.intoArray(out, at + 2 * LANES);
        v3.intoArray(out, at + 3 * LANES);
    }

    private static void fourRowsTimesTwoVectors(float[] out, int at, int ld, float[] rows, int r, int n, float[] columns, int c, int cld, int terms) {
        int V = LANES;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        for (int m = 0; m < terms; m++) {
            FloatVector w = FloatVector.broadcast(F, rows[r + m]), x = FloatVector.broadcast(F, rows[r + n + m]);
            FloatVector y = FloatVector.broadcast(F, rows[r + 2 * n + m]), z = FloatVector.broadcast(F, rows[r + 3 * n + m]);
            int o = c + m * cld;
            FloatVector s = FloatVector.fromArray(F, columns, o), t = FloatVector.fromArray(F, columns, o + V);
            a0 = s.fma(w, a0);
            a1 = t.fma(w, a1);
            b0 = s.fma(x, b0);
            b1 = t.fma(x, b1);
            c0 = s.fma(y, c0);
            c1 = t.fma(y, c1);
            d0 = s.fma(z, d0);
            d1 = t.fma(z, d1);
        }
        a0.intoArray(out, at);
        a1.intoArray(out, at + V);
        b0.intoArray(out, at + ld);
        b1.intoArray(out, at + ld + V);
        c0.intoArray(out, at + 2 * ld);
        c1.intoArray(out, at + 2 * ld + V);
        d0.intoArray(out, at + 3 * ld);
        d1.intoArray(out, at + 3 * ld + V);
    }

    /**
     * out[at + m·ld + b·LANES + q] = columns[c + m·cld + b·LANES + q]·factors[f + b·n + m] for m &lt; states, b &lt; blocks,
     * q &lt; LANES: blocks of a vector of columns each, every state of a block scaled by its own factor. The states from
     * {@code states} to n, whose factors are zeros, are left out.
     */
    public static void scaleBlocks(float[] out, int at, int ld, float[] columns, int c, int cld, float[] factors, int f, int blocks, int n, int states) {
        for (int m = 0; m < states; m++) {
            for (int b = 0; b < blocks; b++) {
                int q = b * LANES;
                FloatVector.fromArray(F, columns, c + m * cld + q).mul(factors[f + b * n + m]).intoArray(out, at + m * ld + q);
            }
        }
    }

    private static void fourRowsTimesOneVector(float[] out, int at, int ld, float[] rows, int r, int n, float[] columns, int c, int cld, int terms) {
        FloatVector a = FloatVector.zero(F), b = a, d = a, e = a;
        for (int m = 0; m < terms; m++) {
            FloatVector s = FloatVector.fromArray(F, columns, c + m * cld);
            a = s.fma(FloatVector.broadcast(F, rows[r + m]), a);
            b = s.fma(FloatVector.broadcast(F, rows[r + n + m]), b);
            d = s.fma(FloatVector.broadcast(F, rows[r + 2 * n + m]), d);
            e = s.fma(FloatVector.broadcast(F, rows[r + 3 * n + m]), e);
        }
        a.intoArray(out, at);
        b.intoArray(out, at + ld);
        d.intoArray(out, at + 2 * ld);
        e.intoArray(out, at + 3 * ld);
    }

    /**
     * For each v = values[from + p·vld + q], p &lt; count, q &lt; width + p·growth: sum[at + p·ld + q] += v,
     * pos[at + p·ld + q] += max(v, 0), and extremes {min, max} widen to v. Rows of an attention matrix into a
     * layer summary's running sums, a stretch of equal rows (growth 0) or of a lower triangle (growth 1); a row's
     * last vector is masked where it is not whole.
     */
    public static void accumulate(float[] sum, float[] pos, int at, int ld, float[] extremes, float[] values, int from, int vld, int count,
                                  int width, int growth) {
        FloatVector zero = FloatVector.zero(F), lo = FloatVector.broadcast(F, extremes[0]), hi = FloatVector.broadcast(F, extremes[1]);
        for (int p = 0; p < count; p++) {
            int s = at + p * ld, x = from + p * vld, w = width + p * growth, whole = w - w % LANES;
            for (int q = 0; q < whole; q += LANES) {
                FloatVector v = FloatVector.fromArray(F, values, x + q);
                FloatVector.fromArray(F, sum, s + q).add(v).intoArray(sum, s + q);
                FloatVector.fromArray(F, pos, s + q).add(v, v.compare(VectorOperators.GT, zero)).intoArray(pos, s + q);
                lo = lo.blend(v, v.compare(VectorOperators.LT, lo));
                hi = hi.blend(v, v.compare(VectorOperators.GT, hi));
            }
            if (whole == w) continue;
            VectorMask<Float> tail = Vectors.firstLanes(w - whole);
            FloatVector v = FloatVector.fromArray(F, values, x + whole, tail);
            FloatVector.fromArray(F, sum, s + whole, tail).add(v).intoArray(sum, s + whole, tail);
            FloatVector.fromArray(F, pos, s + whole, tail).add(v, v.compare(VectorOperators.GT, zero)).intoArray(pos, s + whole, tail);
            lo = lo.blend(v, v.compare(VectorOperators.LT, lo).and(tail));
            hi = hi.blend(v, v.compare(VectorOperators.GT, hi).and(tail));
        }
        extremes[0] = lo.reduceLanes(VectorOperators.MIN);
        extremes[1] = hi.reduceLanes(VectorOperators.MAX);
    }
}
