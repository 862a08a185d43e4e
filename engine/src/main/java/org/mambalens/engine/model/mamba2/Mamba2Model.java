package org.mambalens.engine.model.mamba2;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.CausalConv;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.kernels.SsdScan;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.StackedLanguageModel;
import org.mambalens.engine.tensor.Matrices;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.SsdTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Mamba-2 language model (transformers' {@code Mamba2ForCausalLM}), read top to bottom: weights, state,
 * then the forward pass. Each block is x + Mixer(RMSNorm(x)) as in Mamba-1; the mixer projects once into
 * the gate z, the conv input x·B·C and one Δ per head, runs a causal conv and SiLU over x·B·C, the SSD
 * recurrence with a scalar decay per head (B and C shared by the heads of a group), the gated RMSNorm
 * RMSNorm(y ⊙ silu(z)) over all E channels (transformers normalises the whole width even with several
 * groups), and out_proj.
 *
 * <p>Shapes: L tokens, D = hidden, E = H·P inner, G groups, N state, K conv taps, V vocab, W = E + 2·G·N.
 */
public final class Mamba2Model extends StackedLanguageModel {

    /** One block's weights. Tensors are mapped views; float[] are small and widened at load. */
    record Layer(float[] norm,          // [D]
                 Tensor inProj,         // [E + W + H, D]
                 float[] inProjBias,    // or null
                 float[] convTaps,      // [K, W] conv1d.weight [W, 1, K] transposed
                 float[] convBias,      // [W] or null
                 float[] dtBias,        // [H]
                 float[] a,             // [H]  A = −exp(A_log)
                 float[] d,             // [H]
                 float[] gateNorm,      // [E]
                 Tensor outProj,        // [D, E]
                 float[] outProjBias) { // [D] or null
    }

    /** Per layer: the last K−1 conv inputs [K−1, W] and the SSM state [H, P, N]. */
    public static final class State implements LanguageModel.State {
        final float[][] convWindow, ssm;
        int position;

        State(Mamba2Config c) {
            convWindow = new float[c.layers()][(c.convKernel() - 1) * c.convChannels()];
            ssm = new float[c.layers()][c.heads() * c.headDim() * c.stateSize()];
        }

        @Override
        public int position() {
            return position;
        }
    }

    private final Path dir;
    private final Mamba2Config config;
    private final Tensor embeddings;   // [V, D]
    private final Layer[] layers;
    private final float[] normF;       // [D]

    private Mamba2Model(Path dir, Mamba2Config c, Checkpoint ck) {
        int V = c.vocabSize(), D = c.hiddenSize();
        Tensor embeddings = ck.tensor("backbone.embeddings.weight", V, D);
        super(ck, V, c.tieWordEmbeddings() || !ck.has("lm_head.weight") ? embeddings : ck.tensor("lm_head.weight", V, D), D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
        this.embeddings = embeddings;
        normF = ck.tensor("backbone.norm_f.weight", D).toFloatArray();
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) layers[i] = loadLayer("backbone.layers." + i + ".");
    }

    private Layer loadLayer(String p) {
        Mamba2Config c = config;
        int D = c.hiddenSize(), E = c.intermediateSize(), H = c.heads(), W = c.convChannels(), K = c.convKernel();
        float[] conv = checkpoint.tensor(p + "mixer.conv1d.weight", W, 1, K).toFloatArray();
        float[] taps = new float[K * W];
        for (int ch = 0; ch < W; ch++) for (int k = 0; k < K; k++) taps[k * W + ch] = conv[ch * K + k];
        float[] a = checkpoint.tensor(p + "mixer.A_log", H).toFloatArray();
        for (int h = 0; h < H; h++) a[h] = (float) -Math.exp(a[h]);
        return new Layer(checkpoint.tensor(p + "norm.weight", D).toFloatArray(),
                checkpoint.tensor(p + "mixer.in_proj.weight", c.projectionSize(), D),
                c.useBias() ? checkpoint.tensor(p + "mixer.in_proj.bias", c.projectionSize()).toFloatArray() : null,
                taps,
                c.useConvBias() ? checkpoint.tensor(p + "mixer.conv1d.bias", W).toFloatArray() : null,
                checkpoint.tensor(p + "mixer.dt_bias", H).toFloatArray(),
                a,
                checkpoint.tensor(p + "mixer.D", H).toFloatArray(),
                checkpoint.tensor(p + "mixer.norm.weight", E).toFloatArray(),
                checkpoint.tensor(p + "mixer.out_proj.weight", D, E),
                c.useBias() ? checkpoint.tensor(p + "mixer.out_proj.bias", D).toFloatArray() : null);
    }

    public static Mamba2Model load(Path dir) {
        Mamba2Config config = Mamba2Config.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> new Mamba2Model(dir, config, ck));
    }

    public Mamba2Config config() {
        return config;
    }

    @Override
    public State newState() {
        return new State(config);
    }

    /** RMSNorm_f of the residual stream after every block, [L, D], advancing {@code state} by L tokens. */
    @Override
    protected float[] hidden(int[] ids, LanguageModel.State s, TraceRecorder trace) {
        State state = (State) s;
        int L = ids.length, D = config.hiddenSize();
        float[] x = embed(embeddings, ids);                                // residual stream [L, D], F32
        float[] xn = new float[L * D];
        for (int i = 0; i < layers.length; i++) {
            Elementwise.rmsnorm(xn, x, layers[i].norm(), config.eps(), L, D);
            Elementwise.addInPlace(x, mixer(i, xn, L, state, trace), L * D);   // x + Mixer(RMSNorm(x))
        }
        Elementwise.rmsnorm(xn, x, normF, config.eps(), L, D);
        state.position += L;
        return xn;
    }

    /** The Mamba-2 mixer for L tokens, continuing from and updating layer i's conv window and SSM state. */
    private float[] mixer(int i, float[] v, int L, State state, TraceRecorder trace) {
        Layer w = layers[i];
        int D = config.hiddenSize(), E = config.intermediateSize(), H = config.heads(), P = config.headDim(),
                G = config.groups(), N = config.stateSize(), W = config.convChannels(), R = config.projectionSize();
        float[] proj = new float[L * R];                                   // [L, R]: z = [0, E), x·B·C = [E, E+W), dt = [E+W, R)
        MatMul.matmul(proj, 0, R, v, 0, D, L, w.inProj(), w.inProjBias());
        float[] xbc = new float[L * W];                                    // silu(conv(x·B·C)) [L, W]
        CausalConv.apply(xbc, proj, E, R, w.convTaps(), w.convBias(), state.convWindow[i], L, W, config.convKernel());
        float[] convOut = trace != null && trace.wants(i) ? xbc.clone() : null;
        Elementwise.silu(xbc, 0, W, xbc, 0, W, L, W);
        float[] delta = new float[L * H];                                  // Δ = clamp(softplus(dt + dt_bias)) [L, H]
        for (int t = 0; t < L; t++) {
            for (int h = 0; h < H; h++) {
                float dt = proj[t * R + E + W + h] + w.dtBias()[h];
                delta[t * H + h] = (float) Math.min(config.dtMax(), Math.max(config.dtMin(), dt > 20f ? dt : Math.log1p(Math.exp(dt))));
            }
        }
        float[] y = new float[L * E];                                      // SSD(x) + D·x [L, E]
        SsdScan.scan(y, new SsdScan.Inputs(xbc, W, 0, E, E + G * N, delta), w.a(), w.d(), state.ssm[i], L, H, P, G, N);
        float[] gated = new float[L * E];                                  // RMSNorm(y ⊙ silu(z)) over all E channels
        Elementwise.silu(gated, 0, E, proj, 0, R, L, E);
        for (int k = 0; k < gated.length; k++) gated[k] *= y[k];
        Elementwise.rmsnorm(gated, gated, w.gateNorm(), config.eps(), L, E);
        if (convOut != null) {
            int K = config.convKernel();
            float[] taps = new float[K * E];
            for (int k = 0; k < K; k++) System.arraycopy(w.convTaps(), k * W, taps, k * E, E);
            var conv = new SsdTrace.Conv(Matrices.columns(proj, L, R, E, E), Matrices.columns(convOut, L, W, 0, E), taps,
                    w.convBias() == null ? null : Arrays.copyOf(w.convBias(), E), K);
            trace.record(i, () -> new SsdTrace(L, H, P, G, N, delta.clone(), Matrices.columns(xbc, L, W, E, G * N),
                    Matrices.columns(xbc, L, W, E + G * N, G * N), Matrices.columns(xbc, L, W, 0, E), Matrices.columns(proj, L, R, 0, E),
                    y.clone(), w.a(), w.d(), conv, new SsdTrace.Norm(w.gateNorm(), config.eps(), gated.clone())));
        }
        float[] out = new float[L * D];
        MatMul.matmul(out, 0, D, gated, 0, E, L, w.outProj(), w.outProjBias());
        return out;
    }

    @Override
    public String toString() {
        return "Mamba-2 " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "H=" + config.heads(),
                "P=" + config.headDim(), "G=" + config.groups(), "N=" + config.stateSize(), "K=" + config.convKernel(),
                "V=" + config.vocabSize()) + " from " + dir;
    }
}
