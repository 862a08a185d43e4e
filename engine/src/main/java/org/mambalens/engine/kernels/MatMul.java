package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import org.mambalens.engine.io.DType;
import org.mambalens.engine.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * {@code Y = X · Wᵀ (+ b)} for a Linear weight W [out, in] kept in its checkpoint dtype (F32, F16 or
 * BF16, widened as it is read), X and Y row-major F32 with row strides (so a GEMM can read or write a
 * column range of a wider matrix).
 *
 * <p>One row (decode) is a matrix-vector product, bound by the bytes of W: rows of W are split across
 * threads and each is a dot product with four vector accumulators. Several rows (prefill) use a
 * register-blocked GEMM: W is packed panel by panel (NR vectors of outputs × KC inputs, widened to F32,
 * small enough for L1) and a micro-kernel accumulates broadcasts of MR rows of X against it in MR × NR/LANES
 * vector registers: 2 × 6 where there are 16 registers (AVX2), 4 × 4 where there are 32 (AVX-512).
 */
public final class MatMul {
    /**
     * The register tile, chosen from the vector width: with 16 vector registers (256-bit species, AVX2) 2 rows ×
     * 6 vectors of outputs (12 accumulators); with 32 (512-bit, AVX-512) 4 rows × 4 vectors (16 accumulators),
     * which loads half a vector less per FMA. Every output still sums its k in order, so both give the same bits.
     */
    private static final boolean WIDE = Vectors.LANES >= 16;
    private static final int NR = (WIDE ? 4 : 6) * Vectors.LANES;
    private static final int MR = WIDE ? 4 : 2;
    private static final int KC = 128;

    private MatMul() {
    }

    /**
     * Y[r, o] = Σ_k X[r, k]·W[o, k] (+ bias[o]) for r < rows.
     *
     * @param y    output, row r at y[yOff + r·ldy], columns [0, out)
     * @param x    input, row r at x[xOff + r·ldx], columns [0, in)
     * @param w    weight [out, in]
     * @param bias [out] or null
     */
    public static void matmul(float[] y, int yOff, int ldy, float[] x, int xOff, int ldx, int rows, Tensor w, float[] bias) {
        int out = w.dim(0), in = w.dim(1);
        checkBounds(y, yOff, ldy, out, x, xOff, ldx, in, rows);
        if (rows == 1) {
            matvec(y, yOff, x, xOff, w, bias);
            return;
        }
        int panels = (out + NR - 1) / NR;
        Parallel.forRange(panels, 1, (p0, p1) -> {
            float[] packed = new float[KC * NR], row = new float[KC];
            float[] tile = new float[MR * NR];
            for (int p = p0; p < p1; p++) gemmPanel(y, yOff, ldy, x, xOff, ldx, rows, w, bias, p * NR, packed, row, tile);
        });
    }

    /** All rows of X against the NR outputs [o0, o0 + NR) of W, KC inputs at a time. */
    private static void gemmPanel(float[] y, int yOff, int ldy, float[] x, int xOff, int ldx, int rows, Tensor w,
                                  float[] bias, int o0, float[] packed, float[] row, float[] tile) {
        int out = w.dim(0), in = w.dim(1), nr = Math.min(NR, out - o0);
        for (int k0 = 0; k0 < in; k0 += KC) {
            int kc = Math.min(KC, in - k0);
            pack(w, o0, nr, k0, kc, packed, row);
            boolean first = k0 == 0;
            int r = 0;
            for (; r + MR <= rows; r += MR) {
                if (WIDE) micro4x4(x, xOff + r * ldx + k0, ldx, kc, packed, tile);
                else micro2(x, xOff + r * ldx + k0, ldx, kc, packed, tile);
                store(y, yOff + r * ldy + o0, ldy, MR, tile, nr, first, bias, o0);
            }
            for (; r < rows; r++) {
                micro1(x, xOff + r * ldx + k0, kc, packed, tile);
                store(y, yOff + r * ldy + o0, ldy, 1, tile, nr, first, bias, o0);
            }
        }
    }

    /** y[o] = W[o, :]·x (+ bias[o]) for every output o, the rows of W split across threads. */
    public static void matvec(float[] y, int yOff, float[] x, int xOff, Tensor w, float[] bias) {
        int out = w.dim(0), in = w.dim(1);
        checkBounds(y, yOff, out, out, x, xOff, in, in, 1);
        DType type = w.dtype();
        MemorySegment seg = w.data();
        // Chunks of at least ~16k weights: below that a region costs more than it saves.
        Parallel.forRange(out, Math.max(1, 16384 / Math.max(1, in)), (o0, o1) -> {
            for (int o = o0; o < o1; o++) {
                float s = dot(type, seg, (long) o * in, x, xOff, in);
                y[yOff + o] = bias == null ? s : s + bias[o];
            }
        });
    }

    /**
     * y[yOff + c] = Σ_r x[xOff + r]·m[r·cols + c] for c < cols, r < rows: a row vector times a row-major
     * matrix (attention weights times the value rows), vectorised over c.
     */
    public static void vectorTimesMatrix(float[] y, int yOff, float[] x, int xOff, int rows, float[] m, int cols) {
        vectorTimesMatrix(y, yOff, x, xOff, rows, m, 0, cols);
    }

    /** As above, the matrix starting at m[mOff] (rows of a cache). */
    public static void vectorTimesMatrix(float[] y, int yOff, float[] x, int xOff, int rows, float[] m, int mOff, int cols) {
        int L = Vectors.LANES, c = 0;
        for (; c + L <= cols; c += L) {
            FloatVector acc = FloatVector.zero(Vectors.F);
            for (int r = 0; r < rows; r++) acc = FloatVector.fromArray(Vectors.F, m, mOff + r * cols + c).fma(FloatVector.broadcast(Vectors.F, x[xOff + r]), acc);
            acc.intoArray(y, yOff + c);
        }
        for (; c < cols; c++) {
            float acc = 0;
            for (int r = 0; r < rows; r++) acc += x[xOff + r] * m[mOff + r * cols + c];
            y[yOff + c] = acc;
        }
    }

    /** Σ_k a[aOff + k]·b[bOff + k], k < n, vectorised. */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector acc = FloatVector.zero(Vectors.F);
        int k = 0;
        for (; k + Vectors.LANES <= n; k += Vectors.LANES) {
            acc = FloatVector.fromArray(Vectors.F, a, aOff + k).fma(FloatVector.fromArray(Vectors.F, b, bOff + k), acc);
        }
        float sum = Vectors.sum(acc);
        for (; k < n; k++) sum += a[aOff + k] * b[bOff + k];
        return sum;
    }

    /** y[yOff + k] += alpha·x[xOff + k], k < n, vectorised. */
    public static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        FloatVector a = FloatVector.broadcast(Vectors.F, alpha);
        int k = 0;
        for (; k + Vectors.LANES <= n; k += Vectors.LANES) {
            FloatVector.fromArray(Vectors.F, x, xOff + k).fma(a, FloatVector.fromArray(Vectors.F, y, yOff + k)).intoArray(y, yOff + k);
        }
        for (; k < n; k++) y[yOff + k] += alpha * x[xOff + k];
    }

    /** Σ_k W[row + k]·x[xOff + k], k < n, with four independent accumulators to hide FMA latency. */
    static float dot(DType type, MemorySegment w, long row, float[] x, int xOff, int n) {
        int L = Vectors.LANES;
        FloatVector a0 = FloatVector.zero(Vectors.F), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k + 4 * L <= n; k += 4 * L) {
            a0 = Vectors.load(type, w, row + k).fma(FloatVector.fromArray(Vectors.F, x, xOff + k), a0);
            a1 = Vectors.load(type, w, row + k + L).fma(FloatVector.fromArray(Vectors.F, x, xOff + k + L), a1);
            a2 = Vectors.load(type, w, row + k + 2 * L).fma(FloatVector.fromArray(Vectors.F, x, xOff + k + 2 * L), a2);
            a3 = Vectors.load(type, w, row + k + 3 * L).fma(FloatVector.fromArray(Vectors.F, x, xOff + k + 3 * L), a3);
        }
        for (; k + L <= n; k += L) {
            a0 = Vectors.load(type, w, row + k).fma(FloatVector.fromArray(Vectors.F, x, xOff + k), a0);
        }
        float s = Vectors.sum(a0.add(a1).add(a2.add(a3)));
        for (; k < n; k++) s += Scalar.weight(type, w, row + k) * x[xOff + k];
        return s;
    }

    /** packed[k·NR + j] = W[o0 + j, k0 + k] widened to F32; columns j ≥ nr are zero. */
    private static void pack(Tensor w, int o0, int nr, int k0, int kc, float[] packed, float[] row) {
        int in = w.dim(1), L = Vectors.LANES;
        DType type = w.dtype();
        MemorySegment seg = w.data();
        if (nr < NR) java.util.Arrays.fill(packed, 0f);
        for (int j = 0; j < nr; j++) {
            long start = (long) (o0 + j) * in + k0;
            int k = 0;
            for (; k + L <= kc; k += L) Vectors.load(type, seg, start + k).intoArray(row, k);   // widen a row stretch at once
            for (; k < kc; k++) row[k] = Scalar.weight(type, seg, start + k);
            for (k = 0; k < kc; k++) packed[k * NR + j] = row[k];
        }
    }

    /**
     * MR = 2 rows of X against a packed W panel of NR outputs: twelve vector accumulators stay in
     * registers over the kc inputs, then go to {@code tile} [MR, NR]. No vector crosses a call, so none
     * is ever boxed (a vector passed to a method C2 declines to inline is allocated on the heap).
     */
    private static void micro2(float[] x, int xo, int ldx, int kc, float[] packed, float[] tile) {
        int L = Vectors.LANES;
        FloatVector c00 = FloatVector.zero(Vectors.F), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c05 = c00,
                c10 = c00, c11 = c00, c12 = c00, c13 = c00, c14 = c00, c15 = c00;
        for (int k = 0; k < kc; k++) {
            FloatVector a0 = FloatVector.broadcast(Vectors.F, x[xo + k]);
            FloatVector a1 = FloatVector.broadcast(Vectors.F, x[xo + ldx + k]);
            int pk = k * NR;
            FloatVector b = FloatVector.fromArray(Vectors.F, packed, pk);
            c00 = b.fma(a0, c00);
            c10 = b.fma(a1, c10);
            b = FloatVector.fromArray(Vectors.F, packed, pk + L);
            c01 = b.fma(a0, c01);
            c11 = b.fma(a1, c11);
            b = FloatVector.fromArray(Vectors.F, packed, pk + 2 * L);
            c02 = b.fma(a0, c02);
            c12 = b.fma(a1, c12);
            b = FloatVector.fromArray(Vectors.F, packed, pk + 3 * L);
            c03 = b.fma(a0, c03);
            c13 = b.fma(a1, c13);
            b = FloatVector.fromArray(Vectors.F, packed, pk + 4 * L);
            c04 = b.fma(a0, c04);
            c14 = b.fma(a1, c14);
            b = FloatVector.fromArray(Vectors.F, packed, pk + 5 * L);
            c05 = b.fma(a0, c05);
            c15 = b.fma(a1, c15);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, L);
        c02.intoArray(tile, 2 * L);
        c03.intoArray(tile, 3 * L);
        c04.intoArray(tile, 4 * L);
        c05.intoArray(tile, 5 * L);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + L);
        c12.intoArray(tile, NR + 2 * L);
        c13.intoArray(tile, NR + 3 * L);
        c14.intoArray(tile, NR + 4 * L);
        c15.intoArray(tile, NR + 5 * L);
    }

    /** MR = 4 rows against a panel of NR = 4 vectors (the 512-bit tile): sixteen accumulators, four broadcasts and four loads per k. */
    private static void micro4x4(float[] x, int xo, int ldx, int kc, float[] packed, float[] tile) {
        int L = Vectors.LANES;
        FloatVector c00 = FloatVector.zero(Vectors.F), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00,
                c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        for (int k = 0; k < kc; k++) {
            int pk = k * NR;
            FloatVector b0 = FloatVector.fromArray(Vectors.F, packed, pk), b1 = FloatVector.fromArray(Vectors.F, packed, pk + L),
                    b2 = FloatVector.fromArray(Vectors.F, packed, pk + 2 * L), b3 = FloatVector.fromArray(Vectors.F, packed, pk + 3 * L);
            FloatVector a = FloatVector.broadcast(Vectors.F, x[xo + k]);
            c00 = b0.fma(a, c00);
            c01 = b1.fma(a, c01);
            c02 = b2.fma(a, c02);
            c03 = b3.fma(a, c03);
            a = FloatVector.broadcast(Vectors.F, x[xo + ldx + k]);
            c10 = b0.fma(a, c10);
            c11 = b1.fma(a, c11);
            c12 = b2.fma(a, c12);
            c13 = b3.fma(a, c13);
            a = FloatVector.broadcast(Vectors.F, x[xo + 2 * ldx + k]);
            c20 = b0.fma(a, c20);
            c21 = b1.fma(a, c21);
            c22 = b2.fma(a, c22);
            c23 = b3.fma(a, c23);
            a = FloatVector.broadcast(Vectors.F, x[xo + 3 * ldx + k]);
            c30 = b0.fma(a, c30);
            c31 = b1.fma(a, c31);
            c32 = b2.fma(a, c32);
            c33 = b3.fma(a, c33);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, L);
        c02.intoArray(tile, 2 * L);
        c03.intoArray(tile, 3 * L);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + L);
        c12.intoArray(tile, NR + 2 * L);
        c13.intoArray(tile, NR + 3 * L);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + L);
        c22.intoArray(tile, 2 * NR + 2 * L);
        c23.intoArray(tile, 2 * NR + 3 * L);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + L);
        c32.intoArray(tile, 3 * NR + 2 * L);
        c33.intoArray(tile, 3 * NR + 3 * L);
    }

    /**
     * One row of X against the packed panel (the rows a full tile leaves over), one vector of outputs at a time:
     * each output sums its k in the same order as in the tiles, for either width.
     */
    private static void micro1(float[] x, int xo, int kc, float[] packed, float[] tile) {
        for (int j = 0; j < NR; j += Vectors.LANES) {
            FloatVector c = FloatVector.zero(Vectors.F);
            for (int k = 0; k < kc; k++) c = FloatVector.fromArray(Vectors.F, packed, k * NR + j).fma(FloatVector.broadcast(Vectors.F, x[xo + k]), c);
            c.intoArray(tile, j);
        }
    }

    /** Adds (or, on the first K block, writes with the bias) `rows` rows of the tile into Y. */
    private static void store(float[] y, int yo, int ldy, int rows, float[] tile, int nr, boolean first, float[] bias, int o0) {
        for (int r = 0; r < rows; r++) {
            int row = yo + r * ldy, t = r * NR, j = 0;
            if (nr == NR) {
                for (; j < NR; j += Vectors.LANES) {
                    FloatVector base = first ? (bias == null ? FloatVector.zero(Vectors.F) : FloatVector.fromArray(Vectors.F, bias, o0 + j))
                            : FloatVector.fromArray(Vectors.F, y, row + j);
                    base.add(FloatVector.fromArray(Vectors.F, tile, t + j)).intoArray(y, row + j);
                }
            }
            for (; j < nr; j++) y[row + j] = (first ? (bias == null ? 0f : bias[o0 + j]) : y[row + j]) + tile[t + j];
        }
    }

    private static void checkBounds(float[] y, int yOff, int ldy, int out, float[] x, int xOff, int ldx, int in, int rows) {
        if (rows < 1 || ldy < out || ldx < in || yOff < 0 || xOff < 0
                || yOff + (long) (rows - 1) * ldy + out > y.length || xOff + (long) (rows - 1) * ldx + in > x.length) {
            throw new IllegalArgumentException("matmul bounds: rows " + rows + ", in " + in + ", out " + out + ", x " + x.length
                    + " (off " + xOff + ", ld " + ldx + "), y " + y.length + " (off " + yOff + ", ld " + ldy + ")");
        }
    }
}
