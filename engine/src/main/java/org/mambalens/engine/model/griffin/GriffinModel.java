package org.mambalens.engine.model.griffin;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Backend.KeyValueRing;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Scalar;
import org.mambalens.engine.model.BackendLanguageModel;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Griffin / RecurrentGemma language model (transformers' {@code RecurrentGemmaForCausalLM}), read top to
 * bottom: weights, state, then the forward pass, written once over a {@link Backend} (the CPU's Vector API
 * kernels or a CUDA GPU).
 * <pre>
 *   x = embed(ids) · √D                      (√D rounded to bfloat16, as transformers' normalizer buffer)
 *   each block:  x += Temporal(RMSNorm(x)),  x += MLP(RMSNorm(x)),    RMSNorm(x) = x / rms(x) ⊙ (1 + w)
 *   Temporal:    a recurrent block or local attention, block_types repeated over the layers
 *   recurrent:   linear_out(RG-LRU(conv(linear_x(x))) ⊙ gelu(linear_y(x)))
 *   RG-LRU:      r_t = σ(W_a·x_t + b_a), i_t = σ(W_x·x_t + b_x)   (block-diagonal: H blocks of W/H channels)
 *                log a_t = −8·r_t·softplus(Λ),  h_t = a_t ⊙ h_{t−1} + √(1 − a_t²) ⊙ i_t ⊙ x_t
 *                (position 0 resets: h_0 = i_0 ⊙ x_0)
 *   attention:   multi-query softmax attention, rotary on the first dims of each head; each token sees
 *                itself and the window − 1 tokens before it
 *   MLP:         down(gelu(gate(x)) ⊙ up(x)),   gelu the tanh approximation throughout
 *   logits = cap · tanh(embedᵀ·RMSNorm(x) / cap)
 * </pre>
 * Shapes: L new tokens, P positions before them, D = hidden, W = lru_width, H heads and KV key/value heads
 * of dh, M = intermediate_size / 2, K conv taps, V = vocab.
 */
public final class GriffinModel extends BackendLanguageModel<GriffinModel.State> {

    /** A recurrent block's weights. */
    record Recurrent(Matrix linearX, Buffer linearXB, Matrix linearY, Buffer linearYB,   // [W, D], [W] each
                     Buffer convTaps, Buffer convB,                                      // [K, W] (tap-major), [W]
                     Backend.RgLruWeights lru,                                           // gates [H, W/H in, W/H out], [W]; softplus(Λ) [W]
                     Matrix linearOut, Buffer linearOutB) {                              // [D, W], [D]
    }

    /** A local-attention block's weights: q, k and v stacked [(H + 2·KV)·dh, D] (their biases null unless attention_bias). */
    record LocalAttention(Matrix qkv, Buffer qkvB, Matrix o, Buffer oB) {   // o [D, H·dh], [D]
    }

    /** One residual block: exactly one of recurrent and attention is set. Norm weights are stored as 1 + w. */
    record Layer(Buffer temporalNorm, Recurrent recurrent, LocalAttention attention, Buffer channelNorm,
                 Matrix gate, Buffer gateB, Matrix up, Buffer upB, Matrix down, Buffer downB) {   // [M, D] ×2, [D, M]
    }

    /**
     * Per recurrent layer, the last K−1 conv inputs [K−1, W] and the RG-LRU state h [W]; per attention layer, the
     * keys and values of the last {@code window} positions [window, KV·dh], position p at row p mod window; all
     * in the backend's memory.
     */
    public static final class State extends DecodeState {
        final Buffer[] conv, h;
        final KeyValueRing[] rings;

        State(Backend backend, GriffinConfig c) {
            int n = c.layers(), W = c.lruWidth(), kv = c.kvHeads() * c.headDim();
            conv = new Buffer[n];
            h = new Buffer[n];
            rings = new KeyValueRing[n];
            for (int i = 0; i < n; i++) {
                if (c.isAttention(i)) {
                    rings[i] = new KeyValueRing(backend.allocate((long) c.window() * kv), backend.allocate((long) c.window() * kv), c.window());
                } else {
                    conv[i] = backend.allocate((long) Math.max(1, c.convWidth() - 1) * W);
                    h[i] = backend.allocate(W);
                }
            }
        }

        /** The rings need no clearing: a sequence's first chunk reads none of them. */
        @Override
        protected void clear(Backend backend) {
            for (int i = 0; i < conv.length; i++) {
                if (conv[i] != null) backend.fill(conv[i], conv[i].size(), 0f);
                if (h[i] != null) backend.fill(h[i], h[i].size(), 0f);
            }
        }
    }

    private final Path dir;
    private final GriffinConfig config;
    private final float normalizer;             // √D in bfloat16
    private final Layer[] layers;
    private final Buffer finalNorm;             // [D], 1 + w
    private final Matrix head;                  // [V, D]: lm_head, or the embeddings when tied
    private final Buffer inverseFrequencies;    // [rotaryDims / 2]

    private GriffinModel(Path dir, GriffinConfig c, Checkpoint ck, Backend backend) {
        int V = c.vocabSize(), D = c.hiddenSize();
        Tensor table = ck.tensor("model.embed_tokens.weight", V, D);
        super(ck, backend, backend.table(table, V, D), V, D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
        head = backend.matrix(ck.has("lm_head.weight") ? ck.tensor("lm_head.weight", V, D) : table, V, D);
        normalizer = Scalar.roundToBfloat16((float) Math.sqrt(D));
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) layers[i] = loadLayer(i, "model.layers." + i + ".");
        finalNorm = norm("model.final_norm.weight");
        int half = c.rotaryDims() / 2;
        float[] frequencies = new float[half];
        for (int j = 0; j < half; j++) frequencies[j] = (float) (1 / Math.pow(c.ropeTheta(), (float) (2 * j) / c.rotaryDims()));
        inverseFrequencies = backend.constant(frequencies);
    }

    private Layer loadLayer(int i, String p) {
        int D = config.hiddenSize(), W = config.lruWidth(), M = config.mlpWidth(), K = config.convWidth();
        int H = config.heads(), bw = config.blockWidth(), q = H * config.headDim(), kv = config.kvHeads() * config.headDim();
        String t = p + "temporal_block.";
        Recurrent recurrent = null;
        LocalAttention attention = null;
        if (config.isAttention(i)) {
            Buffer bias = null;
            if (checkpoint.has(t + "q_proj.bias")) {
                float[] b = new float[q + 2 * kv];
                System.arraycopy(floats(t + "q_proj.bias", q), 0, b, 0, q);
                System.arraycopy(floats(t + "k_proj.bias", kv), 0, b, q, kv);
                System.arraycopy(floats(t + "v_proj.bias", kv), 0, b, q + kv, kv);
                bias = backend.constant(b);
            }
            attention = new LocalAttention(backend.stack(D, checkpoint.tensor(t + "q_proj.weight", q, D),
                    checkpoint.tensor(t + "k_proj.weight", kv, D), checkpoint.tensor(t + "v_proj.weight", kv, D)), bias,
                    matrix(t + "o_proj.weight", D, q), vector(t + "o_proj.bias", D));
        } else {
            float[] conv = checkpoint.tensor(t + "conv_1d.weight", W, 1, K).toFloatArray(), taps = new float[K * W];
            for (int c = 0; c < W; c++) for (int k = 0; k < K; k++) taps[k * W + c] = conv[c * K + k];
            float[] lambda = floats(t + "rg_lru.recurrent_param", W);
            for (int c = 0; c < W; c++) lambda[c] = Scalar.softplus(lambda[c]);
            recurrent = new Recurrent(matrix(t + "linear_x.weight", W, D), vector(t + "linear_x.bias", W),
                    matrix(t + "linear_y.weight", W, D), vector(t + "linear_y.bias", W), backend.constant(taps), vector(t + "conv_1d.bias", W),
                    new Backend.RgLruWeights(backend.constant(checkpoint.tensor(t + "rg_lru.input_gate_weight", H, bw, bw).toFloatArray()),
                            backend.constant(checkpoint.tensor(t + "rg_lru.input_gate_bias", H, bw).toFloatArray()),
                            backend.constant(checkpoint.tensor(t + "rg_lru.recurrent_gate_weight", H, bw, bw).toFloatArray()),
                            backend.constant(checkpoint.tensor(t + "rg_lru.recurrent_gate_bias", H, bw).toFloatArray()),
                            backend.constant(lambda)),
                    matrix(t + "linear_out.weight", D, W), vector(t + "linear_out.bias", D));
        }
        String m = p + "mlp_block.";
        return new Layer(norm(p + "temporal_pre_norm.weight"), recurrent, attention, norm(p + "channel_pre_norm.weight"),
                matrix(m + "gate_proj.weight", M, D), vector(m + "gate_proj.bias", M),
                matrix(m + "up_proj.weight", M, D), vector(m + "up_proj.bias", M),
                matrix(m + "down_proj.weight", D, M), vector(m + "down_proj.bias", D));
    }

    private Matrix matrix(String name, int rows, int cols) {
        return backend.matrix(checkpoint.tensor(name, rows, cols), rows, cols);
    }

    private float[] floats(String name, int n) {
        return checkpoint.tensor(name, n).toFloatArray();
    }

    private Buffer vector(String name, int n) {
        return backend.constant(floats(name, n));
    }

    /** A Gemma RMSNorm weight w as the factor 1 + w it multiplies by. */
    private Buffer norm(String name) {
        float[] w = floats(name, config.hiddenSize());
        for (int j = 0; j < w.length; j++) w[j] += 1f;
        return backend.constant(w);
    }

    /** On {@code backend}. */
    public static GriffinModel load(Path dir, Backend backend) {
        GriffinConfig config = GriffinConfig.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> backend.call(() -> new GriffinModel(dir, config, ck, backend)));
    }

    /** On the CPU. */
    public static GriffinModel load(Path dir) {
        return load(dir, CpuBackend.INSTANCE);
    }

    public GriffinConfig config() {
        return config;
    }

    /**
     * The activations of a forward pass, shared by the layers: the residual branch's output and the norm's [L, D];
     * two branches of each block (the GeLU gate and linear_x's output, q/k/v and the attention's context, the
     * MLP's gate and up projection), each as wide as the widest block needs; the conv output and the RG-LRU
     * output [L, W]; and, when traced, the RG-LRU's a and b [L, W] (null otherwise).
     */
    private record Scratch(Buffer hidden, Buffer normed, Buffer first, Buffer second, Buffer convolved, Buffer lru, Buffer a, Buffer b) {
    }

    @Override
    protected State freshState() {
        return new State(backend, config);
    }

    /** Its kernels take the position, so a GPU launches a step afresh. */
    @Override
    protected boolean stepReplays() {
        return false;
    }

    /** The embeddings times the normalizer √D. */
    @Override
    protected void embed(Buffer x, int[] ids) {
        super.embed(x, ids);
        backend.scale(x, normalizer, (long) ids.length * config.hiddenSize());
    }

    /**
     * The blocks over the L embedded tokens in x [L, D] (the residual stream), continuing from and updating
     * {@code state}, then the final RMSNorm, the head and the soft cap for rows [firstRow, firstRow + rows) into
     * logits [rows, V]. Each block's adds are deferred into the next norm.
     */
    @Override
    protected void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, Buffer logits, int firstRow, int rows) {
        int D = config.hiddenSize(), W = config.lruWidth(), M = config.mlpWidth(), dh = config.headDim();
        int q = config.heads() * dh, qkv = q + 2 * config.kvHeads() * dh;
        float eps = config.eps();
        long l = L;
        Scratch s = new Scratch(f.floats(l * D), f.floats(l * D), f.floats(l * Math.max(Math.max(W, qkv), M)),
                f.floats(l * Math.max(Math.max(W, q), M)), f.floats(l * W), f.floats(l * W),
                trace == null ? null : f.floats(l * W), trace == null ? null : f.floats(l * W));
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            backend.addRmsnorm(s.normed(), D, x, D, i == 0 ? null : s.hidden(), D, w.temporalNorm(), L, D, eps);
            if (w.recurrent() != null) recurrent(i, w.recurrent(), s, L, state, trace);
            else attention(f, i, w.attention(), s, L, state, trace);
            backend.addRmsnorm(s.normed(), D, x, D, s.hidden(), D, w.channelNorm(), L, D, eps);
            mlp(w, s, L);
        }
        long from = (long) firstRow * D;
        backend.addRmsnorm(s.normed().at(from), D, x.at(from), D, s.hidden().at(from), D, finalNorm, rows, D, eps);
        backend.linear(logits, config.vocabSize(), s.normed().at(from), D, rows, head, null);
        if (config.logitsSoftCap() > 0) backend.softCap(logits, config.logitsSoftCap(), (long) rows * config.vocabSize());
    }

    /** hidden = linear_out(RG-LRU(conv(linear_x(normed))) ⊙ gelu(linear_y(normed))) for L tokens, [L, D]. */
    private void recurrent(int index, Recurrent r, Scratch s, int L, State state, TraceRecorder trace) {
        int D = config.hiddenSize(), W = config.lruWidth(), K = config.convWidth(), P = state.position();
        Buffer gate = s.first(), xb = s.second(), x = s.convolved(), h = s.lru();    // [L, W] each
        backend.linear(gate, W, s.normed(), D, L, r.linearY(), r.linearYB());
        backend.biasActivation(gate, null, L, W, Backend.Activation.GELU_TANH);
        backend.linear(xb, W, s.normed(), D, L, r.linearX(), r.linearXB());
        Buffer window = state.conv[index];
        backend.causalConv(x, null, xb, W, r.convTaps(), r.convB(), window, 1, L, W, K, false, false);
        backend.rollWindow(window, xb, W, L, W, K);
        backend.rgLru(h, x, W, r.lru(), state.h[index], s.a(), s.b(), L, W, config.heads(), P);
        if (trace != null && P == 0) {
            int n = L * W;
            trace.record(index, () -> new LruTrace(L, W, backend.read(s.a(), n), backend.read(s.b(), n), backend.read(x, n),
                    backend.read(h, n), backend.read(gate, n), backend.read(xb, n), backend.read(r.convTaps(), K * W), backend.read(r.convB(), W)));
        }
        backend.multiply(h, gate, (long) L * W);
        backend.linear(s.hidden(), D, h, W, L, r.linearOut(), r.linearOutB());
    }

    /**
     * Local attention of L new tokens: A_h = softmax(q_h·k_gᵀ / √dh) over the last {@code window} positions
     * (key/value head g = h / (H/KV)), hidden = o_proj(concat_h(A_h·v_g)), [L, D].
     */
    private void attention(Backend.Frame f, int index, LocalAttention w, Scratch s, int L, State state, TraceRecorder trace) {
        int D = config.hiddenSize(), H = config.heads(), KV = config.kvHeads(), dh = config.headDim(), rotary = config.rotaryDims();
        int P = state.position(), q = H * dh, kv = KV * dh, ld = q + 2 * kv;
        Buffer qkv = s.first(), context = s.second();                                // [L, (H + 2·KV)·dh], [L, H·dh]
        backend.linear(qkv, ld, s.normed(), D, L, w.qkv(), w.qkvB());
        backend.rotary(qkv, ld, L, H, dh, inverseFrequencies, rotary, P);
        backend.rotary(qkv.at(q), ld, L, KV, dh, inverseFrequencies, rotary, P);
        Buffer probs = trace != null && P == 0 && trace.wants(index) ? f.floats((long) H * L * L) : null;   // [H, L, L]
        KeyValueRing ring = state.rings[index];
        backend.slidingWindowAttention(context, q, qkv, ld, qkv.at(q), qkv.at(q + kv), ld, ring, P, L, H, KV, dh, config.window(),
                (float) (1 / Math.sqrt(dh)), probs);
        backend.ringAppend(ring, qkv.at(q), qkv.at(q + kv), ld, kv, P, L);
        if (probs != null) {
            Buffer p = probs;
            trace.record(index, () -> new AttentionTrace(H, L, backend.read(p, H * L * L)));
        }
        backend.linear(s.hidden(), D, context, q, L, w.o(), w.oB());
    }

    /** hidden = down(gelu(gate(normed)) ⊙ up(normed)) for L tokens, [L, D]. */
    private void mlp(Layer w, Scratch s, int L) {
        int D = config.hiddenSize(), M = config.mlpWidth();
        Buffer g = s.first(), u = s.second();                                       // [L, M] each
        backend.linear(g, M, s.normed(), D, L, w.gate(), w.gateB());
        backend.biasActivation(g, null, L, M, Backend.Activation.GELU_TANH);
        backend.linear(u, M, s.normed(), D, L, w.up(), w.upB());
        backend.multiply(g, u, (long) L * M);
        backend.linear(s.hidden(), D, g, M, L, w.down(), w.downB());
    }

    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        throw new UnsupportedOperationException("the reverse pass (attribution) is not implemented for " + this + " yet");
    }

    @Override
    public String toString() {
        return "Griffin " + Arrays.asList(config.layers() + " layers " + config.blockTypes(), "D=" + config.hiddenSize(), "W=" + config.lruWidth(),
                "H=" + config.heads(), "KV=" + config.kvHeads(), "window=" + config.window(), "M=" + config.mlpWidth(),
                "V=" + config.vocabSize()) + (backend.isGpu() ? " on " + backend : "") + " from " + dir;
    }
}
