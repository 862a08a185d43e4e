package org.mambalens.engine.model.griffin;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Backend.KeyValueRing;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.RgLru;
import org.mambalens.engine.kernels.Rotary;
import org.mambalens.engine.kernels.Scalar;
import org.mambalens.engine.model.BackendLanguageModel;
import org.mambalens.engine.model.SequenceClassification;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.mambalens.engine.backend.CpuBackend.array;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/**
 * Griffin / RecurrentGemma language model (transformers' {@code RecurrentGemmaForCausalLM}, or the model and
 * score of our {@code RecurrentGemmaForSequenceClassification}, DESIGN §2.4), read top to bottom: weights, state,
 * then the forward pass, written once over a {@link Backend} (the CPU's Vector API kernels or a CUDA GPU).
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
 *   logits = cap · tanh(embedᵀ·RMSNorm(x) / cap)      (a classifier: score·RMSNorm(x), no cap)
 * </pre>
 * Shapes: L new tokens, P positions before them, D = hidden, W = lru_width, H heads and KV key/value heads
 * of dh, M = intermediate_size / 2, K conv taps, V = vocab, O = outputs (V, or a classifier's labels).
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
    private final float softCap;                // the LM head's logits_soft_cap (0: none); a classifier's score has none
    private final Buffer inverseFrequencies;    // [rotaryDims / 2]

    private GriffinModel(Path dir, GriffinConfig c, SequenceClassification classifier, Checkpoint ck, Backend backend) {
        int V = c.vocabSize(), D = c.hiddenSize();
        Tensor table = ck.tensor("model.embed_tokens.weight", V, D);
        Tensor head = classifier != null ? classifier.score(ck, D) : ck.has("lm_head.weight") ? ck.tensor("lm_head.weight", V, D) : table;
        super(ck, backend, backend.table(table, V, D), backend.matrix(head, head.dim(0), D), classifier, V, D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
        softCap = classifier != null ? 0 : c.logitsSoftCap();
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

    /** A RecurrentGemmaForCausalLM, or the model and score of a RecurrentGemmaForSequenceClassification, on {@code backend}. */
    public static GriffinModel load(Path dir, Backend backend) {
        ConfigFile file = ConfigFile.in(dir);
        GriffinConfig config = GriffinConfig.from(file);
        SequenceClassification classifier = SequenceClassification.from(file);
        return Checkpoint.openFor(dir, ck -> backend.call(() -> new GriffinModel(dir, config, classifier, ck, backend)));
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

    /** The embeddings times the normalizer √D. */
    @Override
    protected void embed(Buffer x, int[] ids) {
        super.embed(x, ids);
        backend.scale(x, normalizer, (long) ids.length * config.hiddenSize());
    }

    /**
     * The blocks over the L embedded tokens in x [L, D] (the residual stream), continuing from and updating
     * {@code state}, then the final RMSNorm, the head and the soft cap for rows [firstRow, firstRow + rows) into
     * logits [rows, O]. Each block's adds are deferred into the next norm. Hidden states as transformers'
     * RecurrentGemmaModel returns them: the stream entering each layer (the first: embeddings times √D), then final_norm's output.
     */
    @Override
    protected void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, Buffer logits, int firstRow, int rows) {
        blocks(f, x, L, state, trace, null, logits, firstRow, rows);
    }

    /**
     * As {@link #blocks(Backend.Frame, Buffer, int, State, TraceRecorder, Buffer, int, int)}; when {@code streams} is given,
     * streams[2i] receives the residual stream entering layer i, streams[2i + 1] the stream between its temporal block
     * and its MLP, and streams[2·layers] the last (valid in rows [firstRow, firstRow + rows) only).
     */
    private void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, float[][] streams, Buffer logits, int firstRow, int rows) {
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
            recordHiddenState(trace, i == 0 ? "embeddings" : "layer " + (i - 1), x, L);
            if (streams != null) streams[2 * i] = backend.read(x, L * D);
            if (w.recurrent() != null) recurrent(i, w.recurrent(), s, L, state, trace);
            else attention(f, i, w.attention(), s, L, state, trace);
            backend.addRmsnorm(s.normed(), D, x, D, s.hidden(), D, w.channelNorm(), L, D, eps);
            if (streams != null) streams[2 * i + 1] = backend.read(x, L * D);
            mlp(w, s, L);
        }
        long from = (long) firstRow * D;
        backend.addRmsnorm(s.normed().at(from), D, x.at(from), D, s.hidden().at(from), D, finalNorm, rows, D, eps);
        recordHiddenState(trace, "layer " + (layers.length - 1) + " and final_norm", s.normed(), L);
        if (streams != null) streams[2 * layers.length] = backend.read(x, L * D);
        backend.linear(logits, outputs(), s.normed().at(from), D, rows, head, null);
        if (softCap > 0) backend.softCap(logits, softCap, (long) rows * outputs());
    }

    /** hidden = linear_out(RG-LRU(conv(linear_x(normed))) ⊙ gelu(linear_y(normed))) for L tokens, [L, D]. */
    private void recurrent(int index, Recurrent r, Scratch s, int L, State state, TraceRecorder trace) {
        int D = config.hiddenSize(), W = config.lruWidth(), K = config.convWidth(), P = state.position();
        Buffer gate = s.first(), xb = s.second(), x = s.convolved(), h = s.lru();    // [L, W] each
        backend.linear(gate, W, s.normed(), D, L, r.linearY(), r.linearYB());
        backend.biasActivation(gate, null, L, W, Backend.Activation.GELU_TANH);
        backend.linear(xb, W, s.normed(), D, L, r.linearX(), r.linearXB());
        Buffer window = state.conv[index];
        backend.causalConvAndRoll(x, null, xb, W, r.convTaps(), r.convB(), window, L, W, K, false);
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

    /**
     * The reverse pass from the logit of {@code token} at {@code position}: records, for each wanted layer, the gradient
     * with respect to the residual stream entering it [L, D], and the input gradient with respect to the embeddings as
     * transformers takes them ({@code inputs_embeds}, before the normaliser, so √D times layer 0's) [L, D]. The forward
     * is traced as {@link #forward} traces it; layers are recomputed one at a time from their saved inputs on the way
     * back, by the forward's own kernels on the CPU. Returns that position's logits [O]. On a GPU the whole pass runs on
     * this checkpoint's CPU view.
     */
    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        checkExplained(ids, position, token);
        if (backend.isGpu()) return cpuView(cpu -> new GriffinModel(dir, config, classifier, checkpoint, cpu)).forwardWithGradients(ids, position, token, trace);
        int L = ids.length, D = config.hiddenSize();
        float[][] streams = new float[2 * layers.length + 1][];
        float[] x = new float[L * D], logits = new float[outputs()];
        embed(wrap(x), ids);
        try (Backend.Frame frame = backend.frame()) {
            blocks(frame, wrap(x), L, new State(backend, config), trace, streams, wrap(logits), position, 1);
        }

        float[] dLogit = {1f};                                             // logit = cap·tanh(z/cap), z = head·RMSNorm(x)[position]
        if (softCap > 0) Backward.softCap(dLogit, dLogit, new float[]{logits[token]}, softCap, 1);
        Tensor headWeight = CpuBackend.tensor(head);
        float[] dOut = new float[D], dRow = new float[D];
        for (int j = 0; j < D; j++) dOut[j] = dLogit[0] * headWeight.getFloat((long) token * D + j);
        Backward.rmsnorm(dRow, dOut, Arrays.copyOfRange(streams[2 * layers.length], position * D, (position + 1) * D), array(finalNorm),
                config.eps(), 1, D);
        float[] grad = new float[L * D];                                   // ∂logit/∂(stream after the last layer)
        System.arraycopy(dRow, 0, grad, position * D, D);
        for (int i = layers.length - 1; i >= 0; i--) {
            grad = layerBackward(layers[i], streams[2 * i], streams[2 * i + 1], grad, L);
            trace.recordResidualGradient(i, grad::clone);
            streams[2 * i + 1] = streams[2 * i + 2] = null;
        }
        Elementwise.scale(grad, 0, grad, 0, normalizer, L * D);            // x = normalizer·inputs_embeds
        trace.recordInputGradient(grad);
        return logits;
    }

    /**
     * One block backwards: from ∂/∂(its output stream) [L, D] to ∂/∂(its input x) [L, D], where
     * mid = x + Temporal(RMSNorm_t(x)) and out = mid + MLP(RMSNorm_c(mid)), both recomputed from x and mid.
     */
    private float[] layerBackward(Layer w, float[] x, float[] mid, float[] dOutStream, int L) {
        int D = config.hiddenSize();
        float eps = config.eps();
        float[] normed = new float[L * D], dNormed, dNorm = new float[L * D];
        backend.rmsnorm(wrap(normed), wrap(mid), w.channelNorm(), L, D, eps);
        dNormed = mlpBackward(w, normed, dOutStream, L);
        Backward.rmsnorm(dNorm, dNormed, mid, array(w.channelNorm()), eps, L, D);
        float[] dMid = dNorm.clone();
        Elementwise.addInPlace(dMid, dOutStream, L * D);                   // out = mid + MLP(·)

        backend.rmsnorm(wrap(normed), wrap(x), w.temporalNorm(), L, D, eps);
        dNormed = w.recurrent() != null ? recurrentBackward(w.recurrent(), normed, dMid, L) : attentionBackward(w.attention(), normed, dMid, L);
        Backward.rmsnorm(dNorm, dNormed, x, array(w.temporalNorm()), eps, L, D);
        Elementwise.addInPlace(dNorm, dMid, L * D);                        // mid = x + Temporal(·)
        return dNorm;
    }

    /** ∂/∂normed [L, D] of hidden = down(gelu(gate(normed)) ⊙ up(normed)), from ∂/∂hidden [L, D]. */
    private float[] mlpBackward(Layer w, float[] normed, float[] dHidden, int L) {
        int M = config.mlpWidth();
        float[] gatePre = linear(normed, w.gate(), w.gateB(), M, L), up = linear(normed, w.up(), w.upB(), M, L);   // [L, M] each
        float[] gate = gatePre.clone();
        Elementwise.geluTanh(gate, 0, L * M);
        float[] dProduct = linearBackward(dHidden, w.down(), L);          // ∂/∂(gelu(gate) ⊙ up) [L, M]
        float[] dUp = new float[L * M], dGate = new float[L * M];
        for (int k = 0; k < L * M; k++) {
            dUp[k] = dProduct[k] * gate[k];
            dGate[k] = dProduct[k] * up[k];
        }
        Backward.geluTanh(dGate, dGate, gatePre, L * M);
        float[] dNormed = linearBackward(dGate, w.gate(), L);
        Elementwise.addInPlace(dNormed, linearBackward(dUp, w.up(), L), dNormed.length);
        return dNormed;
    }

    /**
     * ∂/∂normed [L, D] of hidden = linear_out(RG-LRU(conv(linear_x(normed))) ⊙ gelu(linear_y(normed))), from
     * ∂/∂hidden [L, D]; the branch recomputed from normed.
     */
    private float[] recurrentBackward(Recurrent r, float[] normed, float[] dHidden, int L) {
        int W = config.lruWidth(), K = config.convWidth();
        float[] yPre = linear(normed, r.linearY(), r.linearYB(), W, L), gate = yPre.clone();       // [L, W] each
        Elementwise.geluTanh(gate, 0, L * W);
        float[] xb = linear(normed, r.linearX(), r.linearXB(), W, L), x = new float[L * W], h = new float[L * W];
        backend.causalConv(wrap(x), null, wrap(xb), W, r.convTaps(), r.convB(), null, 1, L, W, K, false, false);
        backend.rgLru(wrap(h), wrap(x), W, r.lru(), null, null, null, L, W, config.heads(), 0);

        float[] dGated = linearBackward(dHidden, r.linearOut(), L);       // ∂/∂(h ⊙ gate) [L, W]
        float[] dH = new float[L * W], dGate = new float[L * W];
        for (int k = 0; k < L * W; k++) {
            dH[k] = dGated[k] * gate[k];
            dGate[k] = dGated[k] * h[k];
        }
        Backward.geluTanh(dGate, dGate, yPre, L * W);
        float[] dX = new float[L * W], dXb = new float[L * W];
        Backend.RgLruWeights lru = r.lru();
        Backward.rgLru(dX, dH, x, new RgLru.Weights(array(lru.inputGate()), array(lru.inputGateBias()), array(lru.recurrentGate()),
                array(lru.recurrentGateBias()), array(lru.softplusLambda())), L, W, config.blockWidth());
        Backward.causalConv(dXb, 0, W, dX, array(r.convTaps()), L, W, K);
        float[] dNormed = linearBackward(dGate, r.linearY(), L);
        Elementwise.addInPlace(dNormed, linearBackward(dXb, r.linearX(), L), dNormed.length);
        return dNormed;
    }

    /**
     * ∂/∂normed [L, D] of local attention hidden = o_proj(concat_h(A_h·v_g)), A_h = softmax(rot(q_h)·rot(k_g)ᵀ/√dh)
     * over the window, from ∂/∂hidden [L, D]; q, k, v and A recomputed from normed. The rotations' reverse turns
     * ∂q and ∂k by the negative angles.
     */
    private float[] attentionBackward(LocalAttention w, float[] normed, float[] dHidden, int L) {
        int D = config.hiddenSize(), H = config.heads(), KV = config.kvHeads(), dh = config.headDim();
        int q = H * dh, kv = KV * dh, ld = q + 2 * kv;
        float scale = (float) (1 / Math.sqrt(dh));
        float[] qkv = linear(normed, w.qkv(), w.qkvB(), ld, L), context = new float[L * q], probs = new float[H * L * L];
        backend.rotary(wrap(qkv), ld, L, H, dh, inverseFrequencies, config.rotaryDims(), 0);
        backend.rotary(wrap(qkv).at(q), ld, L, KV, dh, inverseFrequencies, config.rotaryDims(), 0);
        backend.slidingWindowAttention(wrap(context), q, wrap(qkv), ld, wrap(qkv).at(q), wrap(qkv).at(q + kv), ld, null, 0, L, H, KV, dh,
                config.window(), scale, wrap(probs));

        float[] dContext = linearBackward(dHidden, w.o(), L), dqkv = new float[L * ld];
        Backward.attention(dqkv, dContext, qkv, ld, 0, q, q + kv, probs, L, H, KV, dh, scale);
        float[] frequencies = array(inverseFrequencies), cos = new float[frequencies.length], sin = new float[frequencies.length];
        for (int t = 0; t < L; t++) {
            Rotary.angles(cos, sin, t, frequencies, -1);                   // the transposed turn of position t
            for (int h = 0; h < H + KV; h++) Rotary.rotate(dqkv, t * ld + h * dh, cos, sin);   // the H query heads, then the KV key heads
        }
        return linearBackward(dqkv, w.qkv(), L);
    }

    /** out [L, n] = in [L, D]·Wᵀ + b on the CPU. */
    private float[] linear(float[] in, Matrix w, Buffer bias, int n, int L) {
        float[] out = new float[L * n];
        backend.linear(wrap(out), n, wrap(in), config.hiddenSize(), L, w, bias);
        return out;
    }

    /** dX [L, in] = dY [L, out]·W, for a weight of one tensor or stacked from several (q, k and v): each part's share summed. */
    private static float[] linearBackward(float[] dy, Matrix w, int L) {
        float[] dx = new float[L * w.cols()];
        int column = 0;
        for (Tensor part : ((CpuBackend.TensorMatrix) w).parts()) {
            int n = part.dim(0);
            float[] dPart = new float[L * n], dxPart = new float[L * w.cols()];
            for (int t = 0; t < L; t++) System.arraycopy(dy, t * w.rows() + column, dPart, t * n, n);
            Backward.linear(dxPart, dPart, L, part);
            Elementwise.addInPlace(dx, dxPart, dx.length);
            column += n;
        }
        return dx;
    }

    @Override
    public String toString() {
        return "Griffin " + Arrays.asList(config.layers() + " layers " + config.blockTypes(), "D=" + config.hiddenSize(), "W=" + config.lruWidth(),
                "H=" + config.heads(), "KV=" + config.kvHeads(), "window=" + config.window(), "M=" + config.mlpWidth(),
                "V=" + config.vocabSize(), headName()) + (backend.isGpu() ? " on " + backend : "") + " from " + dir;
    }
}
