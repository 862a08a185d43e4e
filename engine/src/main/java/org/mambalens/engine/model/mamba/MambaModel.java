package org.mambalens.engine.model.mamba;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.SequenceClassification;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Mamba-1 language model (transformers' {@code MambaForCausalLM}, SPEC §2), read top to bottom:
 * weights, state, then the forward pass. Large matrices stay memory-mapped in their checkpoint dtype;
 * the residual stream and every activation are F32.
 *
 * <p>Shapes: L tokens, D = hidden, E = inner channels, N = state size, R = dt rank, K = conv taps, V = vocab.
 */
public final class MambaModel implements LanguageModel {

    /** One residual block's weights. Tensors are mapped views; float[] are small and widened at load. */
    record Layer(float[] norm,        // [D]
                 Tensor inProj,       // [2E, D]
                 float[] inProjBias,  // [2E] or null
                 SsmBranch ssm,       // conv, x_proj, dt_proj, A, D
                 Tensor outProj,      // [D, E]
                 float[] outProjBias) { // [D] or null
    }

    /** Per layer: the last K−1 conv inputs and the SSM state H. */
    public static final class State implements LanguageModel.State {
        final float[][] convWindow;   // [layers][(K−1)·E]
        final float[][] ssm;          // [layers][N·E]
        int position;

        State(MambaConfig c) {
            convWindow = new float[c.layers()][(c.convKernel() - 1) * c.intermediateSize()];
            ssm = new float[c.layers()][c.stateSize() * c.intermediateSize()];
        }

        @Override
        public int position() {
            return position;
        }
    }

    private final Path dir;
    private final MambaConfig config;
    private final Checkpoint checkpoint;
    private final Tensor embeddings;   // [V, D]
    private final Layer[] layers;
    private final float[] normF;       // [D]
    private final Tensor head;         // [O, D]: lm_head (the embeddings when tied), or a classifier's score
    private final int outputs;         // O = V for the LM, the number of labels for a classifier

    private MambaModel(Path dir, MambaConfig config, SequenceClassification classifier, Checkpoint checkpoint) {
        this.dir = dir;
        this.config = config;
        this.checkpoint = checkpoint;
        int V = config.vocabSize(), D = config.hiddenSize();
        embeddings = checkpoint.tensor("backbone.embeddings.weight", V, D);
        normF = checkpoint.tensor("backbone.norm_f.weight", D).toFloatArray();
        head = classifier != null ? checkpoint.tensor("score.weight", classifier.labels().size(), D)
                : config.tieWordEmbeddings() ? embeddings : checkpoint.tensor("lm_head.weight", V, D);
        outputs = head.dim(0);
        layers = new Layer[config.layers()];
        for (int i = 0; i < layers.length; i++) layers[i] = loadLayer("backbone.layers." + i + ".");
    }

    /** A MambaForCausalLM, or the backbone and score of a MambaForSequenceClassification (see {@link SequenceClassification}). */
    public static MambaModel load(Path dir) {
        ConfigFile file = ConfigFile.in(dir);
        MambaConfig config = MambaConfig.from(file);
        SequenceClassification classifier = SequenceClassification.from(file);
        return Checkpoint.openFor(dir, ck -> new MambaModel(dir, config, classifier, ck));
    }

    private Layer loadLayer(String p) {
        int D = config.hiddenSize(), E = config.intermediateSize();
        return new Layer(
                checkpoint.tensor(p + "norm.weight", D).toFloatArray(),
                checkpoint.tensor(p + "mixer.in_proj.weight", 2L * E, D),
                config.useBias() ? checkpoint.tensor(p + "mixer.in_proj.bias", 2L * E).toFloatArray() : null,
                SsmBranch.load(checkpoint, p + "mixer.", "", "A_log", config.useConvBias(), E, config.stateSize(),
                        config.timeStepRank(), config.convKernel()),
                checkpoint.tensor(p + "mixer.out_proj.weight", D, E),
                config.useBias() ? checkpoint.tensor(p + "mixer.out_proj.bias", D).toFloatArray() : null);
    }

    public MambaConfig config() {
        return config;
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public int outputs() {
        return outputs;
    }

    @Override
    public int layers() {
        return config.layers();
    }

    @Override
    public int eosTokenId() {
        return config.eosTokenId();
    }

    @Override
    public State newState() {
        return new State(config);
    }

    /** Prefill runs in chunks of this many tokens, so a prompt of any length needs bounded memory. */
    static final int PREFILL_CHUNK = 512;

    @Override
    public float[] forward(int[] ids, TraceRecorder trace) {
        checkIds(ids);
        checkFits(ids.length);
        float[] h = hidden(ids, newState(), trace);
        float[] logits = new float[ids.length * outputs];                 // [L, O]
        MatMul.matmul(logits, 0, outputs, h, 0, config.hiddenSize(), ids.length, head, null);
        return logits;
    }

    @Override
    public float[] prefill(int[] ids, LanguageModel.State state) {
        checkIds(ids);                      // all of them first: a bad id must not leave the state half-advanced
        float[] h = null;
        int last = 0;
        for (int from = 0; from < ids.length; from += PREFILL_CHUNK) {
            int[] chunk = Arrays.copyOfRange(ids, from, Math.min(ids.length, from + PREFILL_CHUNK));
            h = hidden(chunk, (State) state, null);
            last = chunk.length - 1;
        }
        float[] logits = new float[outputs];
        MatMul.matvec(logits, 0, h, last * config.hiddenSize(), head, null);
        return logits;
    }

    private void checkIds(int[] ids) {
        LanguageModel.checkIds(ids, config.vocabSize());
    }

    /** A whole-sequence forward holds [L, V] logits and a dozen [L, E] activations at once. */
    private void checkFits(int tokens) {
        long bytes = 4L * tokens * (outputs + 14L * config.intermediateSize() + 4L * config.hiddenSize());
        long heap = Runtime.getRuntime().maxMemory();
        if (bytes > heap * 3 / 4) {
            throw new IllegalArgumentException(String.format("%d tokens need about %.1f GiB for the logits and activations of a "
                    + "whole-sequence forward, more than the %.1f GiB heap allows; use fewer tokens or a larger -Xmx",
                    tokens, bytes / 1073741824.0, heap / 1073741824.0));
        }
    }

    @Override
    public float[] step(int id, LanguageModel.State state) {
        return prefill(new int[]{id}, state);
    }

    /** RMSNorm_f of the residual stream after every block, [L, D], advancing {@code state} by L tokens. */
    private float[] hidden(int[] ids, State state, TraceRecorder trace) {
        return hidden(ids, state, trace, null);
    }

    /** As above; when {@code streams} is given, streams[i] receives the residual stream entering layer i and streams[layers] the last. */
    private float[] hidden(int[] ids, State state, TraceRecorder trace, float[][] streams) {
        int L = ids.length, D = config.hiddenSize();
        float[] x = new float[L * D];                                      // residual stream [L, D], F32
        for (int t = 0; t < L; t++) {
            for (int i = 0; i < D; i++) x[t * D + i] = embeddings.getFloat((long) ids[t] * D + i);
        }
        float[] xn = new float[L * D];
        for (int i = 0; i < layers.length; i++) {
            if (streams != null) streams[i] = x.clone();
            Elementwise.rmsnorm(xn, x, layers[i].norm(), config.eps(), L, D);
            float[] out = mixer(i, xn, L, state, trace);
            Elementwise.addInPlace(x, out, L * D);                         // h = x + Mixer(RMSNorm(x))
        }
        if (streams != null) streams[layers.length] = x.clone();
        Elementwise.rmsnorm(xn, x, normF, config.eps(), L, D);
        state.position += L;
        return xn;
    }

    /**
     * Mamba-Attribution's gradients for a prompt: back-propagates the logit of {@code token} at
     * {@code position} and records, for each wanted layer, the gradient with respect to the residual
     * stream entering it [L, D]. Layers are recomputed one at a time on the way back. Returns that
     * position's logits [V].
     */
    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        checkIds(ids);
        checkFits(ids.length);
        if (position < 0 || position >= ids.length) throw new IllegalArgumentException("position " + position + " is outside the prompt [0, " + ids.length + ")");
        LanguageModel.checkOutput(token, outputs);
        int L = ids.length, D = config.hiddenSize(), E = config.intermediateSize();
        float[][] streams = new float[layers.length + 1][];
        float[] h = hidden(ids, newState(), trace, streams);
        float[] logits = new float[outputs];
        MatMul.matvec(logits, 0, h, position * D, head, null);

        float[] dOut = new float[D];                                       // ∂logit/∂RMSNorm_f(x)[position] = the head's row
        for (int j = 0; j < D; j++) dOut[j] = head.getFloat((long) token * D + j);
        float[] grad = new float[L * D], dRow = new float[D];
        Backward.rmsnorm(dRow, dOut, Arrays.copyOfRange(streams[layers.length], position * D, (position + 1) * D), normF, config.eps(), 1, D);
        System.arraycopy(dRow, 0, grad, position * D, D);

        float[] xn = new float[L * D], dXn = new float[L * D], dStream = new float[L * D];
        for (int i = layers.length - 1; i >= 0; i--) {                     // x_{i+1} = x_i + mixer(norm(x_i))
            Layer w = layers[i];
            Elementwise.rmsnorm(xn, streams[i], w.norm(), config.eps(), L, D);
            float[] xz = new float[L * 2 * E];
            MatMul.matmul(xz, 0, 2 * E, xn, 0, D, L, w.inProj(), w.inProjBias());
            float[] dy = new float[L * E];
            Backward.linear(dy, grad, L, w.outProj());
            Backward.linear(dXn, w.ssm().backward(xz, L, dy), L, w.inProj());
            Backward.rmsnorm(dStream, dXn, streams[i], w.norm(), config.eps(), L, D);
            Elementwise.addInPlace(grad, dStream, L * D);
            trace.recordResidualGradient(i, grad::clone);
            streams[i + 1] = null;
        }
        trace.recordInputGradient(grad);                                   // the embeddings are layer 0's input
        return logits;
    }

    /** Mixer(v) of SPEC §2 for L tokens: in_proj, the SSM branch (conv … gate), out_proj. */
    private float[] mixer(int i, float[] v, int L, State state, TraceRecorder trace) {
        Layer w = layers[i];
        int D = config.hiddenSize(), E = config.intermediateSize();
        float[] xz = new float[L * 2 * E];                                 // [L, 2E]: x' = [:, :E], z = [:, E:]
        MatMul.matmul(xz, 0, 2 * E, v, 0, D, L, w.inProj(), w.inProjBias());
        float[] y = w.ssm().run(xz, L, state.convWindow[i], state.ssm[i], trace, i, TraceRecorder.Direction.FORWARD);
        float[] out = new float[L * D];                                    // out_proj [L, D]
        MatMul.matmul(out, 0, D, y, 0, E, L, w.outProj(), w.outProjBias());
        return out;
    }

    @Override
    public void close() {
        checkpoint.close();
    }

    @Override
    public String toString() {
        return "Mamba " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "E=" + config.intermediateSize(),
                "N=" + config.stateSize(), "R=" + config.timeStepRank(), "K=" + config.convKernel(), "V=" + config.vocabSize(),
                outputs == config.vocabSize() ? "LM head" : outputs + " labels")
                + " from " + dir;
    }
}
