package org.mambalens.engine.model.mamba;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.model.BackendLanguageModel;
import org.mambalens.engine.model.SequenceClassification;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;

import static org.mambalens.engine.backend.CpuBackend.array;

/**
 * Mamba-1 language model (transformers' {@code MambaForCausalLM}, DESIGN §2), read top to bottom:
 * weights, state, then the forward pass, written once over a {@link Backend} (the CPU's Vector API
 * kernels or a CUDA GPU). Large matrices stay in their checkpoint dtype on the CPU (memory-mapped) and
 * are uploaded once to a GPU; the residual stream and every activation are F32.
 *
 * <p>Shapes: L tokens, D = hidden, E = inner channels, N = state size, R = dt rank, K = conv taps,
 * P = R + 2N, V = vocab, O = outputs (V, or a classifier's labels).
 */
public final class MambaModel extends BackendLanguageModel<MambaModel.State> {

    /** One residual block's weights; optional ones are null. */
    record Layer(Buffer norm,         // [D]
                 Matrix inProj,       // [2E, D]
                 Buffer inProjBias,   // [2E]
                 SsmBranch ssm,       // conv, x_proj, dt_proj, A, D
                 Matrix outProj,      // [D, E]
                 Buffer outProjBias) { // [D]
    }

    /**
     * Per layer and sequence: the last K−1 conv inputs and the SSM state, in the backend's memory. A batch's state
     * holds several sequences side by side and steps them together; {@link #sequence} is one of them alone.
     */
    public static final class State extends DecodeState {
        private final Buffer windows, states;   // [layers, batch, (K−1)·E], [layers, batch, E·N]: one allocation each
        private final int windowSize, stateSize, batch, first, count;

        State(Backend backend, MambaConfig c, int batch) {
            int E = c.intermediateSize();
            windowSize = Math.max(1, c.convKernel() - 1) * E;
            stateSize = c.stateSize() * E;
            this.batch = batch;
            first = 0;
            count = batch;
            windows = backend.allocate((long) c.layers() * batch * windowSize);
            states = backend.allocate((long) c.layers() * batch * stateSize);
        }

        private State(State whole, int index) {
            windows = whole.windows;
            states = whole.states;
            windowSize = whole.windowSize;
            stateSize = whole.stateSize;
            batch = whole.batch;
            first = index;
            count = 1;
        }

        /** The windows of this state's sequences in layer {@code layer}: [sequences, K−1, E]. */
        Buffer convWindow(int layer) {
            return windows.at(((long) layer * batch + first) * windowSize);
        }

        /** Their SSM states: [sequences, E, N]. */
        Buffer ssm(int layer) {
            return states.at(((long) layer * batch + first) * stateSize);
        }

        @Override
        public int sequences() {
            return count;
        }

        @Override
        protected State sequence(int index) {
            if (index < 0 || index >= count) throw new IndexOutOfBoundsException("sequence " + index + " of a batch of " + count);
            return count == 1 && batch == 1 ? this : new State(this, index);
        }

        @Override
        protected void clear(Backend backend) {
            if (count != batch) throw new IllegalStateException("only a whole state is cleared");
            backend.fill(windows, windows.size(), 0f);
            backend.fill(states, states.size(), 0f);
        }
    }

    private final Path dir;
    private final MambaConfig config;
    private final Layer[] layers;
    private final Buffer normF;        // [D]

    private MambaModel(Path dir, MambaConfig config, SequenceClassification classifier, Checkpoint checkpoint, Backend backend) {
        int V = config.vocabSize(), D = config.hiddenSize();
        Tensor table = checkpoint.tensor("backbone.embeddings.weight", V, D);
        Tensor head = classifier != null ? classifier.score(checkpoint, D) : config.tieWordEmbeddings() ? table : checkpoint.tensor("lm_head.weight", V, D);
        super(checkpoint, backend, backend.table(table, V, D), backend.matrix(head, head.dim(0), D), classifier, V, D, config.layers(), config.eosTokenId());
        this.dir = dir;
        this.config = config;
        normF = backend.constant(checkpoint.tensor("backbone.norm_f.weight", D).toFloatArray());
        layers = new Layer[config.layers()];
        for (int i = 0; i < layers.length; i++) layers[i] = loadLayer("backbone.layers." + i + ".");
    }

    /** A MambaForCausalLM, or the backbone and score of a MambaForSequenceClassification (see {@link SequenceClassification}), on {@code backend}. */
    public static MambaModel load(Path dir, Backend backend) {
        ConfigFile file = ConfigFile.in(dir);
        MambaConfig config = MambaConfig.from(file);
        SequenceClassification classifier = SequenceClassification.from(file);
        return Checkpoint.openFor(dir, ck -> new MambaModel(dir, config, classifier, ck, backend));
    }

    /** On the CPU. */
    public static MambaModel load(Path dir) {
        return load(dir, CpuBackend.INSTANCE);
    }

    private Layer loadLayer(String p) {
        int D = config.hiddenSize(), E = config.intermediateSize();
        Checkpoint ck = checkpoint;
        return new Layer(
                backend.constant(ck.tensor(p + "norm.weight", D).toFloatArray()),
                backend.matrix(ck.tensor(p + "mixer.in_proj.weight", 2L * E, D), 2 * E, D),
                config.useBias() ? backend.constant(ck.tensor(p + "mixer.in_proj.bias", 2L * E).toFloatArray()) : null,
                SsmBranch.load(backend, ck, p + "mixer.", "", "A_log", config.useConvBias(), E, config.stateSize(),
                        config.timeStepRank(), config.convKernel()),
                backend.matrix(ck.tensor(p + "mixer.out_proj.weight", D, E), D, E),
                config.useBias() ? backend.constant(ck.tensor(p + "mixer.out_proj.bias", D).toFloatArray()) : null);
    }

    public MambaConfig config() {
        return config;
    }

    @Override
    protected State freshState() {
        return new State(backend, config, 1);
    }

    @Override
    protected State freshBatch(int size) {
        return new State(backend, config, size);
    }

    /** A whole-sequence forward holds [L, O] logits and a dozen [L, E] activations at once. */
    @Override
    protected void checkFits(int tokens) {
        long bytes = 4L * tokens * (outputs() + 14L * config.intermediateSize() + 4L * config.hiddenSize());
        long heap = Runtime.getRuntime().maxMemory();
        if (bytes > heap * 3 / 4) {
            throw new IllegalArgumentException(String.format("%d tokens need about %.1f GiB for the logits and activations of a "
                    + "whole-sequence forward, more than the %.1f GiB heap allows; use fewer tokens or a larger -Xmx",
                    tokens, bytes / 1073741824.0, heap / 1073741824.0));
        }
    }

    @Override
    protected void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, Buffer logits, int firstRow, int rows) {
        blocks(f, x, L, state, trace, null, logits, firstRow, rows);
    }

    /**
     * The blocks over the L embedded tokens in x [L, D] (the residual stream, F32), continuing from and
     * updating {@code state}, then RMSNorm_f and the head for rows [firstRow, firstRow + rows) into
     * logits [rows, O]. Each block is x = x + Mixer(RMSNorm(x)). The rows are B = state.sequences()
     * sequences of L / B tokens (a batch's decode step: one token each).
     * When {@code streams} is given, streams[i] receives the stream entering layer i and streams[layers] the last.
     * Hidden states as transformers' MambaModel returns them: each layer's output, then norm_f's.
     */
    private void blocks(Backend.Frame f, Buffer x, int L, State state, TraceRecorder trace, float[][] streams,
                        Buffer logits, int firstRow, int rows) {
        int D = config.hiddenSize(), E = config.intermediateSize(), B = state.sequences();
        float eps = config.eps();
        Buffer normed = f.floats((long) L * D);                                    // RMSNorm(x) [L, D]
        Buffer xz = f.floats((long) L * 2 * E), y = f.floats((long) L * E);        // in_proj [L, 2E]: x' | z; gated scan output [L, E]
        for (int i = 0; i < layers.length; i++) {
            Layer w = layers[i];
            if (streams != null) streams[i] = backend.read(x, L * D);
            backend.rmsnormLinear(xz, 2 * E, x, w.norm(), eps, normed, L, D, w.inProj(), w.inProjBias());
            Matrix[] upcoming = i + 1 < layers.length ? new Matrix[]{w.outProj(), layers[i + 1].inProj()} : new Matrix[]{w.outProj()};
            w.ssm().run(new SsmBranch.Run(f, state.convWindow(i), state.ssm(i), trace, i, TraceRecorder.Direction.FORWARD, upcoming),
                    y, xz, B, L / B, false, false);
            backend.linearAdd(x, D, y, E, L, w.outProj(), w.outProjBias());
            recordHiddenState(trace, "layer " + i, x, L);
        }
        if (streams != null) streams[layers.length] = backend.read(x, L * D);
        backend.rmsnorm(normed.at((long) firstRow * D), x.at((long) firstRow * D), normF, rows, D, eps);
        recordHiddenState(trace, "norm_f", normed, L);
        backend.linear(logits, outputs(), normed.at((long) firstRow * D), D, rows, head, null);
    }

    /**
     * Mamba-Attribution's gradients for a prompt: back-propagates the logit of {@code token} at
     * {@code position} and records, for each wanted layer, the gradient with respect to the residual
     * stream entering it [L, D]. Layers are recomputed one at a time on the way back. Returns that
     * position's logits [O]. On a GPU the forward runs there and the reverse on this checkpoint's CPU view.
     */
    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        checkExplained(ids, position, token);
        if (backend.isGpu()) return cpuView(cpu -> new MambaModel(dir, config, classifier, checkpoint, cpu)).forwardWithGradients(ids, position, token, trace);
        int L = ids.length, D = config.hiddenSize(), E = config.intermediateSize();
        float[][] streams = new float[layers.length + 1][];
        float[] x = new float[L * D], normed = new float[L * D], logits = new float[outputs()];
        backend.embed(CpuBackend.wrap(x), embeddings, ids);
        blocks(backend.frame(), CpuBackend.wrap(x), L, new State(backend, config, 1), trace, streams, CpuBackend.wrap(logits), position, 1);
        Tensor headWeight = CpuBackend.tensor(head);

        float[] dOut = new float[D];                                       // ∂logit/∂RMSNorm_f(x)[position] = the head's row
        for (int j = 0; j < D; j++) dOut[j] = headWeight.getFloat((long) token * D + j);
        float[] grad = new float[L * D], dRow = new float[D];
        Backward.rmsnorm(dRow, dOut, Arrays.copyOfRange(streams[layers.length], position * D, (position + 1) * D), array(normF), config.eps(), 1, D);
        System.arraycopy(dRow, 0, grad, position * D, D);

        float[] dXn = new float[L * D], dStream = new float[L * D];
        for (int i = layers.length - 1; i >= 0; i--) {                     // x_{i+1} = x_i + mixer(norm(x_i))
            Layer w = layers[i];
            Elementwise.rmsnorm(normed, streams[i], array(w.norm()), config.eps(), L, D);
            float[] xz = new float[L * 2 * E];
            MatMul.matmul(xz, 0, 2 * E, normed, 0, D, L, CpuBackend.tensor(w.inProj()), w.inProjBias() == null ? null : array(w.inProjBias()));
            float[] dy = new float[L * E];
            Backward.linear(dy, grad, L, CpuBackend.tensor(w.outProj()));
            Backward.linear(dXn, w.ssm().backward(xz, L, dy), L, CpuBackend.tensor(w.inProj()));
            Backward.rmsnorm(dStream, dXn, streams[i], array(w.norm()), config.eps(), L, D);
            Elementwise.addInPlace(grad, dStream, L * D);
            trace.recordResidualGradient(i, grad::clone);
            streams[i + 1] = null;
        }
        trace.recordInputGradient(grad);                                   // the embeddings are layer 0's input
        return logits;
    }

    @Override
    public String toString() {
        return "Mamba " + Arrays.asList(config.layers() + " layers", "D=" + config.hiddenSize(), "E=" + config.intermediateSize(),
                "N=" + config.stateSize(), "R=" + config.timeStepRank(), "K=" + config.convKernel(), "V=" + config.vocabSize(),
                headName())
                + (backend.isGpu() ? " on " + backend : "") + " from " + dir;
    }
}
