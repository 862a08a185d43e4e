package org.mambalens.engine.model.gptneox;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.model.LanguageModel;
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

    private GptNeoXModel(Path dir, GptNeoXConfig c, Checkpoint ck) {
        int V = c.vocabSize(), D = c.hiddenSize(), F = c.intermediateSize();
        Tensor embeddings = ck.tensor("gpt_neox.embed_in.weight", V, D);
        super(ck, ck.has("embed_out.weight") ? ck.tensor("embed_out.weight", V, D) : embeddings, D, c.layers(), c.eosTokenId());
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

    public static GptNeoXModel load(Path dir) {
        GptNeoXConfig config = GptNeoXConfig.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> new GptNeoXModel(dir, config, ck));
    }

    public GptNeoXConfig config() {
        return config;
    }

    @Override
    public State newState() {
        return new State(config.layers(), config.heads());
    }

    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        throw new UnsupportedOperationException("the reverse pass (attribution) is not implemented for GPT-NeoX yet");
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
        State state = (State) s;
        int L = ids.length, D = config.hiddenSize(), F = config.intermediateSize();
        float[] x = embed(embeddings, ids);                                // residual stream [L, D], F32
        float[] xn = new float[L * D], mlpIn = new float[L * D];
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            Elementwise.layernorm(xn, x, w.ln1W(), w.ln1B(), config.eps(), L, D);
            float[] attn = attention(i, w, xn, L, state, trace);
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
        state.position += L;
        Elementwise.layernorm(xn, x, lnW, lnB, config.eps(), L, D);
        return xn;
    }

    /**
     * Causal multi-head attention of L new tokens over the P cached positions and themselves:
     * A_h = softmax(Q_h K_hᵀ / √dh) with rotary q and k, out = dense(concat_h(A_h V_h)), [L, D].
     */
    private float[] attention(int index, Layer w, float[] xn, int L, State state, TraceRecorder trace) {
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
        if (trace != null && P == 0) trace.recordAttention(index, () -> new AttentionTrace(H, L, probs.clone()));
        float[] out = new float[L * D];
        MatMul.matmul(out, 0, D, context, 0, D, L, w.dense(), w.denseB());
        return out;
    }

    /** Rotary embedding of one head's first rotaryDims values at {@code off}, position p (rotate_half convention). */
    private void rotate(float[] x, int off, int p) {
        int half = config.rotaryDims() / 2;
        for (int j = 0; j < half; j++) {
            double angle = (double) (p * inverseFrequencies[j]);
            float cos = (float) Math.cos(angle), sin = (float) Math.sin(angle);
            float a = x[off + j], b = x[off + j + half];
            x[off + j] = a * cos - b * sin;
            x[off + j + half] = b * cos + a * sin;
        }
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
                "V=" + config.vocabSize()) + " from " + dir;
    }
}
