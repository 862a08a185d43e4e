package org.mambalens.engine.model.gptneox;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.Rotary;
import org.mambalens.engine.model.BackendLanguageModel;
import org.mambalens.engine.model.SequenceClassification;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.mambalens.engine.backend.CpuBackend.array;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/**
 * GPT-NeoX / Pythia language model (transformers' {@code GPTNeoXForCausalLM}, or the model and score of a
 * {@code GPTNeoXForSequenceClassification}), read top to bottom: weights, the key/value cache, then the
 * forward pass, written once over a {@link Backend} (the CPU's Vector API kernels or a CUDA GPU). Pre-norm
 * blocks with a fused QKV projection, rotary embeddings on the first dims of each head, causal softmax
 * attention, an exact-GELU MLP, and either the parallel residual x + Attn(LN1(x)) + MLP(LN2(x)) or the
 * sequential one. The reverse pass (Chefer's gradients) runs on the CPU.
 *
 * <p>Shapes: L new tokens, P cached positions before them, D = hidden, H heads of dh, F = intermediate,
 * V = vocab, O = outputs (V, or a classifier's labels).
 */
public final class GptNeoXModel extends BackendLanguageModel<GptNeoXModel.State> {

    /** One block; optional ones are null. */
    record Layer(Buffer ln1W, Buffer ln1B,          // [D] input_layernorm
                 Buffer ln2W, Buffer ln2B,          // [D] post_attention_layernorm
                 Matrix qkv, Buffer qkvB,           // [3D, D]: per head h, rows [h·3dh, h·3dh + 3dh) are q, k, v; [3D]
                 Matrix dense, Buffer denseB,       // [D, D], [D]
                 Matrix fc1, Buffer fc1B,           // [F, D], [F] dense_h_to_4h
                 Matrix fc2, Buffer fc2B) {         // [D, F], [D] dense_4h_to_h
    }

    /**
     * Per layer, the rotated keys and the values of every position so far, head-major [H, capacity, dh] in the
     * backend's memory. The capacity grows (doubling, up to max_position_embeddings) as positions arrive, the
     * cached ones copied over; on a GPU the outgrown buffers stay with the model until it closes.
     */
    public static final class State extends DecodeState {
        final Buffer[] keys, values;
        int capacity;

        State(int layers) {
            keys = new Buffer[layers];
            values = new Buffer[layers];
        }

        /** The caches now hold {@code capacity} positions, in new buffers: a captured step no longer points at them. */
        void grew(int capacity) {
            this.capacity = capacity;
            forgetStep();
        }

        /** Nothing to clear: positions past the state's are never read. */
        @Override
        protected void clear(Backend backend) {
        }
    }

    private final Path dir;
    private final GptNeoXConfig config;
    private final Layer[] layers;
    private final Buffer lnW, lnB;             // [D] final_layer_norm
    private final float[] inverseFrequencies;  // [rotaryDims / 2]
    private final Buffer frequencies;          // the same in the backend's memory (at least one value)

    private GptNeoXModel(Path dir, GptNeoXConfig c, SequenceClassification classifier, Checkpoint ck, Backend backend) {
        int V = c.vocabSize(), D = c.hiddenSize(), F = c.intermediateSize();
        Tensor table = ck.tensor("gpt_neox.embed_in.weight", V, D);
        Tensor head = classifier != null ? classifier.score(ck, D) : ck.has("embed_out.weight") ? ck.tensor("embed_out.weight", V, D) : table;
        super(ck, backend, backend.table(table, V, D), backend.matrix(head, head.dim(0), D), classifier, V, D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "gpt_neox.layers." + i + ".";
            layers[i] = new Layer(vector(p + "input_layernorm.weight", D), vector(p + "input_layernorm.bias", D),
                    vector(p + "post_attention_layernorm.weight", D), vector(p + "post_attention_layernorm.bias", D),
                    backend.matrix(ck.tensor(p + "attention.query_key_value.weight", 3L * D, D), 3 * D, D),
                    c.attentionBias() ? vector(p + "attention.query_key_value.bias", 3 * D) : null,
                    backend.matrix(ck.tensor(p + "attention.dense.weight", D, D), D, D),
                    c.attentionBias() ? vector(p + "attention.dense.bias", D) : null,
                    backend.matrix(ck.tensor(p + "mlp.dense_h_to_4h.weight", F, D), F, D), vector(p + "mlp.dense_h_to_4h.bias", F),
                    backend.matrix(ck.tensor(p + "mlp.dense_4h_to_h.weight", D, F), D, F), vector(p + "mlp.dense_4h_to_h.bias", D));
        }
        lnW = vector("gpt_neox.final_layer_norm.weight", D);
        lnB = vector("gpt_neox.final_layer_norm.bias", D);
        int half = c.rotaryDims() / 2;
        inverseFrequencies = new float[half];
        for (int j = 0; j < half; j++) inverseFrequencies[j] = (float) (1 / Math.pow(c.rotaryBase(), 2.0 * j / c.rotaryDims()));
        frequencies = backend.constant(half == 0 ? new float[1] : inverseFrequencies);
    }

    private Buffer vector(String name, int n) {
        return backend.constant(checkpoint.tensor(name, n).toFloatArray());
    }

    /** A GPTNeoXForCausalLM, or the model and score of a GPTNeoXForSequenceClassification, on {@code backend}. */
    public static GptNeoXModel load(Path dir, Backend backend) {
        ConfigFile file = ConfigFile.in(dir);
        GptNeoXConfig config = GptNeoXConfig.from(file);
        SequenceClassification classifier = SequenceClassification.from(file);
        return Checkpoint.openFor(dir, ck -> new GptNeoXModel(dir, config, classifier, ck, backend));
    }

    /** On the CPU. */
    public static GptNeoXModel load(Path dir) {
        return load(dir, CpuBackend.INSTANCE);
    }

    public GptNeoXConfig config() {
        return config;
    }

    @Override
    protected State freshState() {
        return new State(config.layers());
    }

    /** The caches grow here, outside the replayed step, which captures afresh when they do. */
    @Override
    protected void prepareStep(State state) {
        ensureCapacity(state, state.position() + 1);
    }

    @Override
    protected void checkPositions(int cached, int tokens) {
        if ((long) cached + tokens > config.maxPositions()) {
            throw new IllegalArgumentException((cached + tokens) + " positions exceed max_position_embeddings " + config.maxPositions());
        }
    }

    /** Grows the state's caches to hold at least n positions (doubling, so decoding copies rarely), keeping what they hold. */
    private void ensureCapacity(State s, int n) {
        if (n <= s.capacity) return;
        int H = config.heads(), dh = config.headSize();
        int capacity = Math.max(n, Math.min(config.maxPositions(), Math.max(64, 2 * s.capacity)));
        for (int i = 0; i < layers.length; i++) {
            Buffer keys = backend.allocate((long) H * capacity * dh), values = backend.allocate((long) H * capacity * dh);
            if (s.position() > 0) {     // the old cache read as rows of H heads (row r: position r), stored as new rows are
                backend.storeHeads(keys, capacity, 0, s.keys[i], dh, s.capacity * dh, s.position(), H, dh);
                backend.storeHeads(values, capacity, 0, s.values[i], dh, s.capacity * dh, s.position(), H, dh);
            }
            s.keys[i] = keys;
            s.values[i] = values;
        }
        s.grew(capacity);
    }

    /** Where each layer's attention keeps its keys and values, head-major [H, capacity, dh]. */
    private record Cache(Buffer[] keys, Buffer[] values, int capacity) {
        /** One pair of buffers for L positions, shared by every layer (a whole-sequence forward keeps no state). */
        static Cache shared(Backend.Frame f, GptNeoXConfig c, int L) {
            long floats = (long) c.heads() * L * c.headSize();
            Buffer[] keys = new Buffer[c.layers()], values = new Buffer[c.layers()];
            Arrays.fill(keys, f.floats(floats));
            Arrays.fill(values, f.floats(floats));
            return new Cache(keys, values, L);
        }
    }

    /** The blocks over L new tokens after the state's positions, which the state's caches grow to hold. */
    @Override
    protected void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, Buffer logits, int firstRow, int rows) {
        ensureCapacity(state, state.position() + L);
        blocks(f, x, L, state.position(), new Cache(state.keys, state.values, state.capacity), trace, null, logits, firstRow, rows);
    }

    /**
     * The blocks over the L embedded tokens in x [L, D] (the residual stream, F32) at positions P …, appending
     * to {@code cache}, then final_layer_norm and the head for rows [firstRow, firstRow + rows) into logits
     * [rows, O]. The attention probabilities of the wanted layers go to {@code trace} (P = 0 only), and the hidden
     * states as transformers returns them: the stream entering each layer, then final_layer_norm's output. When
     * {@code streams} is given, streams[i] receives the stream entering layer i and streams[layers] the last.
     */
    private void blocks(Backend.Frame f, Buffer x, int L, int P, Cache cache, TraceRecorder trace, float[][] streams,
                        Buffer logits, int firstRow, int rows) {
        int D = config.hiddenSize(), H = config.heads(), F = config.intermediateSize();
        float eps = config.eps();
        Buffer normed = f.floats((long) L * D), qkv = f.floats((long) L * 3 * D), context = f.floats((long) L * D);
        Buffer mlp = f.floats((long) L * F);
        Buffer probs = trace != null && P == 0 ? f.floats((long) H * L * L) : null;     // [H, L, L]
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            if (streams != null) streams[i] = backend.read(x, L * D);
            recordHiddenState(trace, i == 0 ? "embeddings" : "layer " + (i - 1), x, L);
            backend.layernormLinear(qkv, 3 * D, x, w.ln1W(), w.ln1B(), eps, normed, L, D, w.qkv(), w.qkvB());
            attend(qkv, L, P, cache.keys()[i], cache.values()[i], cache.capacity(), context, probs);
            if (probs != null && trace.wants(i)) {
                float[] a = backend.read(probs, H * L * L);
                trace.record(i, () -> new AttentionTrace(H, L, a));
            }
            // The norms are taken in the products that follow them, and the branches added into the stream by their last
            // product (fewer launches on a GPU).
            if (config.parallelResidual()) {                               // x + Attn(LN1(x)) + MLP(LN2(x))
                backend.layernormLinear(mlp, F, x, w.ln2W(), w.ln2B(), eps, normed, L, D, w.fc1(), null);
                backend.linearAdd(x, D, context, D, L, w.dense(), w.denseB());
            } else {                                                        // x + Attn(LN1(x)), then + MLP(LN2(·))
                backend.linearAdd(x, D, context, D, L, w.dense(), w.denseB());
                backend.layernormLinear(mlp, F, x, w.ln2W(), w.ln2B(), eps, normed, L, D, w.fc1(), null);
            }
            backend.biasActivation(mlp, w.fc1B(), L, F, Backend.Activation.GELU);
            backend.linearAdd(x, D, mlp, F, L, w.fc2(), w.fc2B());
        }
        if (streams != null) streams[layers.length] = backend.read(x, L * D);
        backend.layernorm(normed, D, x.at((long) firstRow * D), D, lnW, lnB, rows, D, eps);
        recordHiddenState(trace, "layer " + (layers.length - 1) + " and final_layer_norm", normed, L);
        backend.linear(logits, outputs(), normed, D, rows, head, null);
    }

    /** One attention sub-layer over the layer-normed rows xn [L, D]: qkv = QKV(xn), {@link #attend}, then out [L, D] = dense(context). */
    private void attention(Layer w, Buffer xn, int L, int P, Buffer keys, Buffer values, int capacity, Buffer qkv, Buffer context,
                           Buffer probs, Buffer out) {
        int D = config.hiddenSize();
        backend.linear(qkv, 3 * D, xn, D, L, w.qkv(), w.qkvB());
        attend(qkv, L, P, keys, values, capacity, context, probs);
        backend.linear(out, D, context, D, L, w.dense(), w.denseB());
    }

    /**
     * Attention from qkv [L, 3D] at positions P …: q and k rotated in place, the new keys and values appended to the cache,
     * probs [H, L, P + L] (may be null) and context [L, D] = concat_h(A_h V_h).
     */
    private void attend(Buffer qkv, int L, int P, Buffer keys, Buffer values, int capacity, Buffer context, Buffer probs) {
        int D = config.hiddenSize(), H = config.heads(), dh = config.headSize(), R = config.rotaryDims();
        backend.rotary(qkv, 3 * D, L, H, 3 * dh, frequencies, R, P);                  // q
        backend.rotary(qkv.at(dh), 3 * D, L, H, 3 * dh, frequencies, R, P);           // k
        backend.storeHeads(keys, capacity, P, qkv.at(dh), 3 * D, 3 * dh, L, H, dh);
        backend.storeHeads(values, capacity, P, qkv.at(2L * dh), 3 * D, 3 * dh, L, H, dh);
        backend.causalAttention(context, D, qkv, 3 * D, 3 * dh, keys, values, capacity, L, H, H, dh, (float) (1 / Math.sqrt(dh)),
                P, 0, probs);
    }

    /** pre [L, F] = dense_h_to_4h(in) + its bias, before the GELU. */
    private void mlpPreActivation(Layer w, Buffer in, int L, Buffer pre) {
        int D = config.hiddenSize(), F = config.intermediateSize();
        backend.linear(pre, F, in, D, L, w.fc1(), null);
        backend.biasActivation(pre, w.fc1B(), L, F, Backend.Activation.NONE);
    }

    /**
     * Chefer et al.'s gradients for a prompt: back-propagates the logit of {@code token} at {@code position}
     * and records, for each wanted layer, ∂logit/∂A_h [H, L, L] and the gradient with respect to the residual
     * stream entering it [L, D]; the input gradient is ∂logit/∂(token embeddings) [L, D]. Layers are
     * recomputed one at a time on the way back (by the forward's own code on the CPU backend). Returns that
     * position's logits [O]. On a GPU the whole pass runs on this checkpoint's CPU view.
     */
    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        checkExplained(ids, position, token);
        if (backend.isGpu()) return cpuView(cpu -> new GptNeoXModel(dir, config, classifier, checkpoint, cpu)).forwardWithGradients(ids, position, token, trace);
        int L = ids.length, D = config.hiddenSize(), H = config.heads(), dh = config.headSize(), F = config.intermediateSize();
        float eps = config.eps();
        float[][] streams = new float[layers.length + 1][];
        float[] x0 = new float[L * D], logits = new float[outputs()];
        backend.embed(wrap(x0), embeddings, ids);
        try (Backend.Frame frame = backend.frame()) {
            blocks(frame, wrap(x0), L, 0, Cache.shared(frame, config, L), trace, streams, wrap(logits), position, 1);
        }
        Tensor headWeight = CpuBackend.tensor(head);

        float[] dOut = new float[D];                                       // ∂logit/∂final_layer_norm(x)[position] = the head's row
        for (int j = 0; j < D; j++) dOut[j] = headWeight.getFloat((long) token * D + j);
        float[] grad = new float[L * D], dRow = new float[D];
        Backward.layernorm(dRow, dOut, Arrays.copyOfRange(streams[layers.length], position * D, (position + 1) * D), array(lnW), eps, 1, D);
        System.arraycopy(dRow, 0, grad, position * D, D);

        float[] xn = new float[L * D], mlpIn = new float[L * D], tmp = new float[L * D];
        for (int i = layers.length - 1; i >= 0; i--) {
            Layer w = layers[i];
            float[] x = streams[i];
            backend.layernorm(wrap(xn), D, wrap(x), D, w.ln1W(), w.ln1B(), L, D, eps);
            Recomputed a = new Recomputed(L, D, H, dh);                     // the layer again from its input: q, k, v, probs, out
            attention(w, wrap(xn), L, 0, wrap(a.keys), wrap(a.values), L, wrap(a.qkv), wrap(a.context), wrap(a.probs), wrap(a.out));
            float[] mid = x;                                                // the MLP's layer-norm input
            if (!config.parallelResidual()) {
                mid = x.clone();
                Elementwise.addInPlace(mid, a.out, L * D);
            }
            backend.layernorm(wrap(mlpIn), D, wrap(mid), D, w.ln2W(), w.ln2B(), L, D, eps);
            float[] pre = new float[L * F];
            mlpPreActivation(w, wrap(mlpIn), L, wrap(pre));

            float[] dAct = new float[L * F];                                // MLP: dense_4h_to_h, GELU, dense_h_to_4h, LN2
            Backward.linear(dAct, grad, L, CpuBackend.tensor(w.fc2()));
            Backward.gelu(dAct, dAct, pre, L * F);
            Backward.linear(tmp, dAct, L, CpuBackend.tensor(w.fc1()));
            float[] dMid = new float[L * D];
            Backward.layernorm(dMid, tmp, mid, array(w.ln2W()), eps, L, D);
            float[] dAttnOut;                                               // the gradient reaching Attn(LN1(x))
            if (config.parallelResidual()) {
                dAttnOut = grad;                                            // x + Attn + MLP: both branches see grad
            } else {
                Elementwise.addInPlace(dMid, grad, L * D);                  // mid = x + Attn feeds the MLP and the stream
                dAttnOut = dMid;
            }
            float[] dxn = attentionBackward(i, w, a, dAttnOut, L, trace);
            float[] dx = new float[L * D];
            Backward.layernorm(dx, dxn, x, array(w.ln1W()), eps, L, D);
            Elementwise.addInPlace(dx, dMid, L * D);                        // the LN2 branch, or through mid = x + Attn
            if (config.parallelResidual()) Elementwise.addInPlace(dx, grad, L * D);   // the residual path
            grad = dx;
            trace.recordResidualGradient(i, grad::clone);
            streams[i + 1] = null;
        }
        trace.recordInputGradient(grad);
        return logits;
    }

    /** One layer's attention recomputed for the reverse pass: qkv [L, 3D] rotated, keys and values [H, L, dh], probs [H, L, L], context and out [L, D]. */
    private record Recomputed(float[] qkv, float[] keys, float[] values, float[] probs, float[] context, float[] out) {
        Recomputed(int L, int D, int H, int dh) {
            this(new float[L * 3 * D], new float[H * L * dh], new float[H * L * dh], new float[H * L * L], new float[L * D], new float[L * D]);
        }
    }

    /**
     * ∂/∂LN1(x) [L, D] from ∂/∂(attention output) [L, D], given the forward's recomputed tensors; records
     * ∂logit/∂A_h [H, L, L] for layer i.
     */
    private float[] attentionBackward(int i, Layer w, Recomputed a, float[] dOut, int L, TraceRecorder trace) {
        int D = config.hiddenSize(), H = config.heads(), dh = config.headSize();
        float[] dContext = new float[L * D];
        Backward.linear(dContext, dOut, L, CpuBackend.tensor(w.dense()));
        float[] dProbs = new float[H * L * L], dqkv = new float[L * 3 * D];
        float scale = (float) (1 / Math.sqrt(dh));
        for (int h = 0; h < H; h++) {
            int p = h * L * L, v = h * L * dh;
            for (int r = 0; r < L; r++) {
                for (int c = 0; c <= r; c++) {                              // dA_h = dContext_h · V_hᵀ (causal)
                    float acc = 0;
                    for (int j = 0; j < dh; j++) acc += dContext[r * D + h * dh + j] * a.values[v + c * dh + j];
                    dProbs[p + r * L + c] = acc;
                }
            }
        }
        trace.recordAttentionGradient(i, dProbs::clone);
        float[][] cos = new float[L][inverseFrequencies.length], sin = new float[L][inverseFrequencies.length];
        for (int t = 0; t < L; t++) Rotary.angles(cos[t], sin[t], t, inverseFrequencies, -1);   // the transposed turn of each position
        for (int h = 0; h < H; h++) {
            int p = h * L * L, k = h * L * dh;
            Backward.softmaxRows(dProbs, a.probs, p, L, L);                 // ∂/∂(scaled scores)
            for (int r = 0; r < L; r++) {
                int qRow = r * 3 * D + h * 3 * dh;
                for (int c = 0; c <= r; c++) {
                    float pr = a.probs[p + r * L + c], ds = dProbs[p + r * L + c] * scale;
                    int kRow = c * 3 * D + h * 3 * dh;
                    for (int j = 0; j < dh; j++) {
                        dqkv[kRow + 2 * dh + j] += pr * dContext[r * D + h * dh + j];   // dV += Aᵀ·dContext
                        dqkv[qRow + j] += ds * a.keys[k + c * dh + j];                  // d(rotated q)
                        dqkv[kRow + dh + j] += ds * a.qkv[qRow + j];                    // d(rotated k)
                    }
                }
            }
            for (int t = 0; t < L; t++) {                                   // through the rotations: their transposes
                Rotary.rotate(dqkv, t * 3 * D + h * 3 * dh, cos[t], sin[t]);
                Rotary.rotate(dqkv, t * 3 * D + h * 3 * dh + dh, cos[t], sin[t]);
            }
        }
        float[] dxn = new float[L * D];
        Backward.linear(dxn, dqkv, L, CpuBackend.tensor(w.qkv()));
        return dxn;
    }

    @Override
    public int maxPositions() {
        return config.maxPositions();
    }

    @Override
    public String toString() {
        return "GPT-NeoX " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "H=" + config.heads(),
                "F=" + config.intermediateSize(), "rotary=" + config.rotaryDims(), config.parallelResidual() ? "parallel" : "sequential",
                "V=" + config.vocabSize(), headName())
                + (backend.isGpu() ? " on " + backend : "") + " from " + dir;
    }
}
