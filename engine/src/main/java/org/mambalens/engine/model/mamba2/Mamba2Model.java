package org.mambalens.engine.model.mamba2;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.SsdScan;
import org.mambalens.engine.model.BackendLanguageModel;
import org.mambalens.engine.model.SequenceClassification;
import org.mambalens.engine.tensor.Matrices;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.SsdTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.mambalens.engine.backend.CpuBackend.array;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/**
 * Mamba-2 language model (transformers' {@code Mamba2ForCausalLM}, or the backbone and score of our
 * {@code Mamba2ForSequenceClassification}, DESIGN §2.4), read top to bottom: weights, state,
 * then the forward pass, written once over a {@link Backend} (the CPU's Vector API kernels or a CUDA GPU).
 * Each block is x + Mixer(RMSNorm(x)) as in Mamba-1; the mixer projects once into the gate z, the conv
 * input x·B·C and one Δ per head, runs a causal conv and SiLU over x·B·C, the SSD recurrence with a
 * scalar decay per head (B and C shared by the heads of a group), the gated RMSNorm RMSNorm(y ⊙ silu(z))
 * over all E channels (transformers normalises the whole width even with several groups), and out_proj.
 *
 * <p>Shapes: L tokens, D = hidden, E = H·P inner, G groups, N state, K conv taps, V vocab, W = E + 2·G·N
 * conv channels, R = E + W + H in_proj rows, O = outputs (V, or a classifier's labels).
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

    private Mamba2Model(Path dir, Mamba2Config c, SequenceClassification classifier, Checkpoint ck, Backend backend) {
        int V = c.vocabSize(), D = c.hiddenSize();
        Tensor table = ck.tensor("backbone.embeddings.weight", V, D);
        Tensor head = classifier != null ? classifier.score(ck, D)
                : c.tieWordEmbeddings() || !ck.has("lm_head.weight") ? table : ck.tensor("lm_head.weight", V, D);
        super(ck, backend, backend.table(table, V, D), backend.matrix(head, head.dim(0), D), classifier, V, D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
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

    /** A Mamba2ForCausalLM, or the backbone and score of a Mamba2ForSequenceClassification, on {@code backend}. */
    public static Mamba2Model load(Path dir, Backend backend) {
        ConfigFile file = ConfigFile.in(dir);
        Mamba2Config config = Mamba2Config.from(file);
        SequenceClassification classifier = SequenceClassification.from(file);
        return Checkpoint.openFor(dir, ck -> new Mamba2Model(dir, config, classifier, ck, backend));
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

    @Override
    protected void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, Buffer logits, int firstRow, int rows) {
        blocks(f, x, L, state, trace, null, logits, firstRow, rows);
    }

    /**
     * The blocks over the L embedded tokens in x [L, D] (the residual stream, F32), continuing from and
     * updating {@code state}, then RMSNorm_f and the head for rows [firstRow, firstRow + rows) into
     * logits [rows, O]. Each block is x = x + Mixer(RMSNorm(x)), out_proj adding into the stream.
     * When {@code streams} is given, streams[i] receives the stream entering layer i and streams[layers] the last.
     * Hidden states as transformers' Mamba2Model returns them: each layer's output, then norm_f's.
     */
    private void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, float[][] streams,
                        Buffer logits, int firstRow, int rows) {
        int D = config.hiddenSize(), E = config.intermediateSize(), W = config.convChannels(), R = config.projectionSize();
        float eps = config.eps();
        Buffer normed = f.floats((long) L * D);                                    // RMSNorm(x) [L, D]
        Buffer proj = f.floats((long) L * R);                                      // in_proj [L, R]: z = [0, E), x·B·C = [E, E+W), dt = [E+W, R)
        Buffer xbc = f.floats((long) L * W);                                       // silu(conv(x·B·C)) [L, W]
        Buffer y = f.floats((long) L * E), gated = f.floats((long) L * E);         // SSD(x) + D·x, RMSNorm(y ⊙ silu(z)) [L, E]
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            if (i > 0) recordHiddenState(trace, "layer " + (i - 1), x, L);
            if (streams != null) streams[i] = backend.read(x, L * D);
            backend.rmsnormLinear(proj, R, x, w.norm(), eps, normed, L, D, w.inProj(), w.inProjBias());
            if (mixer(f, i, proj, xbc, y, gated, L, state, trace)) {
                backend.linearAdd(x, D, gated, E, L, w.outProj(), w.outProjBias());
            } else {                                        // the gated norm inside out_proj's product where the backend can
                backend.gatedRmsnormLinearAdd(x, D, y, E, proj, R, w.gateNorm(), eps, gated, L, E, w.outProj(), w.outProjBias());
            }
        }
        if (streams != null) streams[layers.length] = backend.read(x, L * D);
        recordHiddenState(trace, "layer " + (layers.length - 1), x, L);
        backend.rmsnorm(normed.at((long) firstRow * D), x.at((long) firstRow * D), normF, rows, D, eps);
        recordHiddenState(trace, "norm_f", normed, L);
        backend.linear(logits, outputs(), normed.at((long) firstRow * D), D, rows, head, null);
    }

    /**
     * Layer i's mixer from in_proj's output proj [L, R] to y [L, E], continuing from and updating its conv window and SSM
     * state. When the trace wants the layer, also the gated norm into gated [L, E] (out_proj's input), recorded; returns
     * whether it did.
     */
    private boolean mixer(Backend.Frame f, int i, Buffer proj, Buffer xbc, Buffer y, Buffer gated, int L, State state, TraceRecorder trace) {
        boolean traced = trace != null && trace.wants(i);
        Buffer convOut = traced ? f.floats((long) L * config.convChannels()) : null, delta = traced ? f.floats((long) L * config.heads()) : null;
        mixer(i, proj, convOut, xbc, delta, y, L, state);
        if (traced) {
            gatedNorm(i, gated, y, proj, L);
            record(trace, i, L, layers[i], proj, convOut, xbc, delta, y, gated);
        }
        return traced;
    }

    /** gated = RMSNorm(y ⊙ silu(z)) ⊙ norm [L, E], z = proj's first E columns. */
    private void gatedNorm(int i, Buffer gated, Buffer y, Buffer proj, int L) {
        int E = config.intermediateSize();
        backend.gatedRmsnorm(gated, E, y, E, proj, config.projectionSize(), layers[i].gateNorm(), L, E, config.eps());
    }

    /** The conv and the SSD scan, keeping the conv's output before the SiLU [L, W] and Δ [L, H] where those buffers are given. */
    private void mixer(int i, Buffer proj, Buffer convOut, Buffer xbc, Buffer delta, Buffer y, int L, State state) {
        Layer w = layers[i];
        Mamba2Config c = config;
        int E = c.intermediateSize(), H = c.heads(), P = c.headDim(), G = c.groups(), N = c.stateSize(), W = c.convChannels(),
                R = c.projectionSize(), K = c.convKernel();
        Buffer xbcIn = proj.at(E);
        backend.causalConvAndRoll(xbc, convOut, xbcIn, R, w.convTaps(), w.convBias(), state.convWindow[i], L, W, K, true);
        backend.ssdScan(new Backend.Ssd(y, E, xbc, W, xbc.at(E), xbc.at(E + (long) G * N), W, proj.at(E + W), R, w.dtBias(),
                (float) c.dtMin(), (float) c.dtMax(), w.a(), w.d(), state.ssm[i], delta), L, H, P, G, N);
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

    /**
     * Mamba-Attribution's gradients for a prompt (DESIGN §7): back-propagates the logit of {@code token} at
     * {@code position} and records, for each wanted layer, the gradient with respect to the residual stream
     * entering it [L, D], then the input gradient ∂logit/∂(token embeddings) [L, D]; the forward is traced as
     * {@link #forward} traces it. Layers are recomputed one at a time from their saved input on the way back.
     * Returns that position's logits [O]. On a GPU the whole pass runs on this checkpoint's CPU view.
     */
    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        checkExplained(ids, position, token);
        if (backend.isGpu()) return cpuView(cpu -> new Mamba2Model(dir, config, classifier, checkpoint, cpu)).forwardWithGradients(ids, position, token, trace);
        int L = ids.length, D = config.hiddenSize();
        float[][] streams = new float[layers.length + 1][];
        float[] logits = forwardOnCpu(ids, (f, x, len, out) -> blocks(f, x, len, freshState(), trace, streams, out, position, 1));
        float[] grad = new float[L * D];                                   // through RMSNorm_f from the head's row at the position
        Backward.rmsnorm(grad, outputGradient(token, position, L), streams[layers.length], array(normF), config.eps(), L, D);
        State recomputed = freshState();                                   // each layer's conv window and SSM state start empty again
        for (int i = layers.length - 1; i >= 0; i--) {                     // x_{i+1} = x_i + out_proj(mixer(in_proj(RMSNorm(x_i))))
            Elementwise.addInPlace(grad, layerBackward(i, streams[i], grad, recomputed), L * D);
            trace.recordResidualGradient(i, grad::clone);
            streams[i + 1] = null;
        }
        trace.recordInputGradient(grad);                                   // the embeddings are layer 0's input
        return logits;
    }

    /**
     * ∂/∂x [L, D] through layer i's branch out_proj(mixer(in_proj(RMSNorm(x)))) from its output's gradient dOut [L, D]
     * (the residual path is the caller's), the layer recomputed from its input x [L, D] by the forward's own steps.
     */
    private float[] layerBackward(int i, float[] x, float[] dOut, State state) {
        Layer w = layers[i];
        Mamba2Config c = config;
        int D = c.hiddenSize(), L = x.length / D, E = c.intermediateSize(), H = c.heads(), P = c.headDim(), G = c.groups(),
                N = c.stateSize(), W = c.convChannels(), R = c.projectionSize(), K = c.convKernel();
        float[] normed = new float[L * D], proj = new float[L * R];                         // RMSNorm(x) [L, D], in_proj [L, R]
        float[] convOut = new float[L * W], xbc = new float[L * W], delta = new float[L * H];  // conv(x·B·C), its SiLU [L, W], Δ [L, H]
        float[] y = new float[L * E];                                                        // SSD(x) + D·x [L, E]
        Elementwise.rmsnorm(normed, x, array(w.norm()), c.eps(), L, D);
        backend.linear(wrap(proj), R, wrap(normed), D, L, w.inProj(), w.inProjBias());
        mixer(i, wrap(proj), wrap(convOut), wrap(xbc), wrap(delta), wrap(y), L, state);

        float[] dGated = new float[L * E], dy = new float[L * E], dz = new float[L * E];   // out_proj, then the gated norm
        Backward.linear(dGated, dOut, L, CpuBackend.tensor(w.outProj()));
        Backward.gatedRmsnorm(dy, dz, dGated, y, Matrices.columns(proj, L, R, 0, E), array(w.gateNorm()), c.eps(), L, E);
        float[] dXbc = new float[L * W], dDelta = new float[L * H];                         // the SSD scan: dx, dB, dC and dΔ
        Backward.ssd(new Backward.SsdGradients(dXbc, dDelta), dy, new SsdScan.Inputs(xbc, W, 0, E, E + G * N, delta),
                array(w.a()), array(w.d()), L, H, P, G, N);
        float[] dConv = new float[L * W], dProj = new float[L * R];                         // SiLU and the causal conv, into x·B·C's columns
        Backward.silu(dConv, dXbc, convOut, L * W);
        Backward.causalConv(dProj, E, R, dConv, array(w.convTaps()), L, W, K);
        Matrices.putColumns(dProj, L, R, 0, dz, E);
        Matrices.putColumns(dProj, L, R, E + W, dtGradient(w, proj, dDelta, L), H);
        float[] dNormed = new float[L * D], dx = new float[L * D];                          // in_proj, then RMSNorm
        Backward.linear(dNormed, dProj, L, CpuBackend.tensor(w.inProj()));
        Backward.rmsnorm(dx, dNormed, x, array(w.norm()), c.eps(), L, D);
        return dx;
    }

    /** ∂/∂dt [L, H] from ∂/∂Δ [L, H], where Δ = clamp(softplus(dt + dt_bias), lo, hi) and dt is columns [E + W, R) of proj [L, R]. */
    private float[] dtGradient(Layer w, float[] proj, float[] dDelta, int L) {
        int H = config.heads(), n = L * H;
        float[] v = Matrices.columns(proj, L, config.projectionSize(), config.intermediateSize() + config.convChannels(), H);
        float[] bias = array(w.dtBias());
        for (int t = 0; t < L; t++) for (int h = 0; h < H; h++) v[t * H + h] += bias[h];
        float[] softplus = v.clone(), dSoftplus = new float[n], dv = new float[n];
        Elementwise.softplus(softplus, 0, n);
        Backward.clamp(dSoftplus, dDelta, softplus, config.dtMin(), config.dtMax(), n);
        Backward.softplus(dv, dSoftplus, v, n);
        return dv;
    }

    @Override
    public String toString() {
        return "Mamba-2 " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "H=" + config.heads(),
                "P=" + config.headDim(), "G=" + config.groups(), "N=" + config.stateSize(), "K=" + config.convKernel(),
                "V=" + config.vocabSize(), headName()) + (backend.isGpu() ? " on " + backend : "") + " from " + dir;
    }
}
