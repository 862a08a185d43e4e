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
 * <p>One row (decode) is a matrix-vector product, bound by the bytes of W: groups of four rows of W are split
 * across threads, each row a dot product with two vector accumulators. Several rows (prefill) use a
 * register-blocked GEMM. X is packed once, MR rows interleaved per k, so that a micro-kernel reads its
 * broadcasts from one contiguous stream; W is packed panel by panel (NR outputs × all inputs, widened to
 * F32, k-major), and the panels are split across threads. The micro-kernel accumulates MR rows × NR/LANES
 * vectors of outputs in registers over KC inputs: 2 × 5 where there are 16 registers (AVX2), 6 × 4 where
 * there are 32 (AVX-512).
 *
 * <p>The summation order is fixed, whatever the tile, the thread count or the row count: each output sums
 * its k in blocks of KC, each block an FMA chain from zero in k order, and the blocks are added in order to
 * the bias (or zero). Only that order is part of the results; tiles, packing and threads only move data.
 */
public final class MatMul {
    /**
     * The register tile, chosen from the vector width: with 16 vector registers (256-bit species, AVX2) 2 rows ×
     * 5 vectors of outputs (10 accumulators, 5 loads and a broadcast: all 16 registers, 7 loads per 10 FMAs); with 32
     * (512-bit, AVX-512) 6 rows × 4 vectors (24 accumulators, 4 loads and 6 broadcasts per 24 FMAs). Both keep every
     * output's order, so they give the same bits.
     */
    private static final boolean WIDE = Vectors.LANES >= 16;
    private static final int NR = (WIDE ? 4 : 5) * Vectors.LANES;
    private static final int MR = WIDE ? 6 : 2;
    /** Inputs per K block: part of the results' order (each block is summed from zero, then added). */
    static final int KC = 128;
    /** Rows per pass over a panel: their partial sums (MC × NR floats) stay in L2 between K blocks. */
    private static final int MC = 256 / MR * MR;

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
        matmul(y, yOff, ldy, x, xOff, ldx, rows, w, null, bias);
    }

    /** As above, with W's panels already packed by {@link #panels} (or null: packed here, panel by panel). */
    public static void matmul(float[] y, int yOff, int ldy, float[] x, int xOff, int ldx, int rows, Tensor w, float[] panels, float[] bias) {
        int out = w.dim(0), in = w.dim(1);
        checkBounds(y, yOff, ldy, out, x, xOff, ldx, in, rows);
        if (rows == 1) {
            matvec(y, yOff, x, xOff, w, bias);
            return;
        }
        float[] xPacked = packRows(x, xOff, ldx, rows, in, SCRATCH.get().xPacked(groups(rows) * MR * in));
        int count = (out + NR - 1) / NR;
        // Fewer panels than two a thread (a narrow W: 192 outputs are 3 panels) would leave threads idle: the rows are cut
        // too, into blocks of whole row groups, and a panel is packed again by each thread that takes one of its blocks.
        int rowBlocks = Math.min(groups(rows), count >= 2 * Parallel.THREADS ? 1 : (2 * Parallel.THREADS + count - 1) / count);
        int blockRows = (groups(rows) + rowBlocks - 1) / rowBlocks * MR;
        Parallel.forRange(count * rowBlocks, 1, (t0, t1) -> {
            Scratch scratch = SCRATCH.get();
            float[] packed = panels != null ? panels : scratch.packed(in * NR), sums = scratch.sums(Math.min(MC, groups(rows) * MR) * NR);
            for (int t = t0, packedPanel = -1; t < t1; t++) {
                int p = t / rowBlocks, from = t % rowBlocks * blockRows;
                if (panels == null && p != packedPanel) pack(w, p * NR, packed, 0, scratch);
                packedPanel = p;
                gemmPanel(y, yOff, ldy, xPacked, from, Math.min(rows, from + blockRows), w, bias, p * NR, packed,
                        panels == null ? 0 : p * in * NR, sums, scratch);
            }
        });
    }

    /**
     * W's panels packed once (panel p at [p·in·NR, (p + 1)·in·NR), as the GEMM packs each): for a weight used by many
     * GEMMs of few rows, where packing it each time costs as much as a tenth of the product.
     */
    public static float[] panels(Tensor w) {
        int out = w.dim(0), in = w.dim(1), count = (out + NR - 1) / NR;
        float[] panels = new float[Math.multiplyExact(count * NR, in)];
        for (int p = 0; p < count; p++) pack(w, p * NR, panels, p * in * NR, SCRATCH.get());
        return panels;
    }

    /**
     * Each thread's GEMM buffers, kept between calls and grown to the largest seen: allocating (and zeroing) them
     * anew cost a few percent of a prefill GEMM. X packed is the calling thread's; the rest each panel's thread's.
     */
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static final class Scratch {
        private float[] xPacked = new float[0], packed = new float[0], sums = new float[0], widened = new float[0];
        /** Where each of the LANES rows in {@code widened} starts, for rows of {@code in} inputs: the gather's indexes. */
        private final int[] widenedRowStarts = new int[Vectors.LANES];
        /** The panel's bias, or zero: each output's first addend. */
        final float[] start = new float[NR];

        float[] widened(int in) {
            if (widened.length < Vectors.LANES * in) widened = new float[Vectors.LANES * in];
            return widened;
        }

        int[] widenedRowStarts(int in) {
            for (int j = 0; j < widenedRowStarts.length; j++) widenedRowStarts[j] = j * in;
            return widenedRowStarts;
        }

        float[] xPacked(int length) {
            if (xPacked.length < length) xPacked = new float[length];
            return xPacked;
        }

        float[] packed(int length) {
            if (packed.length < length) packed = new float[length];
            return packed;
        }

        float[] sums(int length) {
            if (sums.length < length) sums = new float[length];
            return sums;
        }
    }

    private static int groups(int rows) {
        return (rows + MR - 1) / MR;
    }

    /**
     * X as groups of MR rows, each k-major (packed[(g·in + k)·MR + i] = X[g·MR + i, k]), the last group padded
     * with zero rows: a padded row is computed and thrown away, which keeps one kernel for every row count.
     */
    private static float[] packRows(float[] x, int xOff, int ldx, int rows, int in, float[] packed) {
        Parallel.forRange(groups(rows), Parallel.rowGrain(in), (g0, g1) -> {
            for (int g = g0; g < g1; g++) {
                for (int i = 0; i < MR; i++) {
                    int to = g * MR * in + i;
                    if (g * MR + i >= rows) {
                        for (int k = 0; k < in; k++) packed[to + k * MR] = 0f;
                        continue;
                    }
                    int from = xOff + (g * MR + i) * ldx;
                    for (int k = 0; k < in; k++) packed[to + k * MR] = x[from + k];
                }
            }
        });
        return packed;
    }

    /**
     * Rows [from, to) of X (from a multiple of MR) against the NR outputs [o0, o0 + NR) of W, packed, MC rows and KC
     * inputs at a time. The last K block adds straight into Y; a partial panel or a padded row group goes through
     * {@code sums} and is copied after.
     */
    private static void gemmPanel(float[] y, int yOff, int ldy, float[] xPacked, int from, int to, Tensor w, float[] bias, int o0,
                                  float[] packed, int po, float[] sums, Scratch scratch) {
        int out = w.dim(0), in = w.dim(1), nr = Math.min(NR, out - o0);
        float[] start = scratch.start;
        java.util.Arrays.fill(start, 0f);
        if (bias != null) System.arraycopy(bias, o0, start, 0, nr);
        for (int r0 = from; r0 < to; r0 += MC) {
            int mc = Math.min(MC, to - r0);
            for (int k0 = 0; k0 < in; k0 += KC) {
                int kc = Math.min(KC, in - k0);
                boolean first = k0 == 0, last = k0 + kc == in;
                float[] base = first ? start : sums;
                int ldBase = first ? 0 : NR;
                for (int r = 0; r < mc; r += MR) {
                    boolean toY = last && nr == NR && r + MR <= mc;
                    float[] dest = toY ? y : sums;
                    int xo = ((r0 + r) / MR * in + k0) * MR, bo = r * ldBase;
                    int dOff = toY ? yOff + (r0 + r) * ldy + o0 : r * NR, ldDest = toY ? ldy : NR;
                    if (WIDE) micro6x4(xPacked, xo, kc, packed, po + k0 * NR, base, bo, ldBase, dest, dOff, ldDest);
                    else micro2x5(xPacked, xo, kc, packed, po + k0 * NR, base, bo, ldBase, dest, dOff, ldDest);
                }
            }
            int firstInSums = nr < NR ? 0 : mc / MR * MR;
            for (int r = firstInSums; r < mc; r++) System.arraycopy(sums, r * NR, y, yOff + (r0 + r) * ldy + o0, nr);
        }
    }

    /**
     * y[o] = W[o, :]·x (+ bias[o]) for every output o: four rows of W at a time (four streams from memory, each load of x
     * used four times), the groups split across threads. Each output's order is that of {@link #dot(DType, MemorySegment,
     * long, float[], int, int)}, whichever group or thread computes it.
     */
    public static void matvec(float[] y, int yOff, float[] x, int xOff, Tensor w, float[] bias) {
        int out = w.dim(0), in = w.dim(1), groups = (out + 3) / 4;
        checkBounds(y, yOff, out, out, x, xOff, in, in, 1);
        DType type = w.dtype();
        MemorySegment seg = w.data();
        // Chunks of at least ~16k weights: below that a region costs more than it saves.
        Parallel.forRange(groups, Math.max(1, 4096 / Math.max(1, in)), (g0, g1) -> {
            float[] partial = new float[4 * Vectors.LANES + 4];
            for (int g = g0; g < g1; g++) {
                int o = 4 * g;
                if (o + 4 <= out) {
                    dot4(type, seg, (long) o * in, x, xOff, in, y, yOff + o, bias, o, partial);
                } else {
                    for (; o < out; o++) {
                        float sum = dot(type, seg, (long) o * in, x, xOff, in);
                        y[yOff + o] = bias == null ? sum : sum + bias[o];
                    }
                }
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

    /**
     * Σ_k W[row + k]·x[xOff + k], k < n: vectors of k summed into two accumulators in turn (even and odd vectors, a
     * last odd one into the first), the two added, their lanes summed in {@link Vectors#sum}'s order, then the k past
     * the last whole vector one by one.
     */
    static float dot(DType type, MemorySegment w, long row, float[] x, int xOff, int n) {
        int L = Vectors.LANES;
        FloatVector a = FloatVector.zero(Vectors.F), b = a;
        int k = 0;
        for (; k + 2 * L <= n; k += 2 * L) {
            a = Vectors.load(type, w, row + k).fma(FloatVector.fromArray(Vectors.F, x, xOff + k), a);
            b = Vectors.load(type, w, row + k + L).fma(FloatVector.fromArray(Vectors.F, x, xOff + k + L), b);
        }
        if (k + L <= n) {
            a = Vectors.load(type, w, row + k).fma(FloatVector.fromArray(Vectors.F, x, xOff + k), a);
            k += L;
        }
        float s = Vectors.sum(a.add(b));
        for (; k < n; k++) s += Scalar.weight(type, w, row + k) * x[xOff + k];
        return s;
    }

    /**
     * The four dots of rows row, row + n, row + 2n, row + 3n with x, each in {@link #dot}'s order, into y[yOff + i]
     * (+ bias[o + i]): eight accumulators, enough independent FMAs to hide their latency, and four rows streamed at once.
     */
    private static void dot4(DType type, MemorySegment w, long row, float[] x, int xOff, int n, float[] y, int yOff, float[] bias, int o,
                             float[] partial) {
        int L = Vectors.LANES;
        long r0 = row, r1 = row + n, r2 = row + 2L * n, r3 = row + 3L * n;
        FloatVector a0 = FloatVector.zero(Vectors.F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int k = 0;
        for (; k + 2 * L <= n; k += 2 * L) {
            FloatVector xa = FloatVector.fromArray(Vectors.F, x, xOff + k), xb = FloatVector.fromArray(Vectors.F, x, xOff + k + L);
            a0 = Vectors.load(type, w, r0 + k).fma(xa, a0);
            a1 = Vectors.load(type, w, r1 + k).fma(xa, a1);
            a2 = Vectors.load(type, w, r2 + k).fma(xa, a2);
            a3 = Vectors.load(type, w, r3 + k).fma(xa, a3);
            b0 = Vectors.load(type, w, r0 + k + L).fma(xb, b0);
            b1 = Vectors.load(type, w, r1 + k + L).fma(xb, b1);
            b2 = Vectors.load(type, w, r2 + k + L).fma(xb, b2);
            b3 = Vectors.load(type, w, r3 + k + L).fma(xb, b3);
        }
        if (k + L <= n) {
            FloatVector xa = FloatVector.fromArray(Vectors.F, x, xOff + k);
            a0 = Vectors.load(type, w, r0 + k).fma(xa, a0);
            a1 = Vectors.load(type, w, r1 + k).fma(xa, a1);
            a2 = Vectors.load(type, w, r2 + k).fma(xa, a2);
            a3 = Vectors.load(type, w, r3 + k).fma(xa, a3);
            k += L;
        }
        // The lanes are summed by laneSums, compiled on its own (CompilerHints): written out here, its shuffles took this
        // method past C2's inlining budget, and the additions above fell back to the Vector API's Java code.
        a0.add(b0).intoArray(partial, 0);
        a1.add(b1).intoArray(partial, L);
        a2.add(b2).intoArray(partial, 2 * L);
        a3.add(b3).intoArray(partial, 3 * L);
        laneSums(partial);
        float s0 = partial[4 * L], s1 = partial[4 * L + 1], s2 = partial[4 * L + 2], s3 = partial[4 * L + 3];
        for (; k < n; k++) {
            float xk = x[xOff + k];
            s0 += Scalar.weight(type, w, r0 + k) * xk;
            s1 += Scalar.weight(type, w, r1 + k) * xk;
            s2 += Scalar.weight(type, w, r2 + k) * xk;
            s3 += Scalar.weight(type, w, r3 + k) * xk;
        }
        y[yOff] = bias == null ? s0 : s0 + bias[o];
        y[yOff + 1] = bias == null ? s1 : s1 + bias[o + 1];
        y[yOff + 2] = bias == null ? s2 : s2 + bias[o + 2];
        y[yOff + 3] = bias == null ? s3 : s3 + bias[o + 3];
    }

    /** partial[4·LANES + i] = the sum of partial[i·LANES ..+ LANES) in {@link Vectors#sum}'s order, i &lt; 4. */
    static void laneSums(float[] partial) {
        int L = Vectors.LANES;
        for (int i = 0; i < 4; i++) partial[4 * L + i] = Vectors.sum(FloatVector.fromArray(Vectors.F, partial, i * L));
    }

    /**
     * packed[po + k·NR + j] = W[o0 + j, k] widened to F32, for every k; columns past W's last output are zero. LANES whole rows at a time
     * are widened into a buffer (one sequential read of W, which the prefetcher follows), then each k's LANES outputs
     * are gathered from it into one vector store.
     */
    private static void pack(Tensor w, int o0, float[] packed, int po, Scratch scratch) {
        int in = w.dim(1), L = Vectors.LANES, nr = Math.min(NR, w.dim(0) - o0);
        DType type = w.dtype();
        MemorySegment seg = w.data();
        float[] widened = scratch.widened(in);
        int[] rowStarts = scratch.widenedRowStarts(in);
        for (int j0 = 0; j0 < NR; j0 += L) {
            for (int j = 0; j < L; j++) {
                int at = j * in, k = 0;
                if (j0 + j >= nr) {
                    java.util.Arrays.fill(widened, at, at + in, 0f);
                    continue;
                }
                long start = (long) (o0 + j0 + j) * in;
                for (; k + L <= in; k += L) Vectors.load(type, seg, start + k).intoArray(widened, at + k);
                for (; k < in; k++) widened[at + k] = Scalar.weight(type, seg, start + k);
            }
            for (int k = 0; k < in; k++) FloatVector.fromArray(Vectors.F, widened, k, rowStarts, 0).intoArray(packed, po + k * NR + j0);
        }
    }

    /**
     * MR = 2 packed rows of X (x[xo + k·2 + i]) against a packed W panel of NR = 5 vectors: ten accumulators stay
     * in registers over the kc inputs (the 2 × 6 tile of twelve needed 19 registers of 16 and ran 2–3 % slower), then
     * d[dOff + i·ldd + j] = base[bo + i·ldb + j] + the sum (base is the panel's start with ldb = 0 on the first K
     * block, the partial sums after). No vector crosses a call, so none is ever boxed (a vector passed to a method C2
     * declines to inline is allocated on the heap): hence the stores written out, as a helper taking a row's vectors
     * was not inlined and ran 20× slower.
     */
    private static void micro2x5(float[] x, int xo, int kc, float[] packed, int po, float[] base, int bo, int ldb, float[] d, int dOff, int ldd) {
        int L = Vectors.LANES;
        FloatVector c00 = FloatVector.zero(Vectors.F), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c10 = c00,
                c11 = c00, c12 = c00, c13 = c00, c14 = c00;
        for (int k = 0; k < kc; k++) {
            int pk = po + k * NR, xk = xo + k * 2;
            FloatVector b0 = FloatVector.fromArray(Vectors.F, packed, pk), b1 = FloatVector.fromArray(Vectors.F, packed, pk + L), b2 = FloatVector.fromArray(Vectors.F, packed, pk + 2 * L),
                    b3 = FloatVector.fromArray(Vectors.F, packed, pk + 3 * L), b4 = FloatVector.fromArray(Vectors.F, packed, pk + 4 * L);
            FloatVector a = FloatVector.broadcast(Vectors.F, x[xk]);
            c00 = b0.fma(a, c00);
            c01 = b1.fma(a, c01);
            c02 = b2.fma(a, c02);
            c03 = b3.fma(a, c03);
            c04 = b4.fma(a, c04);
            a = FloatVector.broadcast(Vectors.F, x[xk + 1]);
            c10 = b0.fma(a, c10);
            c11 = b1.fma(a, c11);
            c12 = b2.fma(a, c12);
            c13 = b3.fma(a, c13);
            c14 = b4.fma(a, c14);
        }
        FloatVector.fromArray(Vectors.F, base, bo).add(c00).intoArray(d, dOff);
        FloatVector.fromArray(Vectors.F, base, bo + L).add(c01).intoArray(d, dOff + L);
        FloatVector.fromArray(Vectors.F, base, bo + 2 * L).add(c02).intoArray(d, dOff + 2 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 3 * L).add(c03).intoArray(d, dOff + 3 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 4 * L).add(c04).intoArray(d, dOff + 4 * L);
        FloatVector.fromArray(Vectors.F, base, bo + ldb).add(c10).intoArray(d, dOff + ldd);
        FloatVector.fromArray(Vectors.F, base, bo + ldb + L).add(c11).intoArray(d, dOff + ldd + L);
        FloatVector.fromArray(Vectors.F, base, bo + ldb + 2 * L).add(c12).intoArray(d, dOff + ldd + 2 * L);
        FloatVector.fromArray(Vectors.F, base, bo + ldb + 3 * L).add(c13).intoArray(d, dOff + ldd + 3 * L);
        FloatVector.fromArray(Vectors.F, base, bo + ldb + 4 * L).add(c14).intoArray(d, dOff + ldd + 4 * L);
    }

    /**
     * MR = 6 packed rows against a panel of NR = 4 vectors (the 512-bit tile), as {@link #micro2x5}: 24 accumulators,
     * 4 loads and 6 broadcasts per k. Six rows, not eight: C2 hoists every broadcast of an iteration ahead of the
     * FMAs, so 8 × 3 (32 live vectors) spills, while 6 × 4 needs 4 + 1 + 24 registers.
     */
    private static void micro6x4(float[] x, int xo, int kc, float[] packed, int po, float[] base, int bo, int ldb, float[] d, int dOff, int ldd) {
        int L = Vectors.LANES;
        FloatVector c00 = FloatVector.zero(Vectors.F), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00,
                c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00, c40 = c00,
                c41 = c00, c42 = c00, c43 = c00, c50 = c00, c51 = c00, c52 = c00, c53 = c00;
        for (int k = 0; k < kc; k++) {
            int pk = po + k * NR, xk = xo + k * 6;
            FloatVector b0 = FloatVector.fromArray(Vectors.F, packed, pk), b1 = FloatVector.fromArray(Vectors.F, packed, pk + L),
                    b2 = FloatVector.fromArray(Vectors.F, packed, pk + 2 * L), b3 = FloatVector.fromArray(Vectors.F, packed, pk + 3 * L);
            FloatVector a = FloatVector.broadcast(Vectors.F, x[xk]);
            c00 = b0.fma(a, c00);
            c01 = b1.fma(a, c01);
            c02 = b2.fma(a, c02);
            c03 = b3.fma(a, c03);
            a = FloatVector.broadcast(Vectors.F, x[xk + 1]);
            c10 = b0.fma(a, c10);
            c11 = b1.fma(a, c11);
            c12 = b2.fma(a, c12);
            c13 = b3.fma(a, c13);
            a = FloatVector.broadcast(Vectors.F, x[xk + 2]);
            c20 = b0.fma(a, c20);
            c21 = b1.fma(a, c21);
            c22 = b2.fma(a, c22);
            c23 = b3.fma(a, c23);
            a = FloatVector.broadcast(Vectors.F, x[xk + 3]);
            c30 = b0.fma(a, c30);
            c31 = b1.fma(a, c31);
            c32 = b2.fma(a, c32);
            c33 = b3.fma(a, c33);
            a = FloatVector.broadcast(Vectors.F, x[xk + 4]);
            c40 = b0.fma(a, c40);
            c41 = b1.fma(a, c41);
            c42 = b2.fma(a, c42);
            c43 = b3.fma(a, c43);
            a = FloatVector.broadcast(Vectors.F, x[xk + 5]);
            c50 = b0.fma(a, c50);
            c51 = b1.fma(a, c51);
            c52 = b2.fma(a, c52);
            c53 = b3.fma(a, c53);
        }
        FloatVector.fromArray(Vectors.F, base, bo).add(c00).intoArray(d, dOff);
        FloatVector.fromArray(Vectors.F, base, bo + L).add(c01).intoArray(d, dOff + L);
        FloatVector.fromArray(Vectors.F, base, bo + 2 * L).add(c02).intoArray(d, dOff + 2 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 3 * L).add(c03).intoArray(d, dOff + 3 * L);
        FloatVector.fromArray(Vectors.F, base, bo + ldb).add(c10).intoArray(d, dOff + ldd);
        FloatVector.fromArray(Vectors.F, base, bo + ldb + L).add(c11).intoArray(d, dOff + ldd + L);
        FloatVector.fromArray(Vectors.F, base, bo + ldb + 2 * L).add(c12).intoArray(d, dOff + ldd + 2 * L);
        FloatVector.fromArray(Vectors.F, base, bo + ldb + 3 * L).add(c13).intoArray(d, dOff + ldd + 3 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 2 * ldb).add(c20).intoArray(d, dOff + 2 * ldd);
        FloatVector.fromArray(Vectors.F, base, bo + 2 * ldb + L).add(c21).intoArray(d, dOff + 2 * ldd + L);
        FloatVector.fromArray(Vectors.F, base, bo + 2 * ldb + 2 * L).add(c22).intoArray(d, dOff + 2 * ldd + 2 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 2 * ldb + 3 * L).add(c23).intoArray(d, dOff + 2 * ldd + 3 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 3 * ldb).add(c30).intoArray(d, dOff + 3 * ldd);
        FloatVector.fromArray(Vectors.F, base, bo + 3 * ldb + L).add(c31).intoArray(d, dOff + 3 * ldd + L);
        FloatVector.fromArray(Vectors.F, base, bo + 3 * ldb + 2 * L).add(c32).intoArray(d, dOff + 3 * ldd + 2 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 3 * ldb + 3 * L).add(c33).intoArray(d, dOff + 3 * ldd + 3 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 4 * ldb).add(c40).intoArray(d, dOff + 4 * ldd);
        FloatVector.fromArray(Vectors.F, base, bo + 4 * ldb + L).add(c41).intoArray(d, dOff + 4 * ldd + L);
        FloatVector.fromArray(Vectors.F, base, bo + 4 * ldb + 2 * L).add(c42).intoArray(d, dOff + 4 * ldd + 2 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 4 * ldb + 3 * L).add(c43).intoArray(d, dOff + 4 * ldd + 3 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 5 * ldb).add(c50).intoArray(d, dOff + 5 * ldd);
        FloatVector.fromArray(Vectors.F, base, bo + 5 * ldb + L).add(c51).intoArray(d, dOff + 5 * ldd + L);
        FloatVector.fromArray(Vectors.F, base, bo + 5 * ldb + 2 * L).add(c52).intoArray(d, dOff + 5 * ldd + 2 * L);
        FloatVector.fromArray(Vectors.F, base, bo + 5 * ldb + 3 * L).add(c53).intoArray(d, dOff + 5 * ldd + 3 * L);
    }

    private static void checkBounds(float[] y, int yOff, int ldy, int out, float[] x, int xOff, int ldx, int in, int rows) {
        if (rows < 1 || ldy < out || ldx < in || yOff < 0 || xOff < 0
                || yOff + (long) (rows - 1) * ldy + out > y.length || xOff + (long) (rows - 1) * ldx + in > x.length) {
            throw new IllegalArgumentException("matmul bounds: rows " + rows + ", in " + in + ", out " + out + ", x " + x.length
                    + " (off " + xOff + ", ld " + ldx + "), y " + y.length + " (off " + yOff + ", ld " + ldy + ")");
        }
    }
}
