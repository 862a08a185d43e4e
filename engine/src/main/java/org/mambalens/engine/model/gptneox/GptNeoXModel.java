package org.mambalens.engine.model.gptneox;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.kernels.Rotary;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.SequenceClassification;
import org.mambalens.engine.model.StackedLanguageModel;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * GPT-NeoX / Pythia language model (transformers' {@code GPTNeoXForCausalLM}), read top to bottom:
 * weights, the key/value cache, then the forward pass. Pre-norm blocks with a fused QKV projection,
 * rotary embeddings on the first dims of each head, causal softmax attention, an exact-GELU MLP, and
 * either the parallel residual x + Attn(LN1(x)) + MLP(LN2(x)) or the sequential one.
 *
 * <p>Shapes: L new tokens, P cached positions before them, D = hidden, H heads of dh, F = intermediate, V = vocab.
 */
public final class GptNeoXModel extends StackedLanguageModel {

    /** One block. Tensors are mapped views; float[] are small and widened at load. */
    record Layer(float[] ln1W, float[] ln1B,          // [D] input_layernorm
                 float[] ln2W, float[] ln2B,          // [D] post_attention_layernorm
                 Tensor qkv, float[] qkvB,            // [3D, D]: per head h, rows [h·3dh, h·3dh + 3dh) are q, k, v
                 Tensor dense, float[] denseB,        // [D, D]
                 Tensor fc1, float[] fc1B,            // [F, D] dense_h_to_4h
                 Tensor fc2, float[] fc2B) {          // [D, F] dense_4h_to_h
    }

    /** Per layer and head, the keys (rotated) and values of every position so far, [capacity, dh] each. */
    public static final class State implements LanguageModel.State {
        final float[][][] keys, values;
        int position;

        State(int layers, int heads) {
            keys = new float[layers][heads][0];
            values = new float[layers][heads][0];
        }

        @Override
        public int position() {
            return position;
        }
    }

    private final Path dir;
    private final GptNeoXConfig config;
    private final Tensor embeddings;       // [V, D] embed_in
    private final Layer[] layers;
    private final float[] lnW, lnB;        // [D] final_layer_norm
    private final float[] inverseFrequencies;   // [rotaryDims / 2]

    private GptNeoXModel(Path dir, GptNeoXConfig c, SequenceClassification classifier, Checkpoint ck) {
        int V = c.vocabSize(), D = c.hiddenSize(), F = c.intermediateSize();
        Tensor embeddings = ck.tensor("gpt_neox.embed_in.weight", V, D);
        Tensor head = classifier != null ? ck.tensor("score.weight", classifier.labels().size(), D)
                : ck.has("embed_out.weight") ? ck.tensor("embed_out.weight", V, D) : embeddings;   // tied when absent
        super(ck, V, head, D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
        this.embeddings = embeddings;
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "gpt_neox.layers." + i + ".";
            layers[i] = new Layer(vector(p + "input_layernorm.weight", D), vector(p + "input_layernorm.bias", D),
                    vector(p + "post_attention_layernorm.weight", D), vector(p + "post_attention_layernorm.bias", D),
                    ck.tensor(p + "attention.query_key_value.weight", 3L * D, D),
                    c.attentionBias() ? vector(p + "attention.query_key_value.bias", 3 * D) : null,
                    ck.tensor(p + "attention.dense.weight", D, D), c.attentionBias() ? vector(p + "attention.dense.bias", D) : null,
                    ck.tensor(p + "mlp.dense_h_to_4h.weight", F, D), vector(p + "mlp.dense_h_to_4h.bias", F),
                    ck.tensor(p + "mlp.dense_4h_to_h.weight", D, F), vector(p + "mlp.dense_4h_to_h.bias", D));
        }
        lnW = vector("gpt_neox.final_layer_norm.weight", D);
        lnB = vector("gpt_neox.final_layer_norm.bias", D);
        int half = c.rotaryDims() / 2;
        inverseFrequencies = new float[half];
        for (int j = 0; j < half; j++) inverseFrequencies[j] = (float) (1 / Math.pow(c.rotaryBase(), 2.0 * j / c.rotaryDims()));
    }

    private float[] vector(String name, int n) {
        return checkpoint.tensor(name, n).toFloatArray();
    }

    /** A GPTNeoXForCausalLM, or the model and score of a GPTNeoXForSequenceClassification. */
    public static GptNeoXModel load(Path dir) {
        ConfigFile file = ConfigFile.in(dir);
        GptNeoXConfig config = GptNeoXConfig.from(file);
        SequenceClassification classifier = SequenceClassification.from(file);
        return Checkpoint.openFor(dir, ck -> new GptNeoXModel(dir, config, classifier, ck));
    }

    public GptNeoXConfig config() {
        return config;
    }

    @Override
    public State newState() {
        return new State(config.layers(), config.heads());
    }

    /**
     * Chefer et al.'s gradients for a prompt: back-propagates the logit of {@code token} at {@code position}
     * and records, for each wanted layer, ∂logit/∂A_h [H, L, L] and the gradient with respect to the residual
     * stream entering it [L, D]; the input gradient is ∂logit/∂(token embeddings) [L, D]. Layers are
     * recomputed one at a time on the way back. Returns that position's logits [V].
     */
    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        LanguageModel.checkIds(ids, config.vocabSize());
        if (position < 0 || position >= ids.length) throw new IllegalArgumentException("position " + position + " is outside the prompt [0, " + ids.length + ")");
        LanguageModel.checkOutput(token, outputs());
        State fresh = newState();
        checkPositions(ids, fresh);
        int L = ids.length, D = config.hiddenSize(), F = config.intermediateSize();
        float[][] streams = new float[layers.length + 1][];
        float[] h = hidden(ids, fresh, trace, streams);
        float[] logits = new float[outputs()];
        MatMul.matvec(logits, 0, h, position * D, head(), null);

        float[] dOut = new float[D];                                       // ∂logit/∂final_layer_norm(x)[position] = the head's row
        for (int j = 0; j < D; j++) dOut[j] = head().getFloat((long) token * D + j);
        float[] grad = new float[L * D], dRow = new float[D];
        Backward.layernorm(dRow, dOut, Arrays.copyOfRange(streams[layers.length], position * D, (position + 1) * D), lnW, config.eps(), 1, D);
        System.arraycopy(dRow, 0, grad, position * D, D);

        float[] xn = new float[L * D], mlpIn = new float[L * D], tmp = new float[L * D];
        for (int i = layers.length - 1; i >= 0; i--) {
            Layer w = layers[i];
            float[] x = streams[i];
            Elementwise.layernorm(xn, x, w.ln1W(), w.ln1B(), config.eps(), L, D);
            State recomputed = newState();                                  // the layer again from its input: q, probs, k, v
            Attention a = attention(i, w, xn, L, recomputed);
            float[] mid = x;                                                // the MLP's layer-norm input
            if (!config.parallelResidual()) {
                mid = x.clone();
                Elementwise.addInPlace(mid, a.out(), L * D);
            }
            Elementwise.layernorm(mlpIn, mid, w.ln2W(), w.ln2B(), config.eps(), L, D);
            float[] pre = new float[L * F];
            MatMul.matmul(pre, 0, F, mlpIn, 0, D, L, w.fc1(), w.fc1B());

            float[] dAct = new float[L * F];                                // MLP: dense_4h_to_h, GELU, dense_h_to_4h, LN2
            Backward.linear(dAct, grad, L, w.fc2());
            Backward.gelu(dAct, dAct, pre, L * F);
            Backward.linear(tmp, dAct, L, w.fc1());
            float[] dMid = new float[L * D];
            Backward.layernorm(dMid, tmp, mid, w.ln2W(), config.eps(), L, D);
            float[] dAttnOut;                                               // the gradient reaching Attn(LN1(x))
            if (config.parallelResidual()) {
                dAttnOut = grad;                                            // x + Attn + MLP: both branches see grad
            } else {
                Elementwise.addInPlace(dMid, grad, L * D);                  // mid = x + Attn feeds the MLP and the stream
                dAttnOut = dMid;
            }
            float[] dxn = attentionBackward(i, w, a, recomputed.keys[i], recomputed.values[i], dAttnOut, L, trace);
            float[] dx = new float[L * D];
            Backward.layernorm(dx, dxn, x, w.ln1W(), config.eps(), L, D);
            if (config.parallelResidual()) {
                Elementwise.addInPlace(dx, dMid, L * D);                    // LN2 branch
                Elementwise.addInPlace(dx, grad, L * D);                    // the residual path
            } else {
                Elementwise.addInPlace(dx, dMid, L * D);                    // through mid = x + Attn
            }
            grad = dx;
            trace.recordResidualGradient(i, grad::clone);
            streams[i + 1] = null;
        }
        trace.recordInputGradient(grad);
        return logits;
    }

    /**
     * ∂/∂LN1(x) [L, D] from ∂/∂(attention output) [L, D], given the forward's tensors and its rotated keys and
     * values per head ([L, dh] each, at the front of the cache arrays); records ∂logit/∂A_h [H, L, L] for layer i.
     */
    private float[] attentionBackward(int i, Layer w, Attention a, float[][] keys, float[][] values, float[] dOut, int L, TraceRecorder trace) {
        int D = config.hiddenSize(), H = config.heads(), dh = config.headSize();
        float[] dContext = new float[L * D];
        Backward.linear(dContext, dOut, L, w.dense());
        float[] dProbs = new float[H * L * L], dqkv = new float[L * 3 * D];
        float scale = (float) (1 / Math.sqrt(dh));
        for (int h = 0; h < H; h++) {
            float[] v = values[h];
            int p = h * L * L;
            for (int r = 0; r < L; r++) {
                for (int c = 0; c <= r; c++) {                              // dA_h = dContext_h · V_hᵀ (causal)
                    float acc = 0;
                    for (int j = 0; j < dh; j++) acc += dContext[r * D + h * dh + j] * v[c * dh + j];
                    dProbs[p + r * L + c] = acc;
                }
            }
        }
        trace.recordAttentionGradient(i, dProbs::clone);
        for (int h = 0; h < H; h++) {
            float[] k = keys[h];
            int p = h * L * L;
            Backward.softmaxRows(dProbs, a.probs(), p, L, L);               // ∂/∂(scaled scores)
            for (int r = 0; r < L; r++) {
                int qRow = r * 3 * D + h * 3 * dh;
                for (int c = 0; c <= r; c++) {
                    float pr = a.probs()[p + r * L + c], ds = dProbs[p + r * L + c];
                    int kRow = c * 3 * D + h * 3 * dh;
                    for (int j = 0; j < dh; j++) {
                        dqkv[kRow + 2 * dh + j] += pr * dContext[r * D + h * dh + j];   // dV += Aᵀ·dContext
                        dqkv[qRow + j] += ds * k[c * dh + j] * scale;                    // d(rotated q)
                        dqkv[kRow + dh + j] += ds * a.q()[r * D + h * dh + j];           // d(rotated k); q is scaled
                    }
                }
            }
            for (int t = 0; t < L; t++) {                                   // through the rotations: their transposes
                rotate(dqkv, t * 3 * D + h * 3 * dh, t, -1);
                rotate(dqkv, t * 3 * D + h * 3 * dh + dh, t, -1);
            }
        }
        float[] dxn = new float[L * D];
        Backward.linear(dxn, dqkv, L, w.qkv());
        return dxn;
    }

    @Override
    public int maxPositions() {
        return config.maxPositions();
    }

    @Override
    protected void checkPositions(int[] ids, LanguageModel.State state) {
        int cached = state.position();
        if (cached + ids.length > config.maxPositions()) {
            throw new IllegalArgumentException((cached + ids.length) + " positions exceed max_position_embeddings " + config.maxPositions());
        }
    }

    /** final_layer_norm of the residual stream after every block, [L, D], appending L positions to the cache. */
    @Override
    protected float[] hidden(int[] ids, LanguageModel.State s, TraceRecorder trace) {
        return hidden(ids, (State) s, trace, null);
    }

    /** As above; when {@code streams} is given, streams[i] receives the input of layer i and streams[layers] the last stream. */
    private float[] hidden(int[] ids, State state, TraceRecorder trace, float[][] streams) {
        int L = ids.length, D = config.hiddenSize(), F = config.intermediateSize();
        float[] x = embed(embeddings, ids);                                // residual stream [L, D], F32
        float[] xn = new float[L * D], mlpIn = new float[L * D];
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            if (streams != null) streams[i] = x.clone();
            Elementwise.layernorm(xn, x, w.ln1W(), w.ln1B(), config.eps(), L, D);
            Attention a = attention(i, w, xn, L, state);
            if (trace != null && state.position == 0) trace.record(i, () -> new AttentionTrace(config.heads(), L, a.probs().clone()));
            float[] attn = a.out();
            if (config.parallelResidual()) {                               // x + Attn(LN1(x)) + MLP(LN2(x))
                Elementwise.layernorm(mlpIn, x, w.ln2W(), w.ln2B(), config.eps(), L, D);
                Elementwise.addInPlace(x, attn, L * D);
            } else {                                                        // x + Attn(LN1(x)), then + MLP(LN2(·))
                Elementwise.addInPlace(x, attn, L * D);
                Elementwise.layernorm(mlpIn, x, w.ln2W(), w.ln2B(), config.eps(), L, D);
            }
            float[] hiddenF = new float[L * F];
            MatMul.matmul(hiddenF, 0, F, mlpIn, 0, D, L, w.fc1(), w.fc1B());
            Elementwise.gelu(hiddenF, hiddenF.length);
            float[] mlp = new float[L * D];
            MatMul.matmul(mlp, 0, D, hiddenF, 0, F, L, w.fc2(), w.fc2B());
            Elementwise.addInPlace(x, mlp, L * D);
        }
        if (streams != null) streams[layers.length] = x.clone();
        state.position += L;
        Elementwise.layernorm(xn, x, lnW, lnB, config.eps(), L, D);
        return xn;
    }

    /**
     * Causal multi-head attention of L new tokens over the P cached positions and themselves:
     * A_h = softmax(Q_h K_hᵀ / √dh) with rotary q and k, out = dense(concat_h(A_h V_h)), [L, D].
     */
    /** One attention sub-layer's tensors: q rotated and scaled [L, D]; probs [H, L, T]; out [L, D] (k and v stay in the cache). */
    private record Attention(float[] q, float[] probs, float[] context, float[] out) {
    }

    private Attention attention(int index, Layer w, float[] xn, int L, State state) {
        int D = config.hiddenSize(), H = config.heads(), dh = config.headSize(), P = state.position, T = P + L;
        float[] qkv = new float[L * 3 * D];                                // [L, 3D]
        MatMul.matmul(qkv, 0, 3 * D, xn, 0, D, L, w.qkv(), w.qkvB());
        float[] q = new float[L * D];                                      // [L, D], heads side by side, scaled
        ensureCapacity(state, index, T);
        float[][] keys = state.keys[index], values = state.values[index];
        float scale = (float) (1 / Math.sqrt(dh));
        for (int t = 0; t < L; t++) {
            for (int h = 0; h < H; h++) {
                int src = t * 3 * D + h * 3 * dh, dst = t * D + h * dh, cache = (P + t) * dh;
                System.arraycopy(qkv, src, q, dst, dh);
                System.arraycopy(qkv, src + dh, keys[h], cache, dh);
                System.arraycopy(qkv, src + 2 * dh, values[h], cache, dh);
                rotate(q, dst, P + t);
                rotate(keys[h], cache, P + t);
                for (int j = 0; j < dh; j++) q[dst + j] *= scale;
            }
        }
        float[] probs = new float[H * L * T];                              // [H, L, T], zero past the causal edge
        float[] context = new float[L * D];
        for (int h = 0; h < H; h++) {
            int off = h * L * T;
            MatMul.matmul(probs, off, T, q, h * dh, D, L, Tensor.view("k", keys[h], T, dh), null);   // Q_h K_hᵀ
            for (int t = 0; t < L; t++) {
                int visible = P + t + 1;
                Elementwise.softmaxRows(probs, off + t * T, 1, visible);
                Arrays.fill(probs, off + t * T + visible, off + (t + 1) * T, 0f);
                MatMul.vectorTimesMatrix(context, t * D + h * dh, probs, off + t * T, visible, values[h], dh);   // A_h V_h
            }
        }
        float[] out = new float[L * D];
        MatMul.matmul(out, 0, D, context, 0, D, L, w.dense(), w.denseB());
        return new Attention(q, probs, context, out);
    }

    /** Rotary embedding of one head's first rotaryDims values at {@code off}, position p. */
    private void rotate(float[] x, int off, int p) {
        Rotary.rotate(x, off, p, inverseFrequencies, 1);
    }

    /** The rotation by the angle of position p, or by its negative (sign −1: the transpose, for the reverse pass). */
    private void rotate(float[] x, int off, int p, int sign) {
        Rotary.rotate(x, off, p, inverseFrequencies, sign);
    }

    /** Grows layer i's cache to hold at least n positions (doubling, so decoding copies rarely). */
    private void ensureCapacity(State s, int i, int n) {
        int dh = config.headSize();
        if (s.keys[i][0].length >= n * dh) return;
        int capacity = Math.max(n, Math.min(config.maxPositions(), Math.max(16, 2 * s.keys[i][0].length / dh)));
        for (int h = 0; h < config.heads(); h++) {
            s.keys[i][h] = Arrays.copyOf(s.keys[i][h], capacity * dh);
            s.values[i][h] = Arrays.copyOf(s.values[i][h], capacity * dh);
        }
    }

    @Override
    public String toString() {
        return "GPT-NeoX " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "H=" + config.heads(),
                "F=" + config.intermediateSize(), "rotary=" + config.rotaryDims(), config.parallelResidual() ? "parallel" : "sequential",
                "V=" + config.vocabSize(), outputs() == config.vocabSize() ? "LM head" : outputs() + " labels") + " from " + dir;
    }
}
