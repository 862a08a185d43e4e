package org.mambalens.engine.model.griffin;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.CausalConv;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.kernels.Parallel;
import org.mambalens.engine.kernels.Rotary;
import org.mambalens.engine.kernels.Scalar;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.StackedLanguageModel;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Griffin / RecurrentGemma language model (transformers' {@code RecurrentGemmaForCausalLM}), read top to
 * bottom: weights, state, then the forward pass.
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
public final class GriffinModel extends StackedLanguageModel {

    /** A recurrent block's weights. */
    record Recurrent(Tensor linearX, float[] linearXB, Tensor linearY, float[] linearYB,   // [W, D], [W] each
                     float[] convTaps, float[] convB,                                      // [K, W] (tap-major), [W]
                     float[] inputGate, float[] inputGateB,                                // [H, W/H in, W/H out], [W]
                     float[] recurrentGate, float[] recurrentGateB,                        // the same for a
                     float[] softplusLambda,                                               // [W] softplus(Λ)
                     Tensor linearOut, float[] linearOutB) {                               // [D, W], [D]
    }

    /** A local-attention block's weights; the q, k, v biases are null unless attention_bias. */
    record LocalAttention(Tensor q, float[] qB, Tensor k, float[] kB, Tensor v, float[] vB,   // [H·dh, D], [KV·dh, D] ×2
                          Tensor o, float[] oB) {                                           // [D, H·dh], [D]
    }

    /** One residual block: exactly one of recurrent and attention is set. Norm weights are stored as 1 + w. */
    record Layer(float[] temporalNorm, Recurrent recurrent, LocalAttention attention, float[] channelNorm,
                 Tensor gate, float[] gateB, Tensor up, float[] upB, Tensor down, float[] downB) {   // [M, D] ×2, [D, M]
    }

    /**
     * Per recurrent layer, the last K−1 conv inputs [K−1, W] and the RG-LRU state h [W]; per attention layer, the
     * keys and values of the last {@code window} positions [window, KV·dh], position p at row p mod window.
     */
    public static final class State implements LanguageModel.State {
        final float[][] conv, h, keys, values;
        int position;

        State(GriffinConfig c) {
            int n = c.layers(), W = c.lruWidth(), kv = c.kvHeads() * c.headDim();
            conv = new float[n][];
            h = new float[n][];
            keys = new float[n][];
            values = new float[n][];
            for (int i = 0; i < n; i++) {
                if (c.isAttention(i)) {
                    keys[i] = new float[c.window() * kv];
                    values[i] = new float[c.window() * kv];
                } else {
                    conv[i] = new float[(c.convWidth() - 1) * W];
                    h[i] = new float[W];
                }
            }
        }

        @Override
        public int position() {
            return position;
        }
    }

    private final Path dir;
    private final GriffinConfig config;
    private final Tensor embeddings;            // [V, D]
    private final float normalizer;             // √D in bfloat16
    private final Layer[] layers;
    private final float[] finalNorm;            // [D], 1 + w
    private final float[] inverseFrequencies;   // [rotaryDims / 2]

    private GriffinModel(Path dir, GriffinConfig c, Checkpoint ck) {
        int V = c.vocabSize(), D = c.hiddenSize();
        Tensor embeddings = ck.tensor("model.embed_tokens.weight", V, D);
        super(ck, V, ck.has("lm_head.weight") ? ck.tensor("lm_head.weight", V, D) : embeddings, D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
        this.embeddings = embeddings;
        this.normalizer = Scalar.roundToBfloat16((float) Math.sqrt(D));
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) layers[i] = loadLayer(i, "model.layers." + i + ".");
        finalNorm = norm("model.final_norm.weight");
        int half = c.rotaryDims() / 2;
        inverseFrequencies = new float[half];
        for (int j = 0; j < half; j++) inverseFrequencies[j] = (float) (1 / Math.pow(c.ropeTheta(), (float) (2 * j) / c.rotaryDims()));
    }

    private Layer loadLayer(int i, String p) {
        int D = config.hiddenSize(), W = config.lruWidth(), M = config.mlpWidth(), K = config.convWidth();
        int H = config.heads(), bw = config.blockWidth(), q = H * config.headDim(), kv = config.kvHeads() * config.headDim();
        String t = p + "temporal_block.";
        Recurrent recurrent = null;
        LocalAttention attention = null;
        if (config.isAttention(i)) {
            boolean bias = checkpoint.has(t + "q_proj.bias");
            attention = new LocalAttention(checkpoint.tensor(t + "q_proj.weight", q, D), bias ? vector(t + "q_proj.bias", q) : null,
                    checkpoint.tensor(t + "k_proj.weight", kv, D), bias ? vector(t + "k_proj.bias", kv) : null,
                    checkpoint.tensor(t + "v_proj.weight", kv, D), bias ? vector(t + "v_proj.bias", kv) : null,
                    checkpoint.tensor(t + "o_proj.weight", D, q), vector(t + "o_proj.bias", D));
        } else {
            float[] conv = checkpoint.tensor(t + "conv_1d.weight", W, 1, K).toFloatArray(), taps = new float[K * W];
            for (int c = 0; c < W; c++) for (int k = 0; k < K; k++) taps[k * W + c] = conv[c * K + k];
            float[] lambda = vector(t + "rg_lru.recurrent_param", W);
            for (int c = 0; c < W; c++) lambda[c] = Scalar.softplus(lambda[c]);
            recurrent = new Recurrent(checkpoint.tensor(t + "linear_x.weight", W, D), vector(t + "linear_x.bias", W),
                    checkpoint.tensor(t + "linear_y.weight", W, D), vector(t + "linear_y.bias", W), taps, vector(t + "conv_1d.bias", W),
                    checkpoint.tensor(t + "rg_lru.input_gate_weight", H, bw, bw).toFloatArray(),
                    checkpoint.tensor(t + "rg_lru.input_gate_bias", H, bw).toFloatArray(),
                    checkpoint.tensor(t + "rg_lru.recurrent_gate_weight", H, bw, bw).toFloatArray(),
                    checkpoint.tensor(t + "rg_lru.recurrent_gate_bias", H, bw).toFloatArray(), lambda,
                    checkpoint.tensor(t + "linear_out.weight", D, W), vector(t + "linear_out.bias", D));
        }
        String m = p + "mlp_block.";
        return new Layer(norm(p + "temporal_pre_norm.weight"), recurrent, attention, norm(p + "channel_pre_norm.weight"),
                checkpoint.tensor(m + "gate_proj.weight", M, D), vector(m + "gate_proj.bias", M),
                checkpoint.tensor(m + "up_proj.weight", M, D), vector(m + "up_proj.bias", M),
                checkpoint.tensor(m + "down_proj.weight", D, M), vector(m + "down_proj.bias", D));
    }

    private float[] vector(String name, int n) {
        return checkpoint.tensor(name, n).toFloatArray();
    }

    /** A Gemma RMSNorm weight w as the factor 1 + w it multiplies by. */
    private float[] norm(String name) {
        float[] w = vector(name, config.hiddenSize());
        for (int j = 0; j < w.length; j++) w[j] += 1f;
        return w;
    }

    public static GriffinModel load(Path dir) {
        GriffinConfig config = GriffinConfig.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> new GriffinModel(dir, config, ck));
    }

    public GriffinConfig config() {
        return config;
    }

    @Override
    public State newState() {
        return new State(config);
    }

    /** The final RMSNorm of the residual stream after every block, [L, D], advancing {@code state} by L tokens. */
    @Override
    protected float[] hidden(int[] ids, LanguageModel.State s, TraceRecorder trace) {
        State state = (State) s;
        int L = ids.length, D = config.hiddenSize();
        float[] x = embed(embeddings, ids);                                // residual stream [L, D], F32
        for (int j = 0; j < x.length; j++) x[j] *= normalizer;
        float[] xn = new float[L * D];
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            Elementwise.rmsnorm(xn, x, w.temporalNorm(), config.eps(), L, D);
            Elementwise.addInPlace(x, w.recurrent() != null ? recurrent(i, w.recurrent(), xn, L, state, trace)
                    : attention(i, w.attention(), xn, L, state, trace), L * D);
            Elementwise.rmsnorm(xn, x, w.channelNorm(), config.eps(), L, D);
            Elementwise.addInPlace(x, mlp(w, xn, L), L * D);
        }
        state.position += L;
        Elementwise.rmsnorm(xn, x, finalNorm, config.eps(), L, D);
        return xn;
    }

    @Override
    protected void finishLogits(float[] logits) {
        float cap = config.logitsSoftCap();
        if (cap <= 0) return;
        for (int j = 0; j < logits.length; j++) logits[j] = (float) Math.tanh(logits[j] / cap) * cap;
    }

    /** linear_out(RG-LRU(conv(linear_x(xn))) ⊙ gelu(linear_y(xn))) for L tokens, [L, D]. */
    private float[] recurrent(int index, Recurrent r, float[] xn, int L, State state, TraceRecorder trace) {
        int D = config.hiddenSize(), W = config.lruWidth(), bw = config.blockWidth(), P = state.position;
        float[] gate = new float[L * W], xb = new float[L * W], x = new float[L * W];
        MatMul.matmul(gate, 0, W, xn, 0, D, L, r.linearY(), r.linearYB());
        Elementwise.geluTanh(gate, gate.length);
        MatMul.matmul(xb, 0, W, xn, 0, D, L, r.linearX(), r.linearXB());
        CausalConv.apply(x, xb, 0, W, r.convTaps(), r.convB(), state.conv[index], L, W, config.convWidth());
        float[] a = new float[L * W], b = new float[L * W], hOut = new float[L * W];
        float[] h = state.h[index];
        float[] inputPre = new float[bw], recurrentPre = new float[bw];
        for (int t = 0; t < L; t++) {
            boolean reset = P + t == 0;
            for (int block = 0; block < W / bw; block++) {
                int c0 = block * bw;
                System.arraycopy(r.inputGateB(), c0, inputPre, 0, bw);          // x_t's block times the block's [in, out] matrix
                System.arraycopy(r.recurrentGateB(), c0, recurrentPre, 0, bw);
                for (int in = 0; in < bw; in++) {
                    float v = x[t * W + c0 + in];
                    int row = (c0 + in) * bw;
                    for (int o = 0; o < bw; o++) {
                        inputPre[o] += v * r.inputGate()[row + o];
                        recurrentPre[o] += v * r.recurrentGate()[row + o];
                    }
                }
                for (int o = 0; o < bw; o++) {
                    int c = c0 + o, k = t * W + c;
                    float i = Scalar.sigmoid(inputPre[o]), logA = -8f * Scalar.sigmoid(recurrentPre[o]) * r.softplusLambda()[c];
                    float at = (float) Math.exp(logA), multiplier = reset ? 1f : (float) Math.sqrt(1 - (float) Math.exp(2 * logA));
                    h[c] = (reset ? 0f : at * h[c]) + x[k] * i * multiplier;
                    hOut[k] = h[c];
                    a[k] = at;
                    b[k] = i * multiplier;
                }
            }
        }
        if (trace != null && P == 0) trace.record(index, () -> new LruTrace(L, W, a, b, x, hOut.clone(), gate.clone(), xb, r.convTaps(), r.convB()));
        for (int k = 0; k < hOut.length; k++) hOut[k] *= gate[k];
        float[] out = new float[L * D];
        MatMul.matmul(out, 0, D, hOut, 0, W, L, r.linearOut(), r.linearOutB());
        return out;
    }

    /**
     * Local attention of L new tokens: A_h = softmax(q_h·k_gᵀ / √dh) over the last {@code window} positions
     * (key/value head g = h / (H/KV)), out = o_proj(concat_h(A_h·v_g)), [L, D].
     */
    private float[] attention(int index, LocalAttention w, float[] xn, int L, State state, TraceRecorder trace) {
        int D = config.hiddenSize(), H = config.heads(), KV = config.kvHeads(), dh = config.headDim(), window = config.window();
        int P = state.position, perGroup = H / KV;
        float[] q = new float[L * H * dh], k = new float[L * KV * dh], v = new float[L * KV * dh];
        MatMul.matmul(q, 0, H * dh, xn, 0, D, L, w.q(), w.qB());
        MatMul.matmul(k, 0, KV * dh, xn, 0, D, L, w.k(), w.kB());
        MatMul.matmul(v, 0, KV * dh, xn, 0, D, L, w.v(), w.vB());
        // The keys and values this chunk can see, in position order: the last window − 1 cached ones, then its own.
        float[] ringKeys = state.keys[index], ringValues = state.values[index];
        int past = Math.min(P, window - 1), T = past + L, row = KV * dh;
        float[] keys = new float[T * row], values = new float[T * row];
        for (int s = 0; s < past; s++) {
            int slot = (P - past + s) % window;
            System.arraycopy(ringKeys, slot * row, keys, s * row, row);
            System.arraycopy(ringValues, slot * row, values, s * row, row);
        }
        for (int t = 0; t < L; t++) {
            for (int h = 0; h < H; h++) Rotary.rotate(q, (t * H + h) * dh, P + t, inverseFrequencies, 1);
            for (int g = 0; g < KV; g++) Rotary.rotate(k, (t * KV + g) * dh, P + t, inverseFrequencies, 1);
        }
        System.arraycopy(k, 0, keys, past * row, L * row);
        System.arraycopy(v, 0, values, past * row, L * row);
        float[] probs = trace != null && P == 0 && trace.wants(index) ? new float[H * L * L] : null;   // [H, L, L]
        float[] context = new float[L * H * dh];
        float scale = (float) (1 / Math.sqrt(dh));
        Parallel.forRange(L * H, Math.max(1, L * H / (4 * Parallel.THREADS)), (u0, u1) -> {
            float[] scores = new float[Math.min(window, T)];
            for (int u = u0; u < u1; u++) {                                // query token t, head h
                int t = u / H, h = u % H, p = P + t, g = h / perGroup, qOff = (t * H + h) * dh;
                int first = Math.max(0, p - window + 1), n = p - first + 1, key0 = first - (P - past);
                float max = Float.NEGATIVE_INFINITY;
                for (int s = 0; s < n; s++) {
                    scores[s] = MatMul.dot(q, qOff, keys, ((key0 + s) * KV + g) * dh, dh) * scale;
                    max = Math.max(max, scores[s]);
                }
                float sum = 0;
                for (int s = 0; s < n; s++) sum += scores[s] = (float) Math.exp(scores[s] - max);
                for (int s = 0; s < n; s++) {
                    float pr = scores[s] / sum;
                    MatMul.axpy(pr, values, ((key0 + s) * KV + g) * dh, context, qOff, dh);
                    if (probs != null) probs[(h * L + t) * L + first + s] = pr;
                }
            }
        });
        for (int t = Math.max(0, L - window); t < L; t++) {               // the ring keeps the last window positions
            int slot = (P + t) % window;
            System.arraycopy(k, t * row, ringKeys, slot * row, row);
            System.arraycopy(v, t * row, ringValues, slot * row, row);
        }
        if (probs != null) trace.record(index, () -> new AttentionTrace(H, L, probs));
        float[] out = new float[L * D];
        MatMul.matmul(out, 0, D, context, 0, H * dh, L, w.o(), w.oB());
        return out;
    }

    /** down(gelu(gate(xn)) ⊙ up(xn)) for L tokens, [L, D]. */
    private float[] mlp(Layer w, float[] xn, int L) {
        int D = config.hiddenSize(), M = config.mlpWidth();
        float[] g = new float[L * M], u = new float[L * M];
        MatMul.matmul(g, 0, M, xn, 0, D, L, w.gate(), w.gateB());
        Elementwise.geluTanh(g, g.length);
        MatMul.matmul(u, 0, M, xn, 0, D, L, w.up(), w.upB());
        for (int j = 0; j < g.length; j++) g[j] *= u[j];
        float[] out = new float[L * D];
        MatMul.matmul(out, 0, D, g, 0, M, L, w.down(), w.downB());
        return out;
    }

    @Override
    public String toString() {
        return "Griffin " + Arrays.asList(config.layers() + " layers " + config.blockTypes(), "D=" + config.hiddenSize(), "W=" + config.lruWidth(),
                "H=" + config.heads(), "KV=" + config.kvHeads(), "window=" + config.window(), "M=" + config.mlpWidth(),
                "V=" + config.vocabSize()) + " from " + dir;
    }
}
