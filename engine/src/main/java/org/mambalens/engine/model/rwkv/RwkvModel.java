package org.mambalens.engine.model.rwkv;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.StackedLanguageModel;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.RwkvTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * RWKV-4 language model (transformers' {@code RwkvForCausalLM}), read top to bottom: weights, state, then
 * the forward pass. Each block is x + TimeMix(LN1(x)), then x + ChannelMix(LN2(x)) (block 0 first
 * layer-norms the embeddings). Both mixes interpolate each token with the previous one (token shift).
 * The time mix is the WKV recurrence with a per-channel decay w = −exp(time_decay) and a bonus u for the
 * current token,
 * <pre>
 *   wkv_t = (Σ_{i<t} e^{(t−1−i)·w + k_i}·v_i + e^{u + k_t}·v_t) / (Σ_{i<t} e^{(t−1−i)·w + k_i} + e^{u + k_t}),
 * </pre>
 * gated by σ(r_t), kept as transformers keeps it: numerator, denominator and a running maximum exponent.
 * The channel mix is σ(W_r·x_r) ⊙ W_v·relu(W_k·x_k)².
 *
 * <p>transformers halves the hidden states every {@code rescale_every} layers at inference and pre-divides
 * two weights to match, which leaves the function unchanged up to the layer norms' eps; this engine runs
 * the unscaled function. Shapes: L tokens, D = hidden = A, F = intermediate, V = vocab.
 */
public final class RwkvModel extends StackedLanguageModel {

    /** One block's weights. */
    record Layer(float[] ln1W, float[] ln1B, float[] ln2W, float[] ln2B,
                 float[] mixK, float[] mixV, float[] mixR,         // [D] time-mix interpolations
                 float[] decay, float[] bonus,                     // [A] w = −exp(time_decay), u = time_first
                 Tensor key, Tensor value, Tensor receptance, Tensor output,   // [A, D] ×3, [D, A]
                 float[] ffnMixK, float[] ffnMixR,                 // [D] channel-mix interpolations
                 Tensor ffnKey, Tensor ffnReceptance, Tensor ffnValue) {       // [F, D], [D, D], [D, F]
    }

    /** Per layer: the previous token's inputs of both mixes, and the WKV numerator, denominator and maximum exponent. */
    public static final class State implements LanguageModel.State {
        final float[][] attnShift, ffnShift, num, den, max;
        int position;

        State(RwkvConfig c) {
            int n = c.layers(), D = c.hiddenSize(), A = c.attentionHiddenSize();
            attnShift = new float[n][D];
            ffnShift = new float[n][D];
            num = new float[n][A];
            den = new float[n][A];
            max = new float[n][A];
            for (float[] m : max) Arrays.fill(m, -1e38f);
        }

        @Override
        public int position() {
            return position;
        }
    }

    private final Path dir;
    private final RwkvConfig config;
    private final Tensor embeddings;       // [V, D]
    private final float[] preLnW, preLnB;  // [D] blocks.0.pre_ln
    private final Layer[] layers;
    private final float[] lnOutW, lnOutB;  // [D]

    private RwkvModel(Path dir, RwkvConfig c, Checkpoint ck) {
        int V = c.vocabSize(), D = c.hiddenSize();
        Tensor embeddings = ck.tensor("rwkv.embeddings.weight", V, D);
        super(ck, V, c.tieWordEmbeddings() || !ck.has("head.weight") ? embeddings : ck.tensor("head.weight", V, D), D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
        this.embeddings = embeddings;
        preLnW = vector("rwkv.blocks.0.pre_ln.weight", D);
        preLnB = vector("rwkv.blocks.0.pre_ln.bias", D);
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) layers[i] = loadLayer("rwkv.blocks." + i + ".");
        lnOutW = vector("rwkv.ln_out.weight", D);
        lnOutB = vector("rwkv.ln_out.bias", D);
    }

    private Layer loadLayer(String p) {
        int D = config.hiddenSize(), A = config.attentionHiddenSize(), F = config.intermediateSize();
        float[] decay = vector(p + "attention.time_decay", A);
        for (int a = 0; a < A; a++) decay[a] = (float) -Math.exp(decay[a]);
        return new Layer(vector(p + "ln1.weight", D), vector(p + "ln1.bias", D), vector(p + "ln2.weight", D), vector(p + "ln2.bias", D),
                mix(p + "attention.time_mix_key"), mix(p + "attention.time_mix_value"), mix(p + "attention.time_mix_receptance"),
                decay, vector(p + "attention.time_first", A),
                checkpoint.tensor(p + "attention.key.weight", A, D), checkpoint.tensor(p + "attention.value.weight", A, D),
                checkpoint.tensor(p + "attention.receptance.weight", A, D), checkpoint.tensor(p + "attention.output.weight", D, A),
                mix(p + "feed_forward.time_mix_key"), mix(p + "feed_forward.time_mix_receptance"),
                checkpoint.tensor(p + "feed_forward.key.weight", F, D), checkpoint.tensor(p + "feed_forward.receptance.weight", D, D),
                checkpoint.tensor(p + "feed_forward.value.weight", D, F));
    }

    private float[] vector(String name, int n) {
        return checkpoint.tensor(name, n).toFloatArray();
    }

    private float[] mix(String name) {
        return checkpoint.tensor(name, 1, 1, config.hiddenSize()).toFloatArray();
    }

    public static RwkvModel load(Path dir) {
        RwkvConfig config = RwkvConfig.from(ConfigFile.in(dir));
        return Checkpoint.openFor(dir, ck -> new RwkvModel(dir, config, ck));
    }

    public RwkvConfig config() {
        return config;
    }

    @Override
    public State newState() {
        return new State(config);
    }

    /** ln_out of the residual stream after every block, [L, D], advancing {@code state} by L tokens. */
    @Override
    protected float[] hidden(int[] ids, LanguageModel.State s, TraceRecorder trace) {
        State state = (State) s;
        int L = ids.length, D = config.hiddenSize();
        float[] x = embed(embeddings, ids);                                // residual stream [L, D], F32
        Elementwise.layernorm(x, x, preLnW, preLnB, config.eps(), L, D);   // blocks.0.pre_ln
        float[] xn = new float[L * D];
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            Elementwise.layernorm(xn, x, w.ln1W(), w.ln1B(), config.eps(), L, D);
            Elementwise.addInPlace(x, timeMix(i, w, xn, L, state, trace), L * D);
            Elementwise.layernorm(xn, x, w.ln2W(), w.ln2B(), config.eps(), L, D);
            Elementwise.addInPlace(x, channelMix(i, w, xn, L, state), L * D);
        }
        state.position += L;
        Elementwise.layernorm(xn, x, lnOutW, lnOutB, config.eps(), L, D);
        return xn;
    }

    /** x_t·μ + x_{t−1}·(1 − μ) for every token, x_{−1} taken from (and the last x left in) {@code shift}. */
    private static float[] tokenShift(float[] x, float[] mu, float[] shift, int L, int D) {
        float[] out = new float[L * D];
        for (int t = 0; t < L; t++) {
            for (int j = 0; j < D; j++) {
                float previous = t == 0 ? shift[j] : x[(t - 1) * D + j];
                out[t * D + j] = x[t * D + j] * mu[j] + previous * (1 - mu[j]);
            }
        }
        return out;
    }

    /** W_o · (σ(r) ⊙ WKV) for L tokens, [L, D]. */
    private float[] timeMix(int index, Layer w, float[] xn, int L, State state, TraceRecorder trace) {
        int D = config.hiddenSize(), A = config.attentionHiddenSize();
        float[] shift = state.attnShift[index];
        float[] k = new float[L * A], v = new float[L * A], r = new float[L * A];
        MatMul.matmul(k, 0, A, tokenShift(xn, w.mixK(), shift, L, D), 0, D, L, w.key(), null);
        MatMul.matmul(v, 0, A, tokenShift(xn, w.mixV(), shift, L, D), 0, D, L, w.value(), null);
        MatMul.matmul(r, 0, A, tokenShift(xn, w.mixR(), shift, L, D), 0, D, L, w.receptance(), null);
        System.arraycopy(xn, (L - 1) * D, shift, 0, D);
        float[] num = state.num[index], den = state.den[index], max = state.max[index];
        float[] gated = new float[L * A];
        for (int t = 0; t < L; t++) {
            for (int a = 0; a < A; a++) {
                int o = t * A + a;
                r[o] = 1 / (1 + (float) Math.exp(-r[o]));
                float kt = k[o], vt = v[o];
                float m = Math.max(max[a], kt + w.bonus()[a]);                 // output: the past and the bonus-weighted present
                float e1 = (float) Math.exp(max[a] - m), e2 = (float) Math.exp(kt + w.bonus()[a] - m);
                gated[o] = r[o] * (e1 * num[a] + e2 * vt) / (e1 * den[a] + e2);
                m = Math.max(max[a] + w.decay()[a], kt);                       // state: decay the past, add the present
                e1 = (float) Math.exp(max[a] + w.decay()[a] - m);
                e2 = (float) Math.exp(kt - m);
                num[a] = e1 * num[a] + e2 * vt;
                den[a] = e1 * den[a] + e2;
                max[a] = m;
            }
        }
        if (trace != null && state.position == 0) {
            trace.record(index, () -> new RwkvTrace(L, A, r.clone(), k.clone(), v.clone(), gated.clone(), w.decay(), w.bonus()));
        }
        float[] out = new float[L * D];
        MatMul.matmul(out, 0, D, gated, 0, A, L, w.output(), null);
        return out;
    }

    /** σ(W_r·x_r) ⊙ W_v·relu(W_k·x_k)² for L tokens, [L, D]. */
    private float[] channelMix(int index, Layer w, float[] xn, int L, State state) {
        int D = config.hiddenSize(), F = config.intermediateSize();
        float[] shift = state.ffnShift[index];
        float[] k = new float[L * F], r = new float[L * D];
        MatMul.matmul(k, 0, F, tokenShift(xn, w.ffnMixK(), shift, L, D), 0, D, L, w.ffnKey(), null);
        MatMul.matmul(r, 0, D, tokenShift(xn, w.ffnMixR(), shift, L, D), 0, D, L, w.ffnReceptance(), null);
        System.arraycopy(xn, (L - 1) * D, shift, 0, D);
        for (int j = 0; j < k.length; j++) k[j] = k[j] > 0 ? k[j] * k[j] : 0f;
        float[] out = new float[L * D];
        MatMul.matmul(out, 0, D, k, 0, F, L, w.ffnValue(), null);
        for (int j = 0; j < out.length; j++) out[j] *= 1 / (1 + (float) Math.exp(-r[j]));
        return out;
    }

    @Override
    public String toString() {
        return "RWKV-4 " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "F=" + config.intermediateSize(),
                "V=" + config.vocabSize()) + " from " + dir;
    }
}
