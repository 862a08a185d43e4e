package org.mambalens.engine.model.mamba2;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.model.BackendLanguageModel;
import org.mambalens.engine.tensor.Matrices;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.SsdTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Mamba-2 language model (transformers' {@code Mamba2ForCausalLM}), read top to bottom: weights, state,
 * then the forward pass, written once over a {@link Backend} (the CPU's Vector API kernels or a CUDA GPU).
 * Each block is x + Mixer(RMSNorm(x)) as in Mamba-1; the mixer projects once into the gate z, the conv
 * input x·B·C and one Δ per head, runs a causal conv and SiLU over x·B·C, the SSD recurrence with a
 * scalar decay per head (B and C shared by the heads of a group), the gated RMSNorm RMSNorm(y ⊙ silu(z))
 * over all E channels (transformers normalises the whole width even with several groups), and out_proj.
 *
 * <p>Shapes: L tokens, D = hidden, E = H·P inner, G groups, N state, K conv taps, V vocab, W = E + 2·G·N
 * conv channels, R = E + W + H in_proj rows.
 */
public final class Mamba2Model extends BackendLanguageModel<Mamba2Model.State> {

    /** One block's weights; optional ones are null. */
    record Layer(Buffer norm,          // [D]
                 Matrix inProj,        // [R, D]
                 Buffer inProjBias,    // [R]
                 Buffer convTaps,      // [K, W] conv1d.weight [W, 1, K] transposed
                 Buffer convBias,      // [W]
                 Buffer dtBias,        // [H]
                 Buffer a,             // [H]  A = −exp(A_log)
                 Buffer d,             // [H]
                 Buffer gateNorm,      // [E]
                 Matrix outProj,       // [D, E]
                 Buffer outProjBias) { // [D]
    }

    /** Per layer: the last K−1 conv inputs [K−1, W] and the SSM state [H, P, N], in the backend's memory. */
    public static final class State extends DecodeState {
        final Buffer[] convWindow, ssm;

        State(Backend backend, Mamba2Config c) {
            convWindow = new Buffer[c.layers()];
            ssm = new Buffer[c.layers()];
            for (int i = 0; i < c.layers(); i++) {
                convWindow[i] = backend.allocate((long) Math.max(1, c.convKernel() - 1) * c.convChannels());
                ssm[i] = backend.allocate((long) c.heads() * c.headDim() * c.stateSize());
            }
        }

        @Override
        protected void clear(Backend backend) {
            for (int i = 0; i < ssm.length; i++) {
                backend.fill(convWindow[i], convWindow[i].size(), 0f);
                backend.fill(ssm[i], ssm[i].size(), 0f);
            }
        }
    }

    private final Path dir;
    private final Mamba2Config config;
    private final Layer[] layers;
    private final Buffer normF;        // [D]
    private final Matrix head;         // [V, D]: lm_head, or the embeddings when tied

    private Mamba2Model(Path dir, Mamba2Config c, Checkpoint ck, Backend backend) {
        int V = c.vocabSize(), D = c.hiddenSize();
        Tensor table = ck.tensor("backbone.embeddings.weight", V, D);
        super(ck, backend, backend.table(table, V, D), V, D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
        head = backend.matrix(c.tieWordEmbeddings() || !ck.has("lm_head.weight") ? table : ck.tensor("lm_head.weight", V, D), V, D);
        normF = backend.constant(ck.tensor("backbone.norm_f.weight", D).toFloatArray());
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) layers[i] = loadLayer("backbone.layers." + i + ".");
    }

    private Layer loadLayer(String p) {
        Mamba2Config c = config;
        Checkpoint ck = checkpoint;
        int D = c.hiddenSize(), E = c.intermediateSize(), H = c.heads(), W = c.convChannels(), K = c.convKernel(), R = c.projectionSize();
        float[] conv = ck.tensor(p + "mixer.conv1d.weight", W, 1, K).toFloatArray();
        float[] taps = new float[K * W];
        for (int ch = 0; ch < W; ch++) for (int k = 0; k < K; k++) taps[k * W + ch] = conv[ch * K + k];
        float[] a = ck.tensor(p + "mixer.A_log", H).toFloatArray();
        for (int h = 0; h < H; h++) a[h] = (float) -Math.exp(a[h]);
        return new Layer(backend.constant(ck.tensor(p + "norm.weight", D).toFloatArray()),
                backend.matrix(ck.tensor(p + "mixer.in_proj.weight", R, D), R, D),
                c.useBias() ? backend.constant(ck.tensor(p + "mixer.in_proj.bias", R).toFloatArray()) : null,
                backend.constant(taps),
                c.useConvBias() ? backend.constant(ck.tensor(p + "mixer.conv1d.bias", W).toFloatArray()) : null,
                backend.constant(ck.tensor(p + "mixer.dt_bias", H).toFloatArray()),
                backend.constant(a),
                backend.constant(ck.tensor(p + "mixer.D", H).toFloatArray()),
                backend.constant(ck.tensor(p + "mixer.norm.weight", E).toFloatArray()),
                backend.matrix(ck.tensor(p + "mixer.out_proj.weight", D, E), D, E),
                c.useBias() ? backend.constant(ck.tensor(p + "mixer.out_proj.bias", D).toFloatArray()) : null);
    }

    /** A Mamba2ForCausalLM on {@code backend}. */
    public static Mamba2Model load(Path dir, Backend backend) {
        Mamba2Config config = Mamba2Config.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> new Mamba2Model(dir, config, ck, backend));
    }

    /** On the CPU. */
    public static Mamba2Model load(Path dir) {
        return load(dir, CpuBackend.INSTANCE);
    }

    public Mamba2Config config() {
        return config;
    }

    @Override
    protected State freshState() {
        return new State(backend, config);
    }

    /**
     * The blocks over the L embedded tokens in x [L, D] (the residual stream, F32), continuing from and
     * updating {@code state}, then RMSNorm_f and the head for rows [firstRow, firstRow + rows) into
     * logits [rows, V]. Each block is x = x + Mixer(RMSNorm(x)), the add deferred into the next norm.
     * Hidden states as transformers' Mamba2Model returns them: each layer's output, then norm_f's.
     */
    @Override
    protected void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, Buffer logits, int firstRow, int rows) {
        int D = config.hiddenSize(), E = config.intermediateSize(), W = config.convChannels(), R = config.projectionSize();
        float eps = config.eps();
        Buffer hidden = f.floats((long) L * D), normed = f.floats((long) L * D);   // mixer output, RMSNorm(x) [L, D]
        Buffer proj = f.floats((long) L * R);                                      // in_proj [L, R]: z = [0, E), x·B·C = [E, E+W), dt = [E+W, R)
        Buffer xbc = f.floats((long) L * W);                                       // silu(conv(x·B·C)) [L, W]
        Buffer y = f.floats((long) L * E), gated = f.floats((long) L * E);         // SSD(x) + D·x, RMSNorm(y ⊙ silu(z)) [L, E]
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            backend.addRmsnorm(normed, D, x, D, i == 0 ? null : hidden, D, w.norm(), L, D, eps);
            if (i > 0) recordHiddenState(trace, "layer " + (i - 1), x, L);
            backend.linear(proj, R, normed, D, L, w.inProj(), w.inProjBias());
            mixer(f, i, proj, xbc, y, gated, L, state, trace);
            backend.linear(hidden, D, gated, E, L, w.outProj(), w.outProjBias());
        }
        backend.addRmsnorm(normed.at((long) firstRow * D), D, x.at((long) firstRow * D), D, hidden.at((long) firstRow * D), D, normF, rows, D, eps);
        recordHiddenState(trace, "layer " + (layers.length - 1), x, L);
        recordHiddenState(trace, "norm_f", normed, L);
        backend.linear(logits, config.vocabSize(), normed.at((long) firstRow * D), D, rows, head, null);
    }

    /** Layer i's mixer between in_proj's output proj [L, R] and out_proj's input gated [L, E], continuing from and updating its conv window and SSM state. */
    private void mixer(Backend.Frame f, int i, Buffer proj, Buffer xbc, Buffer y, Buffer gated, int L, State state, TraceRecorder trace) {
        Layer w = layers[i];
        Mamba2Config c = config;
        int E = c.intermediateSize(), H = c.heads(), P = c.headDim(), G = c.groups(), N = c.stateSize(), W = c.convChannels(),
                R = c.projectionSize(), K = c.convKernel();
        boolean traced = trace != null && trace.wants(i);
        Buffer convOut = traced ? f.floats((long) L * W) : null, delta = traced ? f.floats((long) L * H) : null;
        Buffer xbcIn = proj.at(E);
        backend.causalConv(xbc, convOut, xbcIn, R, w.convTaps(), w.convBias(), state.convWindow[i], 1, L, W, K, false, true);
        if (K > 1) backend.rollWindow(state.convWindow[i], xbcIn, R, L, W, K);
        backend.ssdScan(new Backend.Ssd(y, E, xbc, W, xbc.at(E), xbc.at(E + (long) G * N), W, proj.at(E + W), R, w.dtBias(),
                (float) c.dtMin(), (float) c.dtMax(), w.a(), w.d(), state.ssm[i], delta), L, H, P, G, N);
        backend.gatedRmsnorm(gated, E, y, E, proj, R, w.gateNorm(), L, E, c.eps());
        if (traced) record(trace, i, L, w, proj, convOut, xbc, delta, y, gated);
    }

    /** Layer i's SsdTrace, read back from the backend (the frame's buffers are reused by the next layer). */
    private void record(TraceRecorder trace, int i, int L, Layer w, Buffer proj, Buffer convOut, Buffer xbc, Buffer delta, Buffer y, Buffer gated) {
        Mamba2Config c = config;
        int E = c.intermediateSize(), H = c.heads(), P = c.headDim(), G = c.groups(), N = c.stateSize(), W = c.convChannels(),
                R = c.projectionSize(), K = c.convKernel();
        float[] projHost = backend.read(proj, L * R), convHost = backend.read(convOut, L * W), xbcHost = backend.read(xbc, L * W);
        float[] deltaHost = backend.read(delta, L * H), yHost = backend.read(y, L * E), gatedHost = backend.read(gated, L * E);
        float[] allTaps = backend.read(w.convTaps(), K * W), taps = new float[K * E];
        for (int k = 0; k < K; k++) System.arraycopy(allTaps, k * W, taps, k * E, E);
        float[] bias = w.convBias() == null ? null : backend.read(w.convBias(), E);
        float[] a = backend.read(w.a(), H), d = backend.read(w.d(), H), norm = backend.read(w.gateNorm(), E);
        var conv = new SsdTrace.Conv(Matrices.columns(projHost, L, R, E, E), Matrices.columns(convHost, L, W, 0, E), taps, bias, K);
        trace.record(i, () -> new SsdTrace(L, H, P, G, N, deltaHost, Matrices.columns(xbcHost, L, W, E, G * N),
                Matrices.columns(xbcHost, L, W, E + G * N, G * N), Matrices.columns(xbcHost, L, W, 0, E), Matrices.columns(projHost, L, R, 0, E),
                yHost, a, d, conv, new SsdTrace.Norm(norm, c.eps(), gatedHost)));
    }

    /** A family without a reverse pass says so. */
    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        throw new UnsupportedOperationException("the reverse pass (attribution) is not implemented for " + this + " yet");
    }

    @Override
    public String toString() {
        return "Mamba-2 " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "H=" + config.heads(),
                "P=" + config.headDim(), "G=" + config.groups(), "N=" + config.stateSize(), "K=" + config.convKernel(),
                "V=" + config.vocabSize()) + (backend.isGpu() ? " on " + backend : "") + " from " + dir;
    }
}
