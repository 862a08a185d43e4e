package org.mambalens.engine.cuda;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.backend.ReplaySlot;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.MixerTrace;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The CUDA backend: buffers in device memory, GEMMs in cuBLAS (F32, or BF16 operands with F32
 * accumulation), everything else in the kernels of {@code mambalens.cu}, all queued on one stream.
 * A forward pass's activations come from a {@link Frame} that reuses one device region from call to
 * call, so a decode step's addresses repeat and {@link #replay} can capture it as a graph once and
 * replay it. One backend per model; it owns its device context and closes it.
 */
public final class CudaBackend implements Backend {
    private static final long ALIGN = 64;                      // floats: 256-byte aligned activations

    private final Gpu gpu;
    private final Precision precision;
    private final CudaKernels kernels;
    private final DeviceArena weights, states, workspace;
    private final Map<String, DeviceMatrix> f32Tables = new HashMap<>();
    private DeviceBuffer stepPosition;                         // replayAt's device int
    private int replayPosition = -1;                           // inside replayAt: the step's position
    private final List<Graph> graphs = new ArrayList<>();
    private DeviceBuffer region;                               // the frames' memory
    private long generation;                                   // bumped when the region moves: captured graphs are stale
    private DeviceFrame open;
    private MemorySegment staging;                             // page-locked, see staging()

    /** A view of device memory: {@code floats} values from {@code address} on. */
    record DeviceMemory(long address, long floats) implements Buffer {
        @Override
        public long size() {
            return floats;
        }

        @Override
        public DeviceMemory at(long offset) {
            if (offset < 0 || offset > floats) throw new IndexOutOfBoundsException("element " + offset + " of a device buffer of " + floats);
            return new DeviceMemory(address + 4 * offset, floats - offset);
        }
    }

    public CudaBackend(Gpu gpu, Precision precision) {
        this.gpu = gpu;
        this.precision = precision;
        weights = gpu.newArena();
        states = gpu.newArena();
        workspace = gpu.newArena();
        kernels = new CudaKernels(gpu, workspace);
    }

    /** The GPU (for benchmarks and the device tests' timings). */
    public Gpu gpu() {
        return gpu;
    }

    private static long address(Buffer b) {
        return b == null ? 0 : memory(b).address();
    }

    private static DeviceMemory memory(Buffer b) {
        if (b instanceof DeviceMemory m) return m;
        throw new IllegalArgumentException("a " + b.getClass().getSimpleName() + " is not a buffer on the GPU");
    }

    private static DeviceMemory of(DeviceBuffer b) {
        return new DeviceMemory(b.address(), b.floats());
    }

    private static DeviceMatrix device(Matrix m) {
        if (m instanceof DeviceMatrix d) return d;
        throw new IllegalArgumentException("a " + m.getClass().getSimpleName() + " is not a weight on the GPU");
    }

    @Override
    public String name() {
        return gpu.name();
    }

    @Override
    public boolean isGpu() {
        return true;
    }

    @Override
    public int rowsAlikeAlone() {
        return CudaKernels.GEMV_ROWS;
    }

    @Override
    public Precision precision() {
        return precision;
    }

    @Override
    public synchronized <T> T call(java.util.function.Supplier<T> work) {
        gpu.bind();
        return work.get();
    }

    @Override
    public Matrix matrix(Tensor weight, int rows, int cols) {
        if (precision == Precision.F32) return table(weight, rows, cols);
        return DeviceMatrix.upload(weights, weight, rows, cols, precision);
    }

    @Override
    public Matrix table(Tensor weight, int rows, int cols) {
        return f32Tables.computeIfAbsent(weight.name() + "@" + weight.data().address(),
                k -> DeviceMatrix.upload(weights, weight, rows, cols, Precision.F32));
    }

    @Override
    public Matrix stack(int cols, Tensor... parts) {
        return DeviceMatrix.stack(weights, precision, cols, parts);
    }

    @Override
    public Buffer constant(float[] values) {
        return of(weights.upload(values));
    }

    @Override
    public Buffer allocate(long floats) {
        DeviceBuffer b = states.floats(Math.max(1, floats));
        b.fill(0);
        return of(b);
    }

    @Override
    public Frame frame() {
        if (open != null) throw new IllegalStateException("a frame is already open on " + gpu.name());
        open = new DeviceFrame();
        return open;
    }

    /**
     * Activations bump-allocated from the region; what does not fit comes from a spill arena, and on
     * close the region grows to the frame's peak (a new generation: captured graphs are recaptured).
     */
    private final class DeviceFrame implements Frame {
        private long used;
        private DeviceArena spill;

        DeviceFrame() {
            if (DeviceArena.POISON && region != null) region.fill(Float.NaN);
        }

        @Override
        public Buffer floats(long floats) {
            if (floats <= 0) throw new IllegalArgumentException("device buffer of " + floats + " floats");
            long start = used;
            used += (floats + ALIGN - 1) / ALIGN * ALIGN;
            if (region != null && used <= region.floats()) return new DeviceMemory(region.address() + 4 * start, floats);
            if (spill == null) spill = gpu.newArena();
            DeviceBuffer b = spill.floats(floats);
            if (DeviceArena.POISON) b.fill(Float.NaN);
            return of(b);
        }

        @Override
        public void close() {
            open = null;
            if (spill == null) return;
            spill.close();
            gpu.synchronize();
            long size = used + used / 4;
            region = workspace.floats(size);   // the old region stays with the workspace until close: graphs may point at it
            generation++;
        }
    }

    private DeviceFrame openFrame() {
        if (open == null) throw new IllegalStateException("GPU activations need an open frame (Backend.frame())");
        return open;
    }

    /**
     * Page-locked host memory of at least {@code floats} values, kept and grown: copies through it run at full
     * bus speed in one step (pageable memory goes through the driver's own staging: a decode step's logits,
     * a batch of images).
     */
    private MemorySegment staging(long floats) {
        if (staging == null || staging.byteSize() < 4 * floats) staging = weights.pinnedFloats(Math.max(floats, 1 << 16));
        return staging;
    }

    @Override
    public float[] read(Buffer b, int count) {
        DeviceMemory m = memory(b);
        if (count > m.floats()) throw new IndexOutOfBoundsException(count + " values of a device buffer of " + m.floats());
        float[] out = new float[count];
        MemorySegment host = staging(count);
        gpu.cu.check("cuMemcpyDtoH", gpu.cu.cuMemcpyDtoH(host, m.address(), 4L * count));
        MemorySegment.copy(host, 0, MemorySegment.ofArray(out), 0, 4L * count);
        return out;
    }

    @Override
    public void write(Buffer b, float[] values) {
        write(b, new float[][]{values});
    }

    @Override
    public void write(Buffer b, float[][] parts) {
        DeviceMemory m = memory(b);
        long n = 0;
        for (float[] part : parts) n += part.length;
        if (n > m.floats()) throw new IndexOutOfBoundsException(n + " values into a device buffer of " + m.floats());
        MemorySegment host = staging(n);
        long[] at = new long[parts.length];
        for (int i = 1; i < parts.length; i++) at[i] = at[i - 1] + parts[i - 1].length;
        org.mambalens.engine.kernels.Parallel.forRange(parts.length, 1, (p0, p1) -> {
            for (int i = p0; i < p1; i++) MemorySegment.copy(MemorySegment.ofArray(parts[i]), 0, host, 4 * at[i], 4L * parts[i].length);
        });
        gpu.cu.check("cuMemcpyHtoD", gpu.cu.cuMemcpyHtoD(m.address(), host, 4 * n));
    }

    @Override
    public void copy(Buffer dst, Buffer src, long count) {
        if (count > 0) kernels.copy(address(dst), address(src), count);
    }

    @Override
    public void fill(Buffer b, long count, float value) {
        if (count > 0) kernels.fill(address(b), value, count);
    }

    /** A captured graph and the frame generation whose addresses it holds. */
    private record Captured(Graph graph, long generation) {
    }

    @Override
    public void replay(ReplaySlot slot, Runnable work) {
        if (Boolean.getBoolean("mambalens.cuda.noGraphs")) {
            work.run();
            return;
        }
        Object held = slot.held();
        if (held instanceof Captured c && c.generation() == generation) {
            c.graph().launch();
        } else if (held == null) {
            work.run();                                        // the first run also lets cuBLAS set itself up
            slot.hold(Boolean.TRUE);
        } else {
            Graph graph = gpu.capture(work);
            graphs.add(graph);
            slot.hold(new Captured(graph, generation));
            graph.launch();
        }
    }

    /**
     * A step at {@code position} replayed as {@link #replay} replays: the position goes to a device int before the
     * graph runs, and the position-taking kernels launched inside read it there (they are given it as well, and it
     * must be this one), so one capture serves every position.
     */
    @Override
    public void replayAt(ReplaySlot slot, int position, Runnable work) {
        if (stepPosition == null) stepPosition = workspace.floats(1);
        stepPosition.upload(new int[]{position});    // a synchronous copy: after the last step's graph, before this one's
        replayPosition = position;
        try {
            replay(slot, work);
        } finally {
            replayPosition = -1;
        }
    }

    /** Inside {@link #replayAt}, the device int that holds the step's position ({@code literal} must be it); 0 elsewhere. */
    private long positionAt(int literal) {
        if (replayPosition < 0) return 0;
        if (literal != replayPosition) {
            throw new IllegalStateException("a replayed step at position " + replayPosition + " launched a kernel for position " + literal);
        }
        return stepPosition.address();
    }

    @Override
    public void linear(Buffer out, int ldOut, Buffer in, int ldIn, int rows, Matrix w, Buffer bias, float alpha) {
        kernels.linear(address(out), ldOut, address(in), ldIn, rows, device(w), address(bias), alpha, false);
    }

    @Override
    public void linearAdd(Buffer out, int ldOut, Buffer in, int ldIn, int rows, Matrix w, Buffer bias) {
        kernels.linear(address(out), ldOut, address(in), ldIn, rows, device(w), address(bias), 1f, true);
    }

    @Override
    public void rmsnormLinear(Buffer out, int ldOut, Buffer x, Buffer norm, float eps, Buffer normed, int rows, int dim, Matrix w,
                              Buffer bias) {
        kernels.rmsnormLinear(address(out), ldOut, address(x), address(norm), eps, address(normed), rows, afterNorm(w, dim), address(bias));
    }

    @Override
    public void gatedRmsnormLinearAdd(Buffer out, int ldOut, Buffer y, int ldy, Buffer z, int ldz, Buffer norm, float eps, Buffer normed,
                                      int rows, int dim, Matrix w, Buffer bias) {
        kernels.gatedRmsnormLinearAdd(address(out), ldOut, address(y), ldy, address(z), ldz, address(norm), eps, address(normed), rows,
                afterNorm(w, dim), address(bias));
    }

    @Override
    public void layernormLinear(Buffer out, int ldOut, Buffer x, Buffer lnW, Buffer lnB, float eps, Buffer normed, int rows, int dim,
                                Matrix w, Buffer bias) {
        kernels.layernormLinear(address(out), ldOut, address(x), address(lnW), address(lnB), eps, address(normed), rows, afterNorm(w, dim),
                address(bias));
    }

    /** The weight of a product that follows a norm over {@code dim} values: its inputs must be those. */
    private static DeviceMatrix afterNorm(Matrix w, int dim) {
        DeviceMatrix m = device(w);
        if (m.cols() != dim) throw new IllegalArgumentException("a weight of " + m.cols() + " inputs after a norm over " + dim);
        return m;
    }

    @Override
    public int[] topTwo(Buffer x, int rows, int cols) {
        Buffer out = openFrame().floats(2L * rows);
        kernels.topTwo(address(out), address(x), rows, cols);
        float[] bits = read(out, 2 * rows);
        int[] two = new int[2 * rows];
        for (int i = 0; i < two.length; i++) two[i] = Float.floatToRawIntBits(bits[i]);
        return two;
    }

    /** A as the kernels read it: after the scans' [E, N], the decode step's transposed weights ({@link CudaKernels#ssmStepWeights}). */
    @Override
    public SsmWeights ssmWeights(float[] taps, float[] convBias, Matrix xProj, Matrix dtProj, float[] dtBias, float[] a, float[] d,
                                 int channels, int states, int rank, int kernel) {
        return new SsmWeights(constant(taps), convBias == null ? null : constant(convBias), xProj, dtProj, constant(dtBias),
                of(kernels.ssmStepWeights(weights, a, device(dtProj), channels, states, rank)), constant(d), channels, states, rank, kernel);
    }

    @Override
    public boolean ssmStep(SsmWeights w, Buffer y, Buffer xz, int ldxz, Buffer window, Buffer state, int batch, Matrix... upcoming) {
        int E = w.channels(), N = w.states();
        if (!CudaKernels.ssmStepTakes(N, w.kernel(), w.rank())) return false;
        Buffer dbc = openFrame().floats(CudaKernels.ssmStepScratch(batch, E, N, w.rank()));
        kernels.ssmStep(address(y), E, address(xz), ldxz, address(window), address(state), address(dbc), address(w.convTaps()),
                address(w.convBias()), device(w.xProj()), device(w.dtProj()), address(w.dtBias()), address(w.a()), address(w.d()),
                batch, E, N, w.rank(), w.kernel(), Arrays.stream(upcoming).map(CudaBackend::device).toArray(DeviceMatrix[]::new));
        return true;
    }

    @Override
    public void embed(Buffer out, Matrix table, int[] ids) {
        DeviceMatrix t = device(table);
        if (t.precision() != Precision.F32) throw new IllegalArgumentException("an embedding table must be F32 (Backend.table)");
        Buffer idBuffer = openFrame().floats(ids.length);
        gpu.cu.check("cuMemcpyHtoD", gpu.cu.cuMemcpyHtoD(address(idBuffer), MemorySegment.ofArray(ids), 4L * ids.length));
        kernels.gatherRows(address(out), t.address(), address(idBuffer), ids.length, t.cols());
    }

    @Override
    public void biasActivation(Buffer x, Buffer bias, int rows, int cols, Activation activation) {
        kernels.biasActivation(address(x), address(bias), rows, cols, activation.ordinal());
    }

    @Override
    public void add(Buffer x, Buffer y, long n) {
        kernels.addBiasResidual(address(x), address(y), 0, 1, Math.toIntExact(n));
    }

    @Override
    public void multiply(Buffer x, Buffer y, long n) {
        kernels.multiply(address(x), address(y), n);
    }

    @Override
    public void scale(Buffer x, float factor, long n) {
        kernels.scale(address(x), factor, n);
    }

    @Override
    public void addRmsnorm(Buffer out, int ldOut, Buffer residual, int ldResidual, Buffer hidden, int ldHidden, Buffer w,
                           int rows, int dim, float eps) {
        kernels.addRmsnorm(address(out), ldOut, address(residual), ldResidual, address(hidden), ldHidden, address(w), rows, dim, eps);
    }

    @Override
    public void layernorm(Buffer out, int ldOut, Buffer x, int ldx, Buffer w, Buffer b, int rows, int dim, float eps) {
        kernels.layernorm(address(out), ldOut, address(x), ldx, address(w), address(b), rows, dim, eps);
    }

    @Override
    public void softmaxRows(Buffer x, int rows, int cols) {
        kernels.softmaxRows(address(x), rows, cols);
    }

    @Override
    public void causalConv(Buffer out, Buffer preActivation, Buffer x, int ldx, Buffer taps, Buffer bias, Buffer window,
                           int batch, int tokens, int channels, int kernel, boolean reverse, boolean silu) {
        kernels.causalConv(address(out), address(preActivation), address(x), ldx, address(taps), address(bias), address(window),
                batch, tokens, channels, kernel, reverse, silu);
    }

    @Override
    public void causalConvAndRoll(Buffer out, Buffer preActivation, Buffer x, int ldx, Buffer taps, Buffer bias, Buffer window,
                                  int tokens, int channels, int kernel, boolean silu) {
        if (tokens != 1 || window == null || kernel > 9) {
            Backend.super.causalConvAndRoll(out, preActivation, x, ldx, taps, bias, window, tokens, channels, kernel, silu);
            return;
        }
        kernels.causalConvStep(address(out), address(preActivation), address(x), ldx, address(taps), address(bias), address(window), channels,
                kernel, silu);
    }

    @Override
    public void rollWindow(Buffer window, Buffer x, int ldx, int tokens, int channels, int kernel) {
        kernels.rollWindow(address(window), address(x), ldx, tokens, channels, kernel);
    }

    @Override
    public void selectiveScan(Scan s, int batch, int tokens, int channels, int states, boolean reverse, boolean accumulate) {
        kernels.selectiveScan(new CudaKernels.ScanArgs(address(s.y()), s.ldy(), address(s.u()), s.ldu(), address(s.dt()), s.lddt(),
                address(s.dtBias()), address(s.bc()), s.ldbc(), address(s.z()), s.ldz(), address(s.a()), address(s.d()),
                address(s.state()), address(s.deltaOut()), address(s.window()), address(s.x()), s.ldx(), s.kernel()),
                batch, tokens, channels, states, reverse, accumulate);
    }

    @Override
    public void im2col(Buffer out, Buffer pixels, int batch, int channels, int size, int patch, int stride, int grid) {
        kernels.im2col(address(out), address(pixels), batch, channels, size, patch, stride, grid);
    }

    @Override
    public void assembleTokens(Buffer x, Buffer patches, Buffer patchBias, Buffer cls, Buffer position, int batch, int patchCount,
                               int dim, int clsPosition) {
        kernels.assembleTokens(address(x), address(patches), address(patchBias), address(cls), address(position), batch, patchCount,
                dim, clsPosition);
    }

    @Override
    public void attention(Buffer context, Buffer qkv, Buffer bias, int batch, int tokens, int heads, int headSize, Buffer probs) {
        int B = batch, T = tokens, H = heads, dh = headSize;
        Frame frame = openFrame();
        long perHead = (long) B * H * T * dh;
        Buffer q = frame.floats(perHead), k = frame.floats(perHead), v = frame.floats(perHead), heads4 = frame.floats(perHead);
        Buffer scores = probs != null ? probs : frame.floats((long) B * H * T * T);
        kernels.qkvToHeads(address(q), address(k), address(v), address(qkv), address(bias), B, T, H, dh, (float) (1 / Math.sqrt(dh)));
        kernels.attentionScores(address(scores), address(q), address(k), B * H, T, dh);
        kernels.softmaxRows(address(scores), (long) B * H * T, T);
        kernels.attentionContext(address(heads4), address(scores), address(v), B * H, T, dh);
        kernels.headsToRows(address(context), address(heads4), B, T, H, dh);
    }

    @Override
    public HiddenAttentionSums hiddenAttentionSums(MixerTrace forward, MixerTrace backward) {
        return call(() -> {
            int T = forward.length(), E = forward.channels(), N = forward.stateSize(), blocks = CudaKernels.summaryBlocks(T);
            try (DeviceArena arena = gpu.newArena()) {
                SummaryInputs f = SummaryInputs.upload(arena, forward), b = backward == null ? null : SummaryInputs.upload(arena, backward);
                DeviceBuffer sum = arena.floats((long) T * T), positive = arena.floats((long) T * T);
                DeviceBuffer blockMin = arena.floats((long) T * blocks), blockMax = arena.floats((long) T * blocks);
                kernels.hiddenAttentionSummary(sum.address(), positive.address(), blockMin.address(), blockMax.address(),
                        f.deltaT, f.sumT, f.b, f.c, f.a, b == null ? 0 : b.deltaT, b == null ? 0 : b.sumT, b == null ? 0 : b.b,
                        b == null ? 0 : b.c, b == null ? 0 : b.a, T, E, N);
                float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
                for (float v : blockMin.download(0, T * blocks)) min = Math.min(min, v);
                for (float v : blockMax.download(0, T * blocks)) max = Math.max(max, v);
                return new HiddenAttentionSums(sum.download(0, T * T), positive.download(0, T * T), min, max);
            }
        });
    }

    /** One direction's summary inputs on the device: Δ and its running sums channel-major [E, T], B and C [T, N], A [E, N]. */
    private record SummaryInputs(long deltaT, long sumT, long b, long c, long a) {
        static SummaryInputs upload(DeviceArena arena, MixerTrace t) {
            int T = t.length(), E = t.channels();
            float[] deltaT = new float[E * T];
            double[] sumT = new double[E * T];
            for (int e = 0; e < E; e++) {
                double running = 0;
                for (int i = 0; i < T; i++) {
                    float d = t.delta(i, e);
                    deltaT[e * T + i] = d;
                    running += d;
                    sumT[e * T + i] = running;
                }
            }
            DeviceBuffer sums = arena.floats(2L * E * T);
            sums.upload(MemorySegment.ofArray(sumT), 0);
            return new SummaryInputs(arena.upload(deltaT).address(), sums.address(), arena.upload(t.b()).address(),
                    arena.upload(t.c()).address(), arena.upload(t.a()).address());
        }
    }

    // ---- Mamba-2 ----

    @Override
    public void ssdScan(Ssd s, int tokens, int heads, int headDim, int groups, int states) {
        kernels.ssdScan(new CudaKernels.SsdArgs(address(s.y()), s.ldy(), address(s.x()), s.ldx(), address(s.b()), address(s.c()), s.ldbc(),
                address(s.dt()), s.lddt(), address(s.dtBias()), s.dtMin(), s.dtMax(), address(s.a()), address(s.d()), address(s.state()),
                address(s.deltaOut())), tokens, heads, headDim, groups, states);
    }

    @Override
    public void gatedRmsnorm(Buffer out, int ldOut, Buffer y, int ldy, Buffer z, int ldz, Buffer w, int rows, int dim, float eps) {
        kernels.gatedRmsnorm(address(out), ldOut, address(y), ldy, address(z), ldz, address(w), rows, dim, eps);
    }

    // ---- RWKV ----

    @Override
    public void tokenShift(Buffer out, Buffer x, int ldx, Buffer mix, Buffer shift, int rows, int dim) {
        kernels.tokenShift(address(out), address(x), ldx, address(mix), address(shift), rows, dim);
    }

    @Override
    public void wkv(Buffer out, Buffer gate, Buffer k, Buffer v, Buffer decay, Buffer bonus, Buffer state, int tokens, int channels) {
        kernels.wkv(address(out), address(gate), address(k), address(v), address(decay), address(bonus), address(state), tokens, channels);
    }

    // ---- Attention with rotary positions (Griffin, GPT-NeoX) and Griffin's RG-LRU ----

    @Override
    public void rotary(Buffer x, int ldx, int rows, int heads, int headStride, Buffer inverseFrequencies, int rotaryDims, int firstPosition) {
        kernels.rotary(address(x), ldx, rows, heads, headStride, address(inverseFrequencies), rotaryDims, firstPosition, positionAt(firstPosition));
    }

    @Override
    public void slidingWindowAttention(Buffer context, int ldContext, Buffer q, int ldq, Buffer k, Buffer v, int ldkv, KeyValueRing ring,
                                       int position, int tokens, int heads, int kvHeads, int headSize, int window, float scale, Buffer probs) {
        KeyValueRing.check(ring, position, window);
        long positionAt = positionAt(position);     // replayed: scratch for the most a query ever sees
        int nmax = positionAt != 0 ? window : (int) Math.min(window, (long) position + tokens);
        Buffer scores = openFrame().floats((long) tokens * heads * nmax);
        kernels.slidingWindowAttention(address(context), ldContext, address(q), ldq, address(k), address(v), ldkv,
                ring == null ? 0 : address(ring.keys()), ring == null ? 0 : address(ring.values()), ring == null ? 1 : ring.capacity(),
                position, tokens, heads, kvHeads, headSize, window, scale, address(scores), nmax, address(probs), positionAt);
    }

    @Override
    public void ringAppend(KeyValueRing ring, Buffer k, Buffer v, int ldkv, int width, int position, int tokens) {
        kernels.ringAppend(address(ring.keys()), address(ring.values()), address(k), address(v), ldkv, width, ring.capacity(), position, tokens,
                positionAt(position));
    }

    @Override
    public void rgLru(Buffer y, Buffer x, int ldx, RgLruWeights w, Buffer state, Buffer a, Buffer b, int tokens, int channels,
                      int blocks, int position) {
        Buffer gates = a != null ? a : openFrame().floats((long) tokens * channels);
        kernels.rgLru(address(y), address(x), ldx, address(w.inputGate()), address(w.inputGateBias()), address(w.recurrentGate()),
                address(w.recurrentGateBias()), address(w.softplusLambda()), address(state), address(gates), address(b), tokens, channels,
                channels / blocks, position, positionAt(position));
    }

    @Override
    public void softCap(Buffer x, float cap, long n) {
        kernels.softCap(address(x), cap, n);
    }

    @Override
    public void storeHeads(Buffer cache, int capacity, int firstPosition, Buffer x, int ldx, int headStride, int rows, int heads, int headSize) {
        if (firstPosition + rows > capacity) throw new IndexOutOfBoundsException("positions up to " + (firstPosition + rows) + " in a cache of " + capacity);
        if (rows > 0) {
            kernels.storeHeads(address(cache), capacity, firstPosition, address(x), ldx, headStride, rows, heads, headSize, positionAt(firstPosition));
        }
    }

    @Override
    public void causalAttention(Buffer context, int ldContext, Buffer q, int ldq, int qHeadStride, Buffer keys, Buffer values, int capacity,
                                int tokens, int heads, int kvHeads, int headSize, float scale, int firstPosition, int window, Buffer probs) {
        if (heads % kvHeads != 0) throw new IllegalArgumentException(heads + " heads do not share " + kvHeads + " kv heads evenly");
        if (firstPosition + tokens > capacity) throw new IndexOutOfBoundsException((firstPosition + tokens) + " positions in a cache of " + capacity);
        long positionAt = positionAt(firstPosition);    // replayed: scratch for a query at the cache's last position
        Buffer scores = probs != null ? probs : openFrame().floats((long) heads * tokens * (positionAt != 0 ? capacity : firstPosition + tokens));
        kernels.causalAttention(address(context), ldContext, address(q), ldq, qHeadStride, address(keys), address(values), capacity,
                tokens, heads, kvHeads, headSize, scale, firstPosition, window, address(scores), positionAt);
    }

    @Override
    public void close() {
        gpu.bind();
        gpu.synchronize();
        for (Graph g : graphs) g.close();
        workspace.close();
        states.close();
        weights.close();
        gpu.close();
    }

    @Override
    public String toString() {
        return gpu.name() + (precision == Precision.BF16 ? " (BF16 GEMMs)" : "");
    }
}
