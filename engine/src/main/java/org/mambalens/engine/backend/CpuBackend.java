package org.mambalens.engine.backend;

import org.mambalens.engine.io.DType;
import org.mambalens.engine.kernels.CausalConv;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.kernels.MultiHeadAttention;
import org.mambalens.engine.kernels.Parallel;
import org.mambalens.engine.kernels.RgLru;
import org.mambalens.engine.kernels.Rotary;
import org.mambalens.engine.kernels.Scalar;
import org.mambalens.engine.kernels.SelectiveScan;
import org.mambalens.engine.kernels.SlidingWindowAttention;
import org.mambalens.engine.kernels.SsdScan;
import org.mambalens.engine.kernels.Wkv;
import org.mambalens.engine.tensor.Tensor;

import static org.mambalens.engine.tensor.Matrices.flipRows;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The CPU backend: buffers are heap arrays and the operations are the Vector API kernels of
 * {@code engine.kernels}, split across threads by {@code Parallel}. Weights stay memory-mapped in their
 * checkpoint dtype and are widened as the GEMM reads them. Stateless, so one instance serves every
 * model and thread ({@link #INSTANCE}). Computes in F32 only.
 */
public final class CpuBackend implements Backend {
    public static final CpuBackend INSTANCE = new CpuBackend();

    private CpuBackend() {
    }

    /** A view of a heap array from element {@code offset} on. */
    public record HeapBuffer(float[] data, int offset) implements Buffer {
        @Override
        public long size() {
            return data.length - offset;
        }

        @Override
        public HeapBuffer at(long index) {
            if (index < 0 || index > size()) throw new IndexOutOfBoundsException("element " + index + " of a buffer of " + size());
            return new HeapBuffer(data, offset + (int) index);
        }
    }

    /**
     * A weight: one mapped checkpoint tensor [rows, cols], or several stacked by rows; each part's panels packed for the
     * GEMM once ({@link MatMul#panels}) when it is small, else null.
     */
    public record TensorMatrix(Tensor[] parts, float[][] panels, int rows, int cols) implements Matrix {
    }

    /**
     * The largest part (as F32) packed once for the GEMM: all of a ViT's or ViM's weights, a Mamba's x_proj and dt_proj.
     * A GEMM of a few hundred rows (an image's tokens) spent a tenth of its time packing a weight read once per call;
     * larger ones are packed panel by panel at each call instead of doubling the memory of a large checkpoint.
     */
    private static final long PACKED_BYTES = 4L << 20;

    /** The heap array behind {@code b} when it starts at element 0 (for the reverse passes, which run on the CPU). */
    public static float[] array(Buffer b) {
        HeapBuffer h = heap(b);
        if (h.offset() != 0) throw new IllegalArgumentException("a view at element " + h.offset() + " is not a whole array");
        return h.data();
    }

    /** The checkpoint tensor behind a weight made by this backend from one tensor. */
    public static Tensor tensor(Matrix m) {
        TensorMatrix t = (TensorMatrix) m;
        if (t.parts().length != 1) throw new IllegalArgumentException("a stacked weight is not one tensor");
        return t.parts()[0];
    }

    /** A heap array as a buffer, shared, not copied. */
    public static HeapBuffer wrap(float[] values) {
        return new HeapBuffer(values, 0);
    }

    private static HeapBuffer heap(Buffer b) {
        if (b instanceof HeapBuffer h) return h;
        throw new IllegalArgumentException("a " + b.getClass().getSimpleName() + " is not a CPU buffer");
    }

    /**
     * The values of {@code b} [0, n) as an array starting at 0: the array itself when it already does, else a
     * copy; so a caller writes into it only where writing into b is meant.
     */
    private static float[] packed(Buffer b, int n) {
        HeapBuffer h = heap(b);
        return h.offset() == 0 ? h.data() : Arrays.copyOfRange(h.data(), h.offset(), h.offset() + n);
    }

    private static float[] optional(Buffer b, int n) {
        return b == null ? null : packed(b, n);
    }

    /** Rows of width n, ld apart from b's start, gathered into a packed [rows, n] array (itself when already packed). */
    private static float[] rows(Buffer b, int ld, int rows, int n) {
        if (ld == n) return packed(b, rows * n);
        HeapBuffer h = heap(b);
        float[] out = new float[rows * n];
        for (int r = 0; r < rows; r++) System.arraycopy(h.data(), h.offset() + r * ld, out, r * n, n);
        return out;
    }

    /** Writes packed [rows, n] values to b's rows, ld apart, unless they are already there. */
    private static void scatterRows(float[] values, Buffer b, int ld, int rows, int n) {
        HeapBuffer h = heap(b);
        if (values == h.data() && h.offset() == 0 && ld == n) return;
        for (int r = 0; r < rows; r++) System.arraycopy(values, r * n, h.data(), h.offset() + r * ld, n);
    }

    @Override
    public String name() {
        return "CPU";
    }

    @Override
    public boolean isGpu() {
        return false;
    }

    @Override
    public Precision precision() {
        return Precision.F32;
    }

    @Override
    public Matrix matrix(Tensor weight, int rows, int cols) {
        return stack(cols, weight);
    }

    /** Its rows are gathered, never multiplied: kept unpacked whatever its size. */
    @Override
    public Matrix table(Tensor weight, int rows, int cols) {
        return stack(cols, false, weight);
    }

    @Override
    public Matrix stack(int cols, Tensor... parts) {
        return stack(cols, true, parts);
    }

    private static TensorMatrix stack(int cols, boolean packSmall, Tensor... parts) {
        long rows = 0;
        Tensor[] views = new Tensor[parts.length];
        float[][] panels = new float[parts.length][];
        for (int i = 0; i < parts.length; i++) {
            Tensor t = parts[i];
            if (t.size() % cols != 0) throw new IllegalArgumentException(t + " does not have " + cols + " columns");
            views[i] = t.shape().length == 2 ? t : new Tensor(t.name(), t.dtype(), new long[]{t.size() / cols, cols}, t.data());
            if (packSmall && 4 * t.size() <= PACKED_BYTES) panels[i] = MatMul.panels(views[i]);
            rows += t.size() / cols;
        }
        return new TensorMatrix(views, panels, Math.toIntExact(rows), cols);
    }

    @Override
    public Buffer constant(float[] values) {
        return wrap(values.clone());
    }

    @Override
    public Buffer allocate(long floats) {
        return wrap(new float[Math.toIntExact(floats)]);
    }

    private static final Frame FRAME = new Frame() {
        @Override
        public Buffer floats(long floats) {
            return wrap(new float[Math.toIntExact(floats)]);
        }

        @Override
        public void close() {
        }
    };

    @Override
    public Frame frame() {
        return FRAME;
    }

    @Override
    public float[] read(Buffer b, int count) {
        HeapBuffer h = heap(b);
        return Arrays.copyOfRange(h.data(), h.offset(), h.offset() + count);
    }

    @Override
    public void write(Buffer b, float[] values) {
        HeapBuffer h = heap(b);
        System.arraycopy(values, 0, h.data(), h.offset(), values.length);
    }

    @Override
    public void write(Buffer b, float[][] parts) {
        HeapBuffer h = heap(b);
        int at = h.offset();
        for (float[] part : parts) {
            System.arraycopy(part, 0, h.data(), at, part.length);
            at += part.length;
        }
    }

    @Override
    public void copy(Buffer dst, Buffer src, long count) {
        HeapBuffer d = heap(dst), s = heap(src);
        System.arraycopy(s.data(), s.offset(), d.data(), d.offset(), Math.toIntExact(count));
    }

    @Override
    public void fill(Buffer b, long count, float value) {
        HeapBuffer h = heap(b);
        Arrays.fill(h.data(), h.offset(), h.offset() + Math.toIntExact(count), value);
    }

    @Override
    public <T> T call(java.util.function.Supplier<T> work) {
        return work.get();
    }

    @Override
    public void replay(ReplaySlot slot, Runnable work) {
        work.run();
    }

    @Override
    public void linear(Buffer out, int ldOut, Buffer in, int ldIn, int rows, Matrix w, Buffer bias, float alpha) {
        TensorMatrix m = (TensorMatrix) w;
        HeapBuffer y = heap(out), x = heap(in);
        float[] b = optional(bias, m.rows());
        int column = 0;
        for (int i = 0; i < m.parts().length; i++) {
            Tensor part = m.parts()[i];
            int n = part.dim(0);
            float[] partBias = b == null ? null : m.parts().length == 1 ? b : Arrays.copyOfRange(b, column, column + n);
            MatMul.matmul(y.data(), y.offset() + column, ldOut, x.data(), x.offset(), ldIn, rows, part, m.panels()[i], partBias);
            column += n;
        }
        if (alpha != 1f) {
            for (int r = 0; r < rows; r++) {
                for (int o = 0; o < m.rows(); o++) y.data()[y.offset() + r * ldOut + o] *= alpha;
            }
        }
    }

    @Override
    public void linearAdd(Buffer out, int ldOut, Buffer in, int ldIn, int rows, Matrix w, Buffer bias) {
        int n = w.rows();
        float[] branch = new float[rows * n];
        linear(wrap(branch), n, in, ldIn, rows, w, bias);
        HeapBuffer o = heap(out);
        Parallel.forRange(rows, Parallel.rowGrain(n), (r0, r1) -> {
            for (int r = r0; r < r1; r++) Elementwise.addInPlace(o.data(), o.offset() + r * ldOut, branch, r * n, n);
        });
    }

    @Override
    public void embed(Buffer out, Matrix table, int[] ids) {
        Tensor t = tensor(table);
        HeapBuffer y = heap(out);
        int D = t.dim(1);
        for (int r = 0; r < ids.length; r++) {
            for (int i = 0; i < D; i++) y.data()[y.offset() + r * D + i] = t.getFloat((long) ids[r] * D + i);
        }
    }

    /** Row by row (each row's vector body and scalar tail the same whatever the split), the rows spread over the threads. */
    @Override
    public void biasActivation(Buffer x, Buffer bias, int rows, int cols, Activation activation) {
        HeapBuffer h = heap(x);
        float[] v = h.data(), b = optional(bias, cols);
        Parallel.forRange(rows, Parallel.rowGrain(cols), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int at = h.offset() + r * cols;
                if (b != null) Elementwise.addInPlace(v, at, b, 0, cols);
                switch (activation) {
                    case NONE -> {
                    }
                    case GELU -> Elementwise.gelu(v, at, cols);
                    case GELU_TANH -> Elementwise.geluTanh(v, at, cols);
                    case SILU -> Elementwise.silu(v, at, cols, v, at, cols, 1, cols);
                    case SIGMOID -> {
                        for (int i = at; i < at + cols; i++) v[i] = Scalar.sigmoid(v[i]);
                    }
                    case RELU_SQUARED -> {
                        for (int i = at; i < at + cols; i++) v[i] = v[i] > 0 ? v[i] * v[i] : 0f;
                    }
                    case SOFTPLUS -> Elementwise.softplus(v, at, cols);
                }
            }
        });
    }

    @Override
    public void add(Buffer x, Buffer y, long n) {
        HeapBuffer a = heap(x);
        int count = Math.toIntExact(n);
        if (a.offset() == 0) {
            Elementwise.addInPlace(a.data(), packed(y, count), count);
            return;
        }
        float[] b = packed(y, count);
        for (int i = 0; i < count; i++) a.data()[a.offset() + i] += b[i];
    }

    @Override
    public void multiply(Buffer x, Buffer y, long n) {
        HeapBuffer a = heap(x), b = heap(y);
        for (int i = 0; i < n; i++) a.data()[a.offset() + i] *= b.data()[b.offset() + i];
    }

    @Override
    public void scale(Buffer x, float factor, long n) {
        HeapBuffer a = heap(x);
        for (int i = 0; i < n; i++) a.data()[a.offset() + i] *= factor;
    }

    @Override
    public void addRmsnorm(Buffer out, int ldOut, Buffer residual, int ldResidual, Buffer hidden, int ldHidden, Buffer w,
                           int rows, int dim, float eps) {
        float[] x = rows(residual, ldResidual, rows, dim);
        if (hidden != null) {
            Elementwise.addInPlace(x, rows(hidden, ldHidden, rows, dim), rows * dim);
            scatterRows(x, residual, ldResidual, rows, dim);
        }
        float[] y = ldOut == dim && heap(out).offset() == 0 ? heap(out).data() : new float[rows * dim];
        Elementwise.rmsnorm(y, x, packed(w, dim), eps, rows, dim);
        scatterRows(y, out, ldOut, rows, dim);
    }

    /** Rows spread over the threads, each read and written where it lies. */
    @Override
    public void layernorm(Buffer out, int ldOut, Buffer x, int ldx, Buffer w, Buffer b, int rows, int dim, float eps) {
        HeapBuffer y = heap(out), in = heap(x);
        float[] weight = packed(w, dim), shift = packed(b, dim);
        Parallel.forRange(rows, Parallel.rowGrain(dim), (r0, r1) -> Elementwise.layernorm(y.data(), y.offset() + r0 * ldOut, ldOut,
                in.data(), in.offset() + r0 * ldx, ldx, weight, shift, eps, r1 - r0, dim));
    }

    @Override
    public void softmaxRows(Buffer x, int rows, int cols) {
        HeapBuffer h = heap(x);
        Elementwise.softmaxRows(h.data(), h.offset(), rows, cols);
    }

    @Override
    public void causalConv(Buffer out, Buffer preActivation, Buffer x, int ldx, Buffer taps, Buffer bias, Buffer window,
                           int batch, int tokens, int channels, int kernel, boolean reverse, boolean silu) {
        int T = tokens, E = channels, K = kernel;
        float[] w = packed(taps, K * E), b = optional(bias, E);
        for (int s = 0; s < batch; s++) {
            float[] start = window == null ? new float[(K - 1) * E] : packed(window.at((long) s * (K - 1) * E), (K - 1) * E);
            HeapBuffer in = heap(x).at((long) s * T * ldx);
            if (!reverse && silu) {
                // Forward: convolved and activated in one pass across the threads, read and written where they lie.
                HeapBuffer pre = preActivation == null ? null : heap(preActivation).at((long) s * T * E), o = heap(out).at((long) s * T * E);
                CausalConv.apply(pre == null ? null : pre.data(), pre == null ? 0 : pre.offset(), o.data(), o.offset(),
                        in.data(), in.offset(), ldx, w, b, start.clone(), 0, T, E, K);   // the kernel rolls its window: a copy
                continue;
            }
            float[] input = rows(in, ldx, T, E);
            if (reverse) input = flipRows(input, T, E);
            float[] conv = new float[T * E];
            CausalConv.apply(conv, input, 0, E, w, b, start.clone(), 0, T, E, K);   // the kernel rolls its window: a copy
            if (reverse) conv = flipRows(conv, T, E);
            if (preActivation != null) scatterRows(conv, heap(preActivation).at((long) s * T * E), E, T, E);
            if (silu) Elementwise.silu(conv, 0, E, conv, 0, E, T, E);
            scatterRows(conv, heap(out).at((long) s * T * E), E, T, E);
        }
    }

    @Override
    public void rollWindow(Buffer window, Buffer x, int ldx, int tokens, int channels, int kernel) {
        int T = tokens, E = channels, keep = kernel - 1;
        float[] old = packed(window, keep * E), rolled = new float[keep * E];
        HeapBuffer in = heap(x);
        for (int r = 0; r < keep; r++) {
            int src = T - keep + r;                                                 // input index of the new row r
            if (src >= 0) System.arraycopy(in.data(), in.offset() + src * ldx, rolled, r * E, E);
            else System.arraycopy(old, (keep + src) * E, rolled, r * E, E);
        }
        scatterRows(rolled, window, keep * E, 1, keep * E);
    }

    @Override
    public void selectiveScan(Scan s, int batch, int tokens, int channels, int states, boolean reverse, boolean accumulate) {
        int T = tokens, E = channels, N = states;
        float[] aT = packed(s.a(), N * E), d = packed(s.d(), E), dtBias = packed(s.dtBias(), E);
        for (int q = 0; q < batch; q++) {
            long row0 = (long) q * T;
            Buffer state = s.state() == null ? null : s.state().at((long) q * N * E);
            float[] h = state == null ? new float[N * E] : packed(state, N * E);
            float[] u = rows(heap(s.u()).at(row0 * s.ldu()), s.ldu(), T, E);
            float[] delta = rows(heap(s.dt()).at(row0 * s.lddt()), s.lddt(), T, E);
            // Row by row across the threads: serial, these took as long as a tenth of a prefill.
            Parallel.forRange(T, Parallel.rowGrain(E), (t0, t1) -> {
                for (int t = t0; t < t1; t++) {
                    Elementwise.addInPlace(delta, t * E, dtBias, 0, E);
                    Elementwise.softplus(delta, t * E, E);
                }
            });
            if (s.deltaOut() != null) scatterRows(delta, heap(s.deltaOut()).at(row0 * E), E, T, E);
            HeapBuffer z = heap(s.z()).at(row0 * s.ldz()), target = heap(s.y()).at(row0 * s.ldy());
            if (!reverse && !accumulate && s.ldy() == E) {
                // Forward into y: the scan reads B, C and z and writes y where they lie, without copies.
                HeapBuffer bc = heap(s.bc()).at(row0 * s.ldbc());
                SelectiveScan.scan(target.data(), target.offset(), new SelectiveScan.Inputs(u, delta, bc.data(), s.ldbc(), bc.offset(), bc.offset() + N,
                        z.data(), z.offset(), s.ldz()), aT, d, h, 0, T, E, N);
            } else {
                float[] bc = rows(heap(s.bc()).at(row0 * s.ldbc()), s.ldbc(), T, 2 * N), zRows = rows(z, s.ldz(), T, E);
                if (reverse) {
                    u = flipRows(u, T, E);
                    bc = flipRows(bc, T, 2 * N);
                    zRows = flipRows(zRows, T, E);
                }
                float[] y = new float[T * E];
                SelectiveScan.scan(y, new SelectiveScan.Inputs(u, reverse ? flipRows(delta, T, E) : delta, bc, 2 * N, 0, N, zRows, 0, E), aT, d, h, T, E, N);
                if (reverse) y = flipRows(y, T, E);
                if (accumulate) Elementwise.addInPlace(y, rows(target, s.ldy(), T, E), T * E);
                scatterRows(y, target, s.ldy(), T, E);
            }
            if (state != null) scatterRows(h, state, N * E, 1, N * E);
            if (s.window() != null) rollWindow(s.window().at((long) q * (s.kernel() - 1) * E), heap(s.x()).at(row0 * s.ldx()), s.ldx(), T, E, s.kernel());
        }
    }

    /** A kept transposed, [N, E]: the scan kernel's inner loop runs over channels, N rows of A at a time. */
    @Override
    public SsmWeights ssmWeights(float[] taps, float[] convBias, Matrix xProj, Matrix dtProj, float[] dtBias, float[] a, float[] d,
                                 int channels, int states, int rank, int kernel) {
        float[] aT = new float[states * channels];
        for (int c = 0; c < channels; c++) for (int i = 0; i < states; i++) aT[i * channels + c] = a[c * states + i];
        return Backend.super.ssmWeights(taps, convBias, xProj, dtProj, dtBias, aT, d, channels, states, rank, kernel);
    }

    /**
     * The decode step of an SSM branch with the kernels of {@link #causalConv} and {@link #selectiveScan}, in the same
     * order (so the same bits), reading and updating each sequence's window and state where they lie instead of copying them.
     */
    @Override
    public boolean ssmStep(SsmWeights w, Buffer y, Buffer xz, int ldxz, Buffer window, Buffer state, int batch, Matrix... upcoming) {
        int E = w.channels(), N = w.states(), R = w.rank(), K = w.kernel(), P = R + 2 * N;
        float[] taps = packed(w.convTaps(), K * E), convBias = optional(w.convBias(), E), dtBias = packed(w.dtBias(), E);
        float[] aT = packed(w.a(), N * E), d = packed(w.d(), E);
        HeapBuffer in = heap(xz), out = heap(y), windows = heap(window), states = heap(state);
        float[] u = new float[E], dbc = new float[P], delta = new float[E];     // u = silu(conv(x')); [δr, B, C]; Δ
        for (int q = 0; q < batch; q++) {
            int row = in.offset() + q * ldxz;
            CausalConv.apply(u, in.data(), row, ldxz, taps, convBias, windows.data(), windows.offset() + q * (K - 1) * E, 1, E, K);
            Elementwise.silu(u, 0, E, u, 0, E, 1, E);
            MatMul.matvec(dbc, 0, u, 0, tensor(w.xProj()), null);
            MatMul.matvec(delta, 0, dbc, 0, tensor(w.dtProj()), dtBias);        // reads δr, the first R values
            Elementwise.softplus(delta, 0, E);
            SelectiveScan.scan(out.data(), out.offset() + q * E, new SelectiveScan.Inputs(u, delta, dbc, P, R, R + N, in.data(), row + E, ldxz),
                    aT, d, states.data(), states.offset() + q * N * E, 1, E, N);
        }
        return true;
    }

    @Override
    public void im2col(Buffer out, Buffer pixels, int batch, int channels, int size, int patch, int stride, int grid) {
        int C = channels, S = size, P = patch, G = grid, patchLength = C * P * P;
        HeapBuffer o = heap(out), px = heap(pixels);
        for (int img = 0; img < batch; img++) {
            int image = px.offset() + img * C * S * S;
            for (int py = 0; py < G; py++) {
                for (int qx = 0; qx < G; qx++) {
                    int row = o.offset() + ((img * G + py) * G + qx) * patchLength;
                    for (int c = 0; c < C; c++) {
                        for (int i = 0; i < P; i++) {
                            System.arraycopy(px.data(), image + (c * S + py * stride + i) * S + qx * stride, o.data(), row + (c * P + i) * P, P);
                        }
                    }
                }
            }
        }
    }

    @Override
    public void assembleTokens(Buffer x, Buffer patches, Buffer patchBias, Buffer cls, Buffer position, int batch, int patchCount,
                               int dim, int clsPosition) {
        int M = patchCount, D = dim, T = M + 1;
        HeapBuffer out = heap(x), in = heap(patches);
        float[] bias = optional(patchBias, D), token = packed(cls, D), pos = packed(position, T * D);
        for (int img = 0; img < batch; img++) {
            for (int t = 0; t < T; t++) {
                int o = out.offset() + (img * T + t) * D;
                if (t == clsPosition) {
                    System.arraycopy(token, 0, out.data(), o, D);
                } else {
                    int patch = in.offset() + (img * M + (t < clsPosition ? t : t - 1)) * D;
                    for (int j = 0; j < D; j++) out.data()[o + j] = in.data()[patch + j] + (bias == null ? 0f : bias[j]);
                }
                for (int j = 0; j < D; j++) out.data()[o + j] += pos[t * D + j];
            }
        }
    }

    @Override
    public void attention(Buffer context, Buffer qkv, Buffer bias, int batch, int tokens, int heads, int headSize, Buffer probs) {
        HeapBuffer out = heap(context), in = heap(qkv), p = probs == null ? null : heap(probs);
        MultiHeadAttention.apply(out.data(), out.offset(), in.data(), in.offset(), optional(bias, 3 * heads * headSize), batch, tokens, heads,
                headSize, p == null ? null : p.data(), p == null ? 0 : p.offset());
    }

    // ---- Mamba-2 ----

    @Override
    public void ssdScan(Ssd s, int tokens, int heads, int headDim, int groups, int states) {
        int T = tokens, H = heads, E = heads * headDim, GN = groups * states;
        float[] dtBias = packed(s.dtBias(), H), delta = new float[T * H];          // Δ = clamp(softplus(dt + dt_bias)) [T, H]
        HeapBuffer dt = heap(s.dt());
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < H; h++) {
                float v = dt.data()[dt.offset() + t * s.lddt() + h] + dtBias[h];
                delta[t * H + h] = Math.min(s.dtMax(), Math.max(s.dtMin(), (float) (v > 20f ? v : Math.log1p(Math.exp(v)))));
            }
        }
        if (s.deltaOut() != null) scatterRows(delta, s.deltaOut(), H, T, H);
        HeapBuffer x = heap(s.x()), b = heap(s.b()), c = heap(s.c());
        SsdScan.Inputs in;
        if (x.data() == b.data() && b.data() == c.data() && s.ldx() == s.ldbc()) {   // columns of one matrix: read in place
            in = new SsdScan.Inputs(x.data(), s.ldx(), x.offset(), b.offset(), c.offset(), delta);
        } else {
            float[] xbc = new float[T * (E + 2 * GN)];
            scatterRows(rows(x, s.ldx(), T, E), wrap(xbc), E + 2 * GN, T, E);
            scatterRows(rows(b, s.ldbc(), T, GN), wrap(xbc).at(E), E + 2 * GN, T, GN);
            scatterRows(rows(c, s.ldbc(), T, GN), wrap(xbc).at(E + GN), E + 2 * GN, T, GN);
            in = new SsdScan.Inputs(xbc, E + 2 * GN, 0, E, E + GN, delta);
        }
        int stateSize = E * states;
        float[] state = s.state() == null ? new float[stateSize] : packed(s.state(), stateSize);
        float[] y = s.ldy() == E && heap(s.y()).offset() == 0 ? heap(s.y()).data() : new float[T * E];
        SsdScan.scan(y, in, packed(s.a(), H), packed(s.d(), H), state, T, H, headDim, groups, states);
        scatterRows(y, s.y(), s.ldy(), T, E);
        if (s.state() != null) scatterRows(state, s.state(), stateSize, 1, stateSize);
    }

    @Override
    public void gatedRmsnorm(Buffer out, int ldOut, Buffer y, int ldy, Buffer z, int ldz, Buffer w, int rows, int dim, float eps) {
        float[] gated = new float[rows * dim];                                    // silu(z) ⊙ y
        HeapBuffer gate = heap(z), in = heap(y);
        Elementwise.silu(gated, 0, dim, gate.data(), gate.offset(), ldz, rows, dim);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < dim; i++) gated[r * dim + i] *= in.data()[in.offset() + r * ldy + i];
        }
        float[] normed = ldOut == dim && heap(out).offset() == 0 ? heap(out).data() : new float[rows * dim];
        Elementwise.rmsnorm(normed, gated, packed(w, dim), eps, rows, dim);
        scatterRows(normed, out, ldOut, rows, dim);
    }

    // ---- RWKV ----

    @Override
    public void tokenShift(Buffer out, Buffer x, int ldx, Buffer mix, Buffer shift, int rows, int dim) {
        HeapBuffer o = heap(out), in = ldx == dim ? heap(x) : wrap(rows(x, ldx, rows, dim)), m = heap(mix), s = heap(shift);
        Wkv.tokenShift(o.data(), o.offset(), in.data(), in.offset(), m.data(), m.offset(), s.data(), s.offset(), rows, dim);
    }

    @Override
    public void wkv(Buffer out, Buffer gate, Buffer k, Buffer v, Buffer decay, Buffer bonus, Buffer state, int tokens, int channels) {
        HeapBuffer o = heap(out), g = heap(gate), kk = heap(k), vv = heap(v), h = heap(state);
        Wkv.recurrence(o.data(), o.offset(), g.data(), g.offset(), kk.data(), kk.offset(), vv.data(), vv.offset(),
                packed(decay, channels), packed(bonus, channels), h.data(), h.offset(), tokens, channels);
    }

    // ---- Attention with rotary positions (Griffin, GPT-NeoX) and Griffin's RG-LRU ----

    @Override
    public void rotary(Buffer x, int ldx, int rows, int heads, int headStride, Buffer inverseFrequencies, int rotaryDims, int firstPosition) {
        HeapBuffer h = heap(x);
        float[] f = packed(inverseFrequencies, rotaryDims / 2);
        if (f.length != rotaryDims / 2) f = Arrays.copyOf(f, rotaryDims / 2);
        float[] cos = new float[f.length], sin = new float[f.length];
        for (int r = 0; r < rows; r++) {
            Rotary.angles(cos, sin, firstPosition + r, f, 1);                    // once per position, for every head
            for (int g = 0; g < heads; g++) Rotary.rotate(h.data(), h.offset() + r * ldx + g * headStride, cos, sin);
        }
    }

    private static SlidingWindowAttention.Ring ring(KeyValueRing ring) {
        if (ring == null) return null;
        HeapBuffer k = heap(ring.keys()), v = heap(ring.values());
        return new SlidingWindowAttention.Ring(k.data(), k.offset(), v.data(), v.offset(), ring.capacity());
    }

    @Override
    public void slidingWindowAttention(Buffer context, int ldContext, Buffer q, int ldq, Buffer k, Buffer v, int ldkv, KeyValueRing ring,
                                       int position, int tokens, int heads, int kvHeads, int headSize, int window, float scale, Buffer probs) {
        KeyValueRing.check(ring, position, window);
        HeapBuffer c = heap(context), qs = heap(q), ks = heap(k), vs = heap(v), p = probs == null ? null : heap(probs);
        var rows = new SlidingWindowAttention.Rows(qs.data(), qs.offset(), ldq, ks.data(), ks.offset(), vs.data(), vs.offset(), ldkv);
        SlidingWindowAttention.apply(c.data(), c.offset(), ldContext, rows, ring(ring), position, tokens, heads, kvHeads, headSize, window,
                scale, p == null ? null : p.data(), p == null ? 0 : p.offset());
    }

    @Override
    public void ringAppend(KeyValueRing ring, Buffer k, Buffer v, int ldkv, int width, int position, int tokens) {
        HeapBuffer ks = heap(k), vs = heap(v);
        SlidingWindowAttention.append(ring(ring), ks.data(), ks.offset(), vs.data(), vs.offset(), ldkv, width, position, tokens);
    }

    @Override
    public void rgLru(Buffer y, Buffer x, int ldx, RgLruWeights w, Buffer state, Buffer a, Buffer b, int tokens, int channels,
                      int blocks, int position) {
        int W = channels, bw = W / blocks;
        RgLru.Weights weights = new RgLru.Weights(packed(w.inputGate(), W * bw), packed(w.inputGateBias(), W),
                packed(w.recurrentGate(), W * bw), packed(w.recurrentGateBias(), W), packed(w.softplusLambda(), W));
        float[] h = state == null ? new float[W] : packed(state, W);
        HeapBuffer out = heap(y), in = heap(x), as = a == null ? null : heap(a), bs = b == null ? null : heap(b);
        RgLru.scan(out.data(), out.offset(), in.data(), in.offset(), ldx, weights, h, as == null ? null : as.data(), as == null ? 0 : as.offset(),
                bs == null ? null : bs.data(), bs == null ? 0 : bs.offset(), tokens, W, bw, position);
        if (state != null) scatterRows(h, state, W, 1, W);
    }

    @Override
    public void softCap(Buffer x, float cap, long n) {
        HeapBuffer h = heap(x);
        for (int i = 0; i < n; i++) h.data()[h.offset() + i] = (float) Math.tanh(h.data()[h.offset() + i] / cap) * cap;
    }

    @Override
    public void storeHeads(Buffer cache, int capacity, int firstPosition, Buffer x, int ldx, int headStride, int rows, int heads, int headSize) {
        if (firstPosition + rows > capacity) throw new IndexOutOfBoundsException("positions up to " + (firstPosition + rows) + " in a cache of " + capacity);
        HeapBuffer c = heap(cache), in = heap(x);
        for (int g = 0; g < heads; g++) {
            for (int r = 0; r < rows; r++) {
                System.arraycopy(in.data(), in.offset() + r * ldx + g * headStride, c.data(),
                        c.offset() + (g * capacity + firstPosition + r) * headSize, headSize);
            }
        }
    }

    @Override
    public void causalAttention(Buffer context, int ldContext, Buffer q, int ldq, int qHeadStride, Buffer keys, Buffer values, int capacity,
                                int tokens, int heads, int kvHeads, int headSize, float scale, int firstPosition, int window, Buffer probs) {
        int L = tokens, H = heads, dh = headSize, T = firstPosition + L, group = H / kvHeads;
        if (H % kvHeads != 0) throw new IllegalArgumentException(H + " heads do not share " + kvHeads + " kv heads evenly");
        if (T > capacity) throw new IndexOutOfBoundsException(T + " positions in a cache of " + capacity);
        HeapBuffer out = heap(context), in = heap(q), k = heap(keys), v = heap(values), p = probs == null ? null : heap(probs);
        long work = (long) L * T * dh;                                      // per head: heads run in parallel when they are worth a thread
        Parallel.forRange(H, (int) Math.max(1, Math.min(H, 65536 / Math.max(1, work))), (h0, h1) -> {
            float[] scores = new float[L * T];                              // [L, T] of one head
            for (int h = h0; h < h1; h++) {
                int g = h / group, cached = (g * capacity) * dh;
                Tensor kh = new Tensor("keys", DType.F32, new long[]{T, dh},
                        MemorySegment.ofArray(k.data()).asSlice(4L * (k.offset() + cached), 4L * T * dh));
                MatMul.matmul(scores, 0, T, in.data(), in.offset() + h * qHeadStride, ldq, L, kh, null);   // q_h K_gᵀ
                for (int t = 0; t < L; t++) {
                    int position = firstPosition + t, lo = window > 0 ? Math.max(0, position - window + 1) : 0, row = t * T;
                    for (int s = lo; s <= position; s++) scores[row + s] *= scale;
                    Elementwise.softmaxRows(scores, row + lo, 1, position + 1 - lo);
                    Arrays.fill(scores, row, row + lo, 0f);
                    Arrays.fill(scores, row + position + 1, row + T, 0f);
                    MatMul.vectorTimesMatrix(out.data(), out.offset() + t * ldContext + h * dh, scores, row + lo, position + 1 - lo,
                            v.data(), v.offset() + cached + lo * dh, dh);              // a_h V_g
                }
                if (p != null) System.arraycopy(scores, 0, p.data(), p.offset() + h * L * T, L * T);
            }
        });
    }

    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return name();
    }
}
