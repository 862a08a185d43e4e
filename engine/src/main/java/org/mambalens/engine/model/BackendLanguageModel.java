package org.mambalens.engine.model;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.backend.ReplaySlot;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.TraceRecorder;

import java.util.Arrays;

/**
 * What a language model written over a {@link Backend} shares: the id checks, the entry points (a
 * whole-sequence forward, prefill in bounded chunks, a decode step replayed through the state's slot)
 * around the family's own {@link #blocks}, and closing the backend and checkpoint. A family supplies
 * its state and its blocks (embedded tokens in, logits of some rows out).
 *
 * @param <S> the family's decoding state
 */
public abstract class BackendLanguageModel<S extends BackendLanguageModel.DecodeState> implements LanguageModel {

    /** Prefill runs in chunks of this many tokens, so a prompt of any length needs bounded memory. */
    public static final int PREFILL_CHUNK = 512;

    /** A decoding state's position and the decode step's replay; the family adds its buffers. */
    public abstract static class DecodeState implements LanguageModel.State {
        private final ReplaySlot step = new ReplaySlot();
        private int position;

        @Override
        public int position() {
            return position;
        }

        /** Sets the family's buffers to the start of a sequence, as a fresh state has them. */
        protected abstract void clear(Backend backend);
    }

    protected final Checkpoint checkpoint;
    protected final Backend backend;
    protected final Matrix embeddings;     // [V, D], F32: rows are gathered
    private final int vocabSize, hiddenSize, layers, eosTokenId;
    private S forwardState;                // on a GPU: reused by every forward(), which then allocates no device memory
    private LanguageModel cpuView;         // on a GPU: this checkpoint on the CPU backend, for the reverse pass

    protected BackendLanguageModel(Checkpoint checkpoint, Backend backend, Matrix embeddings, int vocabSize, int hiddenSize, int layers,
                                   int eosTokenId) {
        this.checkpoint = checkpoint;
        this.backend = backend;
        this.embeddings = embeddings;
        this.vocabSize = vocabSize;
        this.hiddenSize = hiddenSize;
        this.layers = layers;
        this.eosTokenId = eosTokenId;
    }

    /** A fresh state in the backend's memory (called inside {@link Backend#call}). */
    protected abstract S freshState();

    /**
     * The blocks over the L embedded tokens in x [L, D] (the residual stream), continuing from and
     * updating {@code state}, then the final norm and the head for rows [firstRow, firstRow + rows) into
     * logits [rows, outputs]; traced when {@code trace} is given (only {@link #forward} gives one).
     */
    protected abstract void blocks(Backend.Frame f, Buffer x, int L, S state, TraceRecorder trace, Buffer logits, int firstRow, int rows);

    /** Refuses a whole-sequence pass of this many tokens that would not fit in memory; nothing by default. */
    protected void checkFits(int tokens) {
    }

    /** Refuses {@code tokens} more after {@code cached} positions when the model has no positions for them; nothing by default. */
    protected void checkPositions(int cached, int tokens) {
    }

    /**
     * Whether a decode step's launches are the same every time (no position among their arguments), so that a
     * GPU captures them once and replays them; otherwise a step is a prefill of one token.
     */
    protected boolean stepReplays() {
        return true;
    }

    /**
     * Hands the trace, when it records hidden states, rows [0, L) of x [L, D] times {@code scale} as the next
     * hidden state, produced by {@code source} (a whole-sequence forward only: its rows are all the tokens).
     */
    protected final void recordHiddenState(TraceRecorder trace, String source, Buffer x, int L, float scale) {
        if (trace == null || !trace.recordsHiddenStates()) return;
        float[] h = backend.read(x, Math.multiplyExact(L, hiddenSize));
        if (scale != 1f) for (int j = 0; j < h.length; j++) h[j] *= scale;
        trace.recordHiddenState(source, L, () -> h);
    }

    protected final void recordHiddenState(TraceRecorder trace, String source, Buffer x, int L) {
        recordHiddenState(trace, source, x, L, 1f);
    }

    /** The residual stream of {@code ids} into x [L, D]: their embeddings (a family may scale them). */
    protected void embed(Buffer x, int[] ids) {
        backend.embed(x, embeddings, ids);
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public int layers() {
        return layers;
    }

    @Override
    public int eosTokenId() {
        return eosTokenId;
    }

    @Override
    public S newState() {
        return backend.call(this::freshState);
    }

    @Override
    public float[] forward(int[] ids, TraceRecorder trace) {
        checkIds(ids);
        checkPositions(0, ids.length);
        checkFits(ids.length);
        int outputs = outputs();
        return backend.call(() -> {
            int L = ids.length;
            try (Backend.Frame f = backend.frame()) {
                Buffer x = f.floats((long) L * hiddenSize), logits = f.floats((long) L * outputs);
                embed(x, ids);
                blocks(f, x, L, forwardState(), trace, logits, 0, L);
                return backend.read(logits, Math.multiplyExact(L, outputs));
            }
        });
    }

    @Override
    @SuppressWarnings("unchecked")
    public float[] prefill(int[] ids, State state) {
        checkIds(ids);                      // all of them first: a bad id must not leave the state half-advanced
        S st = (S) state;
        checkPositions(st.position(), ids.length);
        int outputs = outputs();
        return backend.call(() -> {
            float[] logits = null;
            for (int from = 0; from < ids.length; from += PREFILL_CHUNK) {
                int[] chunk = Arrays.copyOfRange(ids, from, Math.min(ids.length, from + PREFILL_CHUNK));
                try (Backend.Frame f = backend.frame()) {
                    Buffer x = f.floats((long) chunk.length * hiddenSize), out = f.floats(outputs);
                    embed(x, chunk);
                    blocks(f, x, chunk.length, st, null, out, chunk.length - 1, 1);
                    logits = backend.read(out, outputs);
                }
                ((DecodeState) st).position += chunk.length;
            }
            return logits;
        });
    }

    /** One token: replayed on a GPU when {@link #stepReplays}, else a prefill of one. */
    @Override
    @SuppressWarnings("unchecked")
    public float[] step(int id, State state) {
        if (!stepReplays()) return prefill(new int[]{id}, state);
        checkIds(new int[]{id});
        S st = (S) state;
        checkPositions(st.position(), 1);
        int outputs = outputs();
        return backend.call(() -> {
            try (Backend.Frame f = backend.frame()) {
                Buffer x = f.floats(hiddenSize), out = f.floats(outputs);
                embed(x, new int[]{id});
                DecodeState d = st;
                backend.replay(d.step, () -> blocks(f, x, 1, st, null, out, 0, 1));
                d.position++;
                return backend.read(out, outputs);
            }
        });
    }

    /** A state at the start of a sequence: a new one on the CPU (threads may share the model), the reused one on a GPU. */
    private S forwardState() {
        if (!backend.isGpu()) return freshState();
        if (forwardState == null) {
            forwardState = freshState();
        } else {
            forwardState.clear(backend);
            ((DecodeState) forwardState).position = 0;
        }
        return forwardState;
    }

    protected void checkIds(int[] ids) {
        LanguageModel.checkIds(ids, vocabSize);
    }

    /** Refuses a reverse pass that explains output {@code output} at {@code position} of {@code ids} when the forward would refuse them or either is out of range. */
    protected void checkExplained(int[] ids, int position, int output) {
        checkIds(ids);
        checkPositions(0, ids.length);
        checkFits(ids.length);
        if (position < 0 || position >= ids.length) throw new IllegalArgumentException("position " + position + " is outside the prompt [0, " + ids.length + ")");
        LanguageModel.checkOutput(output, outputs());
    }

    /**
     * On a GPU model, the same checkpoint on the CPU backend, opened once by {@code open}: where a reverse pass runs
     * (its kernels are the CPU's).
     */
    @SuppressWarnings("unchecked")
    protected final synchronized <M extends LanguageModel> M cpuView(java.util.function.Function<Backend, M> open) {
        if (cpuView == null) cpuView = open.apply(CpuBackend.INSTANCE);
        return (M) cpuView;
    }

    /** A family's blocks over the embedded tokens x [L, D], writing one row of logits, for {@link #forwardOnCpu}. */
    @FunctionalInterface
    protected interface Pass {
        void run(Backend.Frame f, Buffer x, int L, Buffer logits);
    }

    /** The forward pass that starts a reverse pass, on the CPU backend: {@code pass} over the embedded {@code ids}; returns its row of logits [O]. */
    protected float[] forwardOnCpu(int[] ids, Pass pass) {
        float[] x = new float[ids.length * hiddenSize], logits = new float[outputs()];
        embed(CpuBackend.wrap(x), ids);
        try (Backend.Frame f = backend.frame()) {
            pass.run(f, CpuBackend.wrap(x), ids.length, CpuBackend.wrap(logits));
        }
        return logits;
    }

    /** ∂logit/∂(head input) [L, D] for the logit of {@code output} at {@code position}: the head's row there, zeros elsewhere (CPU backend). */
    protected static float[] outputGradient(Matrix head, int output, int position, int L) {
        Tensor w = CpuBackend.tensor(head);
        int D = w.dim(1);
        float[] d = new float[L * D];
        for (int j = 0; j < D; j++) d[position * D + j] = w.getFloat((long) output * D + j);
        return d;
    }

    @Override
    public void close() {
        backend.closeWith(checkpoint::close);
    }
}
