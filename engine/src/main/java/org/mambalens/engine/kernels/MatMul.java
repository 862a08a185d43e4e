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
 * register-blocked GEMM: W is packed panel by panel (NR = 2 vectors of outputs × KC inputs, widened
 * to F32, small enough for L1) and a micro-kernel accumulates broadcasts of MR = 6 rows of X against it
 * in twelve vector registers.
 */
public final class MatMul {
    private static final int NR = 2 * Vectors.LANES;
    private static final int MR = 6;
    private static final int KC = 256;

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
            float[] packed = new float[KC * NR];
            float[] tile = new float[MR * NR];
            for (int p = p0; p < p1; p++) gemmPanel(y, yOff, ldy, x, xOff, ldx, rows, w, bias, p * NR, packed, tile);
        });
    }

    /** All rows of X against the NR outputs [o0, o0 + NR) of W, KC inputs at a time. */
    private static void gemmPanel(float[] y, int yOff, int ldy, float[] x, int xOff, int ldx, int rows, Tensor w,
                                  float[] bias, int o0, float[] packed, float[] tile) {
        int out = w.dim(0), in = w.dim(1), nr = Math.min(NR, out - o0);
        for (int k0 = 0; k0 < in; k0 += KC) {
            int kc = Math.min(KC, in - k0);
            pack(w, o0, nr, k0, kc, packed);
            boolean first = k0 == 0;
            int r = 0;
            for (; r + MR <= rows; r += MR) {
                micro6(x, xOff + r * ldx + k0, ldx, kc, packed, tile);
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
        // Below ~64k weights the pool costs more than it saves.
        Parallel.forRange(out, Math.max(1, 65536 / Math.max(1, in)), (o0, o1) -> {
            for (int o = o0; o < o1; o++) {
                float s = dot(type, seg, (long) o * in, x, xOff, in);
                y[yOff + o] = bias == null ? s : s + bias[o];
            }
        });
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
        float s = a0.add(a1).add(a2.add(a3)).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        for (; k < n; k++) s += Scalar.weight(type, w, row + k) * x[xOff + k];
        return s;
    }

    /** packed[k·NR + j] = W[o0 + j, k0 + k] widened to F32; columns j ≥ nr are zero. */
    private static void pack(Tensor w, int o0, int nr, int k0, int kc, float[] packed) {
        int in = w.dim(1);
        DType type = w.dtype();
        MemorySegment seg = w.data();
        if (nr < NR) java.util.Arrays.fill(packed, 0f);
        for (int j = 0; j < nr; j++) {
            long row = (long) (o0 + j) * in + k0;
            for (int k = 0; k < kc; k++) packed[k * NR + j] = Scalar.weight(type, seg, row + k);
        }
    }

    /**
     * MR rows of X against a packed W panel (NR outputs): twelve vector accumulators
     * stay in registers over the kc inputs, then go to {@code tile} [MR, NR]. No vector crosses a call,
     * so none is ever boxed (a vector passed to a method C2 declines to inline is allocated on the heap).
     */
    private static void micro6(float[] x, int xo, int ldx, int kc, float[] packed, float[] tile) {
        int L = Vectors.LANES;
        FloatVector c00 = FloatVector.zero(Vectors.F), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
                c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int k = 0; k < kc; k++) {
            FloatVector b0 = FloatVector.fromArray(Vectors.F, packed, k * NR);
            FloatVector b1 = FloatVector.fromArray(Vectors.F, packed, k * NR + L);
            FloatVector a = FloatVector.broadcast(Vectors.F, x[xo + k]);
            c00 = b0.fma(a, c00);
            c01 = b1.fma(a, c01);
            a = FloatVector.broadcast(Vectors.F, x[xo + ldx + k]);
            c10 = b0.fma(a, c10);
            c11 = b1.fma(a, c11);
            a = FloatVector.broadcast(Vectors.F, x[xo + 2 * ldx + k]);
            c20 = b0.fma(a, c20);
            c21 = b1.fma(a, c21);
            a = FloatVector.broadcast(Vectors.F, x[xo + 3 * ldx + k]);
            c30 = b0.fma(a, c30);
            c31 = b1.fma(a, c31);
            a = FloatVector.broadcast(Vectors.F, x[xo + 4 * ldx + k]);
            c40 = b0.fma(a, c40);
            c41 = b1.fma(a, c41);
            a = FloatVector.broadcast(Vectors.F, x[xo + 5 * ldx + k]);
            c50 = b0.fma(a, c50);
            c51 = b1.fma(a, c51);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, L);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + L);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + L);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + L);
        c40.intoArray(tile, 4 * NR);
        c41.intoArray(tile, 4 * NR + L);
        c50.intoArray(tile, 5 * NR);
        c51.intoArray(tile, 5 * NR + L);
    }

    private static void micro1(float[] x, int xo, int kc, float[] packed, float[] tile) {
        int L = Vectors.LANES;
        FloatVector c0 = FloatVector.zero(Vectors.F), c1 = c0;
        for (int k = 0; k < kc; k++) {
            FloatVector a = FloatVector.broadcast(Vectors.F, x[xo + k]);
            c0 = FloatVector.fromArray(Vectors.F, packed, k * NR).fma(a, c0);
            c1 = FloatVector.fromArray(Vectors.F, packed, k * NR + L).fma(a, c1);
        }
        c0.intoArray(tile, 0);
        c1.intoArray(tile, L);
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
