package org.mambalens.engine.model.mamba;

import org.mambalens.engine.cuda.CudaKernels;
import org.mambalens.engine.cuda.CudaKernels.ScanArgs;
import org.mambalens.engine.cuda.DeviceArena;
import org.mambalens.engine.cuda.DeviceBuffer;
import org.mambalens.engine.cuda.DeviceMatrix;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.cuda.Graph;
import org.mambalens.engine.cuda.Precision;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.tensor.Matrices;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.TreeMap;

/**
 * The Mamba-1 language model of {@link MambaModel} on a CUDA GPU: the same checkpoint and the same
 * equations (SPEC §2), with the weights uploaded once (the GEMMs' as F32 or BF16, see {@link Precision}),
 * GEMMs in cuBLAS and the conv, scan and norms in the kernels of {@code mambalens.cu}. Per token only the id goes up and the logits come
 * down; a decode step is captured once per state as a CUDA graph and replayed. The reverse pass
 * (attribution) runs on the CPU twin of the same checkpoint.
 *
 * <p>Shapes: L tokens, D = hidden, E = inner channels, N = state size, R = dt rank, K = conv taps,
 * P = R + 2N (x_proj's output), V = vocab.
 */
public final class MambaCudaModel implements LanguageModel {

    /** One residual block's weights on the device; optional ones are null. */
    private record Layer(DeviceBuffer norm,         // [D]
                         DeviceMatrix inProj,       // [2E, D]
                         DeviceBuffer inProjBias,   // [2E]
                         DeviceBuffer convTaps,     // [K, E]
                         DeviceBuffer convBias,     // [E]
                         DeviceMatrix xProj,        // [P, E]
                         DeviceMatrix dtProj,       // [E, R]
                         DeviceBuffer dtBias,       // [E]
                         DeviceBuffer a,            // [E, N]  A = −exp(A_log)
                         DeviceBuffer d,            // [E]
                         DeviceMatrix outProj,      // [D, E]
                         DeviceBuffer outProjBias) { // [D]
    }

    /**
     * Per layer on the device: the last K−1 conv inputs and the SSM state, plus this state's captured decode
     * step. Its device memory is the model's and is freed when the model closes.
     */
    public static final class State implements LanguageModel.State {
        final DeviceBuffer convWindow;   // [layers, (K−1)·E]
        final DeviceBuffer ssm;          // [layers, E·N]
        int position;
        boolean warmedUp;
        Graph decodeStep;

        State(DeviceArena arena, MambaConfig c) {
            int E = c.intermediateSize();
            convWindow = arena.floats((long) c.layers() * Math.max(1, c.convKernel() - 1) * E);
            ssm = arena.floats((long) c.layers() * E * c.stateSize());
            reset();
        }

        /** Back to the start of a sequence. */
        void reset() {
            convWindow.fill(0);
            ssm.fill(0);
            position = 0;
        }

        @Override
        public int position() {
            return position;
        }
    }

    /** Activations for up to {@code capacity} tokens. */
    private static final class Scratch {
        final int capacity;
        final MemorySegment logitsHost;   // page-locked [V], for one row of logits
        final DeviceBuffer ids, x, hidden, normed, xz, u, dbc, dt, y, logits, convOut, delta;

        Scratch(DeviceArena arena, MambaConfig c, int capacity) {
            int D = c.hiddenSize(), E = c.intermediateSize(), P = c.timeStepRank() + 2 * c.stateSize();
            this.capacity = capacity;
            logitsHost = arena.pinnedFloats(c.vocabSize());
            ids = arena.floats(capacity);                         // [L] int32
            x = arena.floats((long) capacity * D);                // residual stream [L, D]
            hidden = arena.floats((long) capacity * D);           // mixer output [L, D]
            normed = arena.floats((long) capacity * D);           // RMSNorm(x) [L, D]
            xz = arena.floats((long) capacity * 2 * E);           // in_proj [L, 2E]: x' | z
            u = arena.floats((long) capacity * E);                // silu(conv(x')) [L, E]
            dbc = arena.floats((long) capacity * P);              // x_proj: δr | B | C [L, P]
            dt = arena.floats((long) capacity * E);               // dt_proj(δr) without bias [L, E]
            y = arena.floats((long) capacity * E);                // scan output, gated [L, E]
            logits = arena.floats((long) capacity * c.vocabSize()); // [L, V]
            convOut = arena.floats((long) capacity * E);          // conv before SiLU, for traces [L, E]
            delta = arena.floats((long) capacity * E);            // Δ, for traces [L, E]
        }
    }

    private final Path dir;
    private final MambaConfig config;
    private final Gpu gpu;
    private final CudaKernels kernels;
    private final DeviceArena weights, states, work;   // weights; decode states and their graphs; activations
    private final Precision precision;
    private final DeviceMatrix embeddings;   // [V, D], F32: rows are gathered, not multiplied
    private final DeviceBuffer normF;        // [D]
    private final DeviceMatrix lmHead;       // [V, D] (the embeddings when tied and F32)
    private final Layer[] layers;
    private final SsmBranch[] hostBranches;  // the small per-channel parameters, for traces
    private final TreeMap<Integer, Scratch> scratch = new TreeMap<>();
    private State forwardState;              // reused by every forward(), so that it allocates nothing per call
    private final boolean graphs = !Boolean.getBoolean("mambalens.cuda.noGraphs");
    private MambaModel cpuTwin;

    private MambaCudaModel(Path dir, MambaConfig config, Checkpoint ck, Gpu gpu, Precision precision) {
        this.dir = dir;
        this.config = config;
        this.gpu = gpu;
        this.precision = precision;
        this.weights = gpu.newArena();
        this.states = gpu.newArena();
        this.work = gpu.newArena();
        this.kernels = new CudaKernels(gpu, work);
        int V = config.vocabSize(), D = config.hiddenSize(), E = config.intermediateSize(), N = config.stateSize(), R = config.timeStepRank();
        embeddings = DeviceMatrix.upload(weights, ck.tensor("backbone.embeddings.weight", V, D), V, D, Precision.F32);
        normF = weights.upload(ck.tensor("backbone.norm_f.weight", D).toFloatArray());
        lmHead = config.tieWordEmbeddings() && precision == Precision.F32 ? embeddings
                : DeviceMatrix.upload(weights, ck.tensor(config.tieWordEmbeddings() ? "backbone.embeddings.weight" : "lm_head.weight", V, D), V, D, precision);
        layers = new Layer[config.layers()];
        hostBranches = new SsmBranch[config.layers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "backbone.layers." + i + ".";
            SsmBranch b = SsmBranch.load(ck, p + "mixer.", "", "A_log", config.useConvBias(), E, N, R, config.convKernel());
            hostBranches[i] = b;
            layers[i] = new Layer(
                    weights.upload(ck.tensor(p + "norm.weight", D).toFloatArray()),
                    DeviceMatrix.upload(weights, ck.tensor(p + "mixer.in_proj.weight", 2L * E, D), 2 * E, D, precision),
                    config.useBias() ? weights.upload(ck.tensor(p + "mixer.in_proj.bias", 2L * E).toFloatArray()) : null,
                    weights.upload(b.convTaps()),
                    b.convBias() == null ? null : weights.upload(b.convBias()),
                    DeviceMatrix.upload(weights, b.xProj(), R + 2 * N, E, precision),
                    DeviceMatrix.upload(weights, b.dtProj(), E, R, precision),
                    weights.upload(b.dtBias()),
                    weights.upload(b.a()),
                    weights.upload(b.d()),
                    DeviceMatrix.upload(weights, ck.tensor(p + "mixer.out_proj.weight", D, E), D, E, precision),
                    config.useBias() ? weights.upload(ck.tensor(p + "mixer.out_proj.bias", D).toFloatArray()) : null);
        }
        gpu.synchronize();
    }

    /** Loads the checkpoint onto {@code gpu}, which the model then owns (and closes). */
    public static MambaCudaModel load(Path dir, Gpu gpu, Precision precision) {
        MambaConfig config = MambaConfig.from(ConfigFile.in(dir));
        return gpu.load(dir, ck -> new MambaCudaModel(dir, config, ck, gpu, precision));
    }

    public MambaConfig config() {
        return config;
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public boolean onGpu() {
        return true;
    }

    @Override
    public int layers() {
        return config.layers();
    }

    @Override
    public int eosTokenId() {
        return config.eosTokenId();
    }

    @Override
    public synchronized State newState() {
        gpu.bind();
        return new State(states, config);
    }

    @Override
    public synchronized float[] forward(int[] ids, TraceRecorder trace) {
        LanguageModel.checkIds(ids, config.vocabSize());
        gpu.bind();
        int L = ids.length, V = config.vocabSize();
        Scratch s = scratch(L);
        if (DeviceArena.POISON) work.poison();
        if (forwardState == null) forwardState = new State(states, config);
        else forwardState.reset();
        s.ids.upload(ids);
        run(s, L, forwardState, trace, 0, L);
        return s.logits.download(0, new float[Math.multiplyExact(L, V)]);
    }

    @Override
    public synchronized float[] prefill(int[] ids, LanguageModel.State state) {
        LanguageModel.checkIds(ids, config.vocabSize());   // all of them first: a bad id must not leave the state half-advanced
        gpu.bind();
        State st = (State) state;
        Scratch s = scratch(Math.min(ids.length, MambaModel.PREFILL_CHUNK));
        int last = 0;
        for (int from = 0; from < ids.length; from += MambaModel.PREFILL_CHUNK) {
            int[] chunk = Arrays.copyOfRange(ids, from, Math.min(ids.length, from + MambaModel.PREFILL_CHUNK));
            if (DeviceArena.POISON) work.poison();
            s.ids.upload(chunk);
            last = chunk.length - 1;
            run(s, chunk.length, st, null, last, 1);
        }
        return s.logits.download(0, new float[config.vocabSize()], s.logitsHost);
    }

    @Override
    public synchronized float[] step(int id, LanguageModel.State state) {
        LanguageModel.checkIds(new int[]{id}, config.vocabSize());
        gpu.bind();
        State st = (State) state;
        Scratch s = scratch(1);
        if (DeviceArena.POISON) work.poison();
        s.ids.upload(new int[]{id});
        if (!graphs || !st.warmedUp) {                                     // the first step also lets cuBLAS set itself up
            run(s, 1, st, null, 0, 1);
            st.warmedUp = true;
        } else {
            if (st.decodeStep == null) st.decodeStep = states.capture(() -> launches(s, 1, st, null, 0, 1));
            st.decodeStep.launch();
            st.position++;
        }
        return s.logits.download(0, new float[config.vocabSize()], s.logitsHost);
    }

    private Scratch scratch(int tokens) {
        var fit = scratch.ceilingEntry(tokens);
        if (fit != null && (tokens > 1 || fit.getKey() == 1)) return fit.getValue();   // decode keeps its own 1-token buffers (graphs point at them)
        int D = config.hiddenSize(), E = config.intermediateSize(), P = config.timeStepRank() + 2 * config.stateSize();
        long bytes = 4L * tokens * (1 + 3L * D + 7L * E + P + config.vocabSize());
        long free = gpu.memoryInfo()[0];
        if (bytes > free * 9 / 10) {
            throw new IllegalArgumentException(String.format("%d tokens need %.2f GiB of GPU memory for the activations and logits, "
                    + "%.2f GiB is free on %s; use fewer tokens", tokens, bytes / 1073741824.0, free / 1073741824.0, gpu.name()));
        }
        Scratch s = new Scratch(work, config, tokens);
        scratch.put(tokens, s);
        return s;
    }

    /** Queues the forward pass over the L tokens in s.ids, then the logits of rows [firstRow, firstRow + rows), and advances the state. */
    private void run(Scratch s, int L, State state, TraceRecorder trace, int firstRow, int rows) {
        launches(s, L, state, trace, firstRow, rows);
        state.position += L;
    }

    private void launches(Scratch s, int L, State state, TraceRecorder trace, int firstRow, int rows) {
        int D = config.hiddenSize(), E = config.intermediateSize(), N = config.stateSize(), R = config.timeStepRank(),
                K = config.convKernel(), P = R + 2 * N, V = config.vocabSize();
        float eps = config.eps();
        kernels.gatherRows(s.x.address(), embeddings.address(), s.ids.address(), L, D);
        for (int i = 0; i < layers.length; i++) {                          // x = x + Mixer(RMSNorm(x)), the add deferred to the next norm
            Layer w = layers[i];
            boolean traced = trace != null && trace.wants(i);
            kernels.addRmsnorm(s.normed.address(), D, s.x.address(), D, i == 0 ? 0 : s.hidden.address(), D, w.norm().address(), L, D, eps);
            kernels.linear(s.xz.address(), 2 * E, s.normed.address(), D, L, w.inProj());
            if (w.inProjBias() != null) kernels.biasActivation(s.xz.address(), w.inProjBias().address(), L, 2 * E, false);
            long window = K > 1 ? state.convWindow.at((long) i * (K - 1) * E) : 0;
            kernels.causalConvSilu(s.u.address(), traced ? s.convOut.address() : 0, s.xz.address(), 2 * E, w.convTaps().address(),
                    address(w.convBias()), window, 1, L, E, K, false);
            kernels.linear(s.dbc.address(), P, s.u.address(), E, L, w.xProj());
            kernels.linear(s.dt.address(), E, s.dbc.address(), P, L, w.dtProj());        // reads δr, the first R columns
            kernels.selectiveScan(new ScanArgs(s.y.address(), E, s.u.address(), E, s.dt.address(), E, w.dtBias().address(),
                    s.dbc.at(R), P, s.xz.at(E), 2 * E, w.a().address(), w.d().address(), state.ssm.at((long) i * E * N),
                    traced ? s.delta.address() : 0, window, s.xz.address(), 2 * E, K), 1, L, E, N, false, false);
            kernels.linear(s.hidden.address(), D, s.y.address(), E, L, w.outProj());
            if (w.outProjBias() != null) kernels.biasActivation(s.hidden.address(), w.outProjBias().address(), L, D, false);
            if (traced) record(trace, i, s, L);
        }
        long row = (long) firstRow * D;
        kernels.addRmsnorm(s.normed.at(row), D, s.x.at(row), D, s.hidden.at(row), D, normF.address(), rows, D, eps);
        kernels.linear(s.logits.address(), V, s.normed.at(row), D, rows, lmHead);
    }

    private void record(TraceRecorder trace, int layer, Scratch s, int L) {
        int E = config.intermediateSize(), N = config.stateSize(), R = config.timeStepRank(), P = R + 2 * N;
        float[] xz = s.xz.download(0, L * 2 * E), dbc = s.dbc.download(0, L * P);
        float[] delta = s.delta.download(0, L * E), conv = s.convOut.download(0, L * E), u = s.u.download(0, L * E), y = s.y.download(0, L * E);
        SsmBranch b = hostBranches[layer];
        trace.record(layer, () -> MambaLayerTrace.of(TraceRecorder.Direction.FORWARD, new MixerTrace(L, E, N, delta, Matrices.columns(dbc, L, P, R, N),
                Matrices.columns(dbc, L, P, R + N, N), conv, u, Matrices.columns(xz, L, 2 * E, E, E), Matrices.columns(xz, L, 2 * E, 0, E),
                y, b.a(), b.d(), b.convTaps(), b.convBias())));
    }

    private static long address(DeviceBuffer b) {
        return b == null ? 0 : b.address();
    }

    /** Attribution's reverse pass runs on the CPU twin of this checkpoint, loaded on first use. */
    @Override
    public synchronized float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        if (cpuTwin == null) cpuTwin = MambaModel.load(dir);
        return cpuTwin.forwardWithGradients(ids, position, token, trace);
    }

    @Override
    public synchronized void close() {
        if (cpuTwin != null) cpuTwin.close();
        work.close();
        states.close();
        weights.close();
        gpu.close();
    }

    @Override
    public String toString() {
        return "Mamba on " + gpu.name() + (precision == Precision.BF16 ? " (BF16 GEMMs)" : "") + " " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(),
                "E=" + config.intermediateSize(), "N=" + config.stateSize(), "V=" + config.vocabSize()) + " from " + dir;
    }
}
