package org.mambalens.engine.model.rwkv;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.model.BackendLanguageModel;
import org.mambalens.engine.model.SequenceClassification;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.RwkvTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.mambalens.engine.backend.Backend.Activation.RELU_SQUARED;
import static org.mambalens.engine.backend.Backend.Activation.SIGMOID;
import static org.mambalens.engine.backend.CpuBackend.array;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/**
 * RWKV-4 language model (transformers' {@code RwkvForCausalLM}, or the model and score of our
 * {@code RwkvForSequenceClassification}, DESIGN §2.4), read top to bottom: weights, state, then
 * the forward pass, written once over a {@link Backend} (the CPU's Vector API kernels or a CUDA GPU).
 * Each block is x + TimeMix(LN1(x)), then x + ChannelMix(LN2(x)) (block 0 first layer-norms the
 * embeddings). Both mixes interpolate each token with the previous one (token shift). The time mix is
 * the WKV recurrence with a per-channel decay w = −exp(time_decay) and a bonus u for the current token,
 * <pre>
 *   wkv_t = (Σ_{i<t} e^{(t−1−i)·w + k_i}·v_i + e^{u + k_t}·v_t) / (Σ_{i<t} e^{(t−1−i)·w + k_i} + e^{u + k_t}),
 * </pre>
 * gated by σ(r_t), kept as transformers keeps it: numerator, denominator and a running maximum exponent.
 * The channel mix is σ(W_r·x_r) ⊙ W_v·relu(W_k·x_k)².
 *
 * <p>transformers halves the hidden states every {@code rescale_every} layers at inference and pre-divides
 * two weights to match, which leaves the function unchanged up to the layer norms' eps; this engine runs
 * the unscaled function. Shapes: L tokens, D = hidden = A, F = intermediate, V = vocab, O = outputs (V, or a
 * classifier's labels).
 */
public final class RwkvModel extends BackendLanguageModel<RwkvModel.State> {

    /** One block's weights. */
    record Layer(Buffer ln1W, Buffer ln1B, Buffer ln2W, Buffer ln2B,            // [D]
                 Buffer mixK, Buffer mixV, Buffer mixR,                         // [D] time-mix interpolations
                 Buffer decay, Buffer bonus,                                    // [A] w = −exp(time_decay), u = time_first
                 float[] hostDecay, float[] hostBonus,                          // the same two, for traces
                 Matrix key, Matrix value, Matrix receptance, Matrix output,    // [A, D] ×3, [D, A]
                 Buffer ffnMixK, Buffer ffnMixR,                                // [D] channel-mix interpolations
                 Matrix ffnKey, Matrix ffnReceptance, Matrix ffnValue) {       // [F, D], [D, D], [D, F]
    }

    /** Per layer, in the backend's memory: the previous token's inputs of both mixes, and the WKV numerator, denominator and maximum exponent. */
    public static final class State extends DecodeState {
        final Buffer[] attnShift, ffnShift;   // [layers][D]
        final Buffer[] wkv;                   // [layers][3A]: numerator, denominator, maximum exponent

        State(Backend backend, RwkvConfig c) {
            int n = c.layers(), D = c.hiddenSize(), A = c.attentionHiddenSize();
            attnShift = new Buffer[n];
            ffnShift = new Buffer[n];
            wkv = new Buffer[n];
            for (int i = 0; i < n; i++) {
                attnShift[i] = backend.allocate(D);
                ffnShift[i] = backend.allocate(D);
                wkv[i] = backend.allocate(3L * A);
            }
            clear(backend);
        }

        @Override
        protected void clear(Backend backend) {
            for (int i = 0; i < wkv.length; i++) {
                backend.fill(attnShift[i], attnShift[i].size(), 0f);
                backend.fill(ffnShift[i], ffnShift[i].size(), 0f);
                long A = wkv[i].size() / 3;
                backend.fill(wkv[i], 2 * A, 0f);
                backend.fill(wkv[i].at(2 * A), A, -1e38f);   // no maximum exponent yet
            }
        }
    }

    private final Path dir;
    private final RwkvConfig config;
    private final Buffer preLnW, preLnB;   // [D] blocks.0.pre_ln
    private final Layer[] layers;
    private final Buffer lnOutW, lnOutB;   // [D]

    private RwkvModel(Path dir, RwkvConfig c, SequenceClassification classifier, Checkpoint ck, Backend backend) {
        int V = c.vocabSize(), D = c.hiddenSize();
        Tensor table = ck.tensor("rwkv.embeddings.weight", V, D);
        Tensor head = classifier != null ? classifier.score(ck, D)
                : c.tieWordEmbeddings() || !ck.has("head.weight") ? table : ck.tensor("head.weight", V, D);
        super(ck, backend, backend.table(table, V, D), backend.matrix(head, head.dim(0), D), classifier, V, D, c.layers(), c.eosTokenId());
        this.dir = dir;
        this.config = c;
        preLnW = vector("rwkv.blocks.0.pre_ln.weight", D);
        preLnB = vector("rwkv.blocks.0.pre_ln.bias", D);
        layers = new Layer[c.layers()];
        for (int i = 0; i < layers.length; i++) layers[i] = loadLayer("rwkv.blocks." + i + ".");
        lnOutW = vector("rwkv.ln_out.weight", D);
        lnOutB = vector("rwkv.ln_out.bias", D);
    }

    private Layer loadLayer(String p) {
        int D = config.hiddenSize(), A = config.attentionHiddenSize(), F = config.intermediateSize();
        float[] decay = checkpoint.tensor(p + "attention.time_decay", A).toFloatArray();
        for (int a = 0; a < A; a++) decay[a] = (float) -Math.exp(decay[a]);
        float[] bonus = checkpoint.tensor(p + "attention.time_first", A).toFloatArray();
        return new Layer(vector(p + "ln1.weight", D), vector(p + "ln1.bias", D), vector(p + "ln2.weight", D), vector(p + "ln2.bias", D),
                mix(p + "attention.time_mix_key"), mix(p + "attention.time_mix_value"), mix(p + "attention.time_mix_receptance"),
                backend.constant(decay), backend.constant(bonus), decay, bonus,
                matrix(p + "attention.key.weight", A, D), matrix(p + "attention.value.weight", A, D),
                matrix(p + "attention.receptance.weight", A, D), matrix(p + "attention.output.weight", D, A),
                mix(p + "feed_forward.time_mix_key"), mix(p + "feed_forward.time_mix_receptance"),
                matrix(p + "feed_forward.key.weight", F, D), matrix(p + "feed_forward.receptance.weight", D, D),
                matrix(p + "feed_forward.value.weight", D, F));
    }

    private Buffer vector(String name, int n) {
        return backend.constant(checkpoint.tensor(name, n).toFloatArray());
    }

    private Buffer mix(String name) {
        return backend.constant(checkpoint.tensor(name, 1, 1, config.hiddenSize()).toFloatArray());
    }

    private Matrix matrix(String name, int rows, int cols) {
        return backend.matrix(checkpoint.tensor(name, rows, cols), rows, cols);
    }

    /** An RwkvForCausalLM, or the model and score of an RwkvForSequenceClassification, on {@code backend}. */
    public static RwkvModel load(Path dir, Backend backend) {
        ConfigFile file = ConfigFile.in(dir);
        RwkvConfig config = RwkvConfig.from(file);
        SequenceClassification classifier = SequenceClassification.from(file);
        return Checkpoint.openFor(dir, ck -> new RwkvModel(dir, config, classifier, ck, backend));
    }

    /** On the CPU. */
    public static RwkvModel load(Path dir) {
        return load(dir, CpuBackend.INSTANCE);
    }

    public RwkvConfig config() {
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
     * The blocks, ln_out and the head; a traced call (from a fresh state) records each wanted layer's time mix, and
     * the hidden states as transformers' RwkvModel returns them: each layer's output (blocks.0 includes pre_ln), then
     * ln_out's. When {@code streams} is given, streams[i] receives the stream entering block i (for block 0 the
     * embeddings, before its pre_ln) and streams[layers] the last.
     */
    private void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, float[][] streams, Buffer logits,
                        int firstRow, int rows) {
        int D = config.hiddenSize(), A = config.attentionHiddenSize(), F = config.intermediateSize();
        float eps = config.eps();
        Buffer xn = f.floats((long) L * D), shifted = f.floats((long) L * D), mixed = f.floats((long) L * D);   // LN(x), a token shift of it, a mix's output
        Buffer k = f.floats((long) L * A), v = f.floats((long) L * A), r = f.floats((long) L * A), gated = f.floats((long) L * A);
        Buffer ffnK = f.floats((long) L * F), ffnR = f.floats((long) L * D);
        if (streams != null) streams[0] = backend.read(x, L * D);
        backend.layernorm(x, D, x, D, preLnW, preLnB, L, D, eps);                       // blocks.0.pre_ln, in place
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            if (streams != null && i > 0) streams[i] = backend.read(x, L * D);
            backend.layernorm(xn, D, x, D, w.ln1W(), w.ln1B(), L, D, eps);
            Buffer shift = state.attnShift[i];                                            // time mix: k, v, σ(r) of shifted tokens
            shiftedLinear(k, shifted, xn, w.mixK(), shift, w.key(), L);
            shiftedLinear(v, shifted, xn, w.mixV(), shift, w.value(), L);
            shiftedLinear(r, shifted, xn, w.mixR(), shift, w.receptance(), L);
            backend.copy(shift, xn.at((long) (L - 1) * D), D);
            backend.biasActivation(r, null, L, A, SIGMOID);
            backend.wkv(gated, r, k, v, w.decay(), w.bonus(), state.wkv[i], L, A);
            if (trace != null && trace.wants(i)) record(trace, i, w, L, r, k, v, gated);
            backend.linear(mixed, D, gated, A, L, w.output(), null);
            backend.add(x, mixed, (long) L * D);

            backend.layernorm(xn, D, x, D, w.ln2W(), w.ln2B(), L, D, eps);
            shift = state.ffnShift[i];                                                    // channel mix: σ(W_r·x_r) ⊙ W_v·relu(W_k·x_k)²
            shiftedLinear(ffnK, shifted, xn, w.ffnMixK(), shift, w.ffnKey(), L);
            shiftedLinear(ffnR, shifted, xn, w.ffnMixR(), shift, w.ffnReceptance(), L);
            backend.copy(shift, xn.at((long) (L - 1) * D), D);
            backend.biasActivation(ffnK, null, L, F, RELU_SQUARED);
            backend.linear(mixed, D, ffnK, F, L, w.ffnValue(), null);
            backend.biasActivation(ffnR, null, L, D, SIGMOID);
            backend.multiply(mixed, ffnR, (long) L * D);
            backend.add(x, mixed, (long) L * D);
            recordHiddenState(trace, "layer " + i, x, L, rescaled(i));
        }
        if (streams != null) streams[layers.length] = backend.read(x, L * D);
        Buffer first = xn.at((long) firstRow * D);
        backend.layernorm(first, D, x.at((long) firstRow * D), D, lnOutW, lnOutB, rows, D, eps);
        recordHiddenState(trace, "ln_out", first, L);
        backend.linear(logits, outputs(), first, D, rows, head, null);
    }

    /**
     * The factor transformers' stream carries after layer i at inference: halved after every {@code rescale_every}
     * layers (its weights pre-divided to match), where the engine runs the unscaled function.
     */
    private float rescaled(int i) {
        return config.rescaleEvery() > 0 ? (float) Math.scalb(1.0, -((i + 1) / config.rescaleEvery())) : 1f;
    }

    /** out [L, W's rows] = W · (xn [L, D] token-shifted by mix from shift), through {@code shifted} [L, D]. */
    private void shiftedLinear(Buffer out, Buffer shifted, Buffer xn, Buffer mix, Buffer shift, Matrix w, int L) {
        int D = config.hiddenSize();
        backend.tokenShift(shifted, xn, D, mix, shift, L, D);
        backend.linear(out, w.rows(), shifted, D, L, w, null);
    }

    /** Layer i's time mix for L tokens: r after the sigmoid, k, v, the gated WKV [L, A], and the decay and bonus. */
    private void record(TraceRecorder trace, int i, Layer w, int L, Buffer r, Buffer k, Buffer v, Buffer gated) {
        int n = L * config.attentionHiddenSize();
        float[] rHost = backend.read(r, n), kHost = backend.read(k, n), vHost = backend.read(v, n), gatedHost = backend.read(gated, n);
        trace.record(i, () -> new RwkvTrace(L, config.attentionHiddenSize(), rHost, kHost, vHost, gatedHost, w.hostDecay(), w.hostBonus()));
    }

    /**
     * Mamba-Attribution's gradients for a prompt (DESIGN §7): back-propagates the logit of {@code token} at
     * {@code position} and records, for each wanted block, the gradient with respect to the residual stream
     * entering it [L, D] (for block 0 the embeddings, which its pre_ln normalises), then the input gradient
     * ∂logit/∂(token embeddings) [L, D]; the forward is traced as {@link #forward} traces it. Blocks are
     * recomputed one at a time from their saved input on the way back. Returns that position's logits [O]. On a
     * GPU the whole pass runs on this checkpoint's CPU view.
     */
    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        checkExplained(ids, position, token);
        if (backend.isGpu()) return cpuView(cpu -> new RwkvModel(dir, config, classifier, checkpoint, cpu)).forwardWithGradients(ids, position, token, trace);
        int L = ids.length, D = config.hiddenSize();
        float eps = config.eps();
        float[][] streams = new float[layers.length + 1][];
        float[] logits = forwardOnCpu(ids, (f, x, len, out) -> blocks(f, x, len, freshState(), trace, streams, out, position, 1));
        float[] grad = new float[L * D];                                   // through ln_out from the head's row at the position
        Backward.layernorm(grad, outputGradient(token, position, L), streams[layers.length], array(lnOutW), eps, L, D);
        for (int i = layers.length - 1; i >= 0; i--) {
            float[] input = streams[i];
            if (i == 0) {                                                  // block 0 first normalises the embeddings
                input = new float[L * D];
                Elementwise.layernorm(input, streams[0], array(preLnW), array(preLnB), eps, L, D);
            }
            grad = blockBackward(layers[i], input, grad);
            if (i == 0) {
                float[] dEmbeddings = new float[L * D];
                Backward.layernorm(dEmbeddings, grad, streams[0], array(preLnW), eps, L, D);
                grad = dEmbeddings;
            }
            trace.recordResidualGradient(i, grad::clone);
            streams[i + 1] = null;
        }
        trace.recordInputGradient(grad);
        return logits;
    }

    /**
     * ∂/∂x [L, D] of one block x ↦ x' + ChannelMix(LN2(x')), x' = x + TimeMix(LN1(x)), from the gradient of its
     * output dOut [L, D], the block recomputed from its input x [L, D] from a fresh state (DESIGN §4.3).
     */
    private float[] blockBackward(Layer w, float[] x, float[] dOut) {
        int D = config.hiddenSize(), L = x.length / D, A = config.attentionHiddenSize(), F = config.intermediateSize();
        float eps = config.eps();
        float[] xn = new float[L * D];                                               // the time mix again
        Elementwise.layernorm(xn, x, array(w.ln1W()), array(w.ln1B()), eps, L, D);
        float[] k = shiftedLinear(xn, w.mixK(), w.key()), v = shiftedLinear(xn, w.mixV(), w.value());
        float[] r = shiftedLinear(xn, w.mixR(), w.receptance()), gated = new float[L * A], wkvState = new float[3 * A];
        backend.biasActivation(wrap(r), null, L, A, SIGMOID);
        Arrays.fill(wkvState, 2 * A, 3 * A, -1e38f);
        backend.wkv(wrap(gated), wrap(r), wrap(k), wrap(v), w.decay(), w.bonus(), wrap(wkvState), L, A);
        float[] mid = new float[L * D], xn2 = new float[L * D];                      // x' = x + W_o·(σ(r) ⊙ wkv), and the channel mix again
        backend.linear(wrap(mid), D, wrap(gated), A, L, w.output(), null);
        Elementwise.addInPlace(mid, x, L * D);
        Elementwise.layernorm(xn2, mid, array(w.ln2W()), array(w.ln2B()), eps, L, D);
        float[] ffnK = shiftedLinear(xn2, w.ffnMixK(), w.ffnKey()), ffnR = shiftedLinear(xn2, w.ffnMixR(), w.ffnReceptance());
        float[] squared = ffnK.clone(), ffnV = new float[L * D];
        backend.biasActivation(wrap(squared), null, L, F, RELU_SQUARED);
        backend.linear(wrap(ffnV), D, wrap(squared), F, L, w.ffnValue(), null);
        backend.biasActivation(wrap(ffnR), null, L, D, SIGMOID);

        float[] dV = new float[L * D], dR = new float[L * D];                         // channel mix: σ(r') ⊙ W_v'·relu(k')²
        for (int j = 0; j < L * D; j++) {
            dV[j] = dOut[j] * ffnR[j];
            dR[j] = dOut[j] * ffnV[j];
        }
        Backward.sigmoid(dR, dR, ffnR, L * D);
        float[] dSquared = new float[L * F], dK = new float[L * F];
        Backward.linear(dSquared, dV, L, CpuBackend.tensor(w.ffnValue()));
        Backward.reluSquared(dK, dSquared, ffnK, L * F);
        float[] dXn = new float[L * D], dMid = new float[L * D];
        shiftedLinearBackward(dXn, dK, w.ffnMixK(), w.ffnKey());
        shiftedLinearBackward(dXn, dR, w.ffnMixR(), w.ffnReceptance());
        Backward.layernorm(dMid, dXn, mid, array(w.ln2W()), eps, L, D);
        Elementwise.addInPlace(dMid, dOut, L * D);                                   // and the residual path

        float[] dGated = new float[L * A];                                           // time mix: W_o, the gated WKV, the three shifts
        Backward.linear(dGated, dMid, L, CpuBackend.tensor(w.output()));
        var g = new Backward.WkvGradients(new float[L * A], new float[L * A], new float[L * A]);
        Backward.wkv(g, dGated, r, k, v, w.hostDecay(), w.hostBonus(), L, A);
        Backward.sigmoid(g.dGate(), g.dGate(), r, L * A);
        Arrays.fill(dXn, 0f);
        shiftedLinearBackward(dXn, g.dk(), w.mixK(), w.key());
        shiftedLinearBackward(dXn, g.dv(), w.mixV(), w.value());
        shiftedLinearBackward(dXn, g.dGate(), w.mixR(), w.receptance());
        float[] dx = new float[L * D];
        Backward.layernorm(dx, dXn, x, array(w.ln1W()), eps, L, D);
        Elementwise.addInPlace(dx, dMid, L * D);
        return dx;
    }

    /** W · (xn [L, D] token-shifted by mix from a zero state) [L, W's rows], on the CPU backend. */
    private float[] shiftedLinear(float[] xn, Buffer mix, Matrix w) {
        int D = config.hiddenSize(), L = xn.length / D;
        float[] out = new float[L * w.rows()];
        shiftedLinear(wrap(out), wrap(new float[L * D]), wrap(xn), mix, wrap(new float[D]), w, L);
        return out;
    }

    /** dXn [L, D] += the reverse of {@link #shiftedLinear} for the gradient dOut [L, W's rows]. */
    private void shiftedLinearBackward(float[] dXn, float[] dOut, Buffer mix, Matrix w) {
        int D = config.hiddenSize(), L = dXn.length / D;
        float[] dShifted = new float[L * D], dx = new float[L * D];
        Backward.linear(dShifted, dOut, L, CpuBackend.tensor(w));
        Backward.tokenShift(dx, dShifted, array(mix), L, D);
        Elementwise.addInPlace(dXn, dx, L * D);
    }

    @Override
    public String toString() {
        return "RWKV-4 " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "F=" + config.intermediateSize(),
                "V=" + config.vocabSize(), headName()) + (backend.isGpu() ? " on " + backend : "") + " from " + dir;
    }
}
