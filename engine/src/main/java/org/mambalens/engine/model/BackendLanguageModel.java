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
 * around the family's own {@link #blocks}, the head (the LM's over the vocabulary, or a sequence
 * classifier's score over its labels), and closing the backend and checkpoint. A family supplies its
 * state and its blocks (embedded tokens in, logits of some rows out).
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

        /** Drops the captured step: what it reads or writes has moved (a cache that grew); the next step captures afresh. */
        protected void forgetStep() {
            step.hold(null);
        }

        /** Sets the family's buffers to the start of a sequence, as a fresh state has them. */
        protected abstract void clear(Backend backend);

        /** The sequences this state advances together: 1, or a batch's (a step's rows are theirs, one token each). */
        public int sequences() {
            return 1;
        }

        /** Sequence {@code index} of a batch's state, as a state of its own sharing its buffers (see {@link #freshBatch}). */
        protected DecodeState sequence(int index) {
            throw new UnsupportedOperationException("a state of one sequence");
        }
    }

    /**
     * A batch whose sequences are the rows of a few states ({@code groups}, each covering the next {@code group.sequences()}
     * of them), each group stepped by one replayed pass.
     */
    private record SharedBatch(BackendLanguageModel<?> model, DecodeState[] groups, DecodeState[] sequences) implements Batch {
        @Override
        public int size() {
            return sequences.length;
        }

        @Override
        public State sequence(int index) {
            return sequences[index];
        }
    }

    protected final Checkpoint checkpoint;
    protected final Backend backend;
    protected final Matrix embeddings;     // [V, D], F32: rows are gathered
    protected final Matrix head;           // [O, D]: the LM head (O = V), or a classifier's score.weight (O = labels)
    protected final SequenceClassification classifier;   // null for a causal LM
    private final int vocabSize, hiddenSize, layers, eosTokenId;
    private S forwardState;                // on a GPU: reused by every forward(), which then allocates no device memory
    private LanguageModel cpuView;         // on a GPU: this checkpoint on the CPU backend, for the reverse pass

    protected BackendLanguageModel(Checkpoint checkpoint, Backend backend, Matrix embeddings, Matrix head, SequenceClassification classifier,
                                   int vocabSize, int hiddenSize, int layers, int eosTokenId) {
        this.checkpoint = checkpoint;
        this.backend = backend;
        this.embeddings = embeddings;
        this.head = head;
        this.classifier = classifier;
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

    /**
     * A state for {@code size} sequences whose blocks take B = size rows of one token each (see {@link DecodeState#sequences}),
     * or null where the family steps a batch one sequence at a time (the default).
     */
    protected S freshBatch(int size) {
        return null;
    }

    /** Refuses a whole-sequence pass of this many tokens that would not fit in memory; nothing by default. */
    protected void checkFits(int tokens) {
    }

    /** Refuses {@code tokens} more after {@code cached} positions when the model has no positions for them; nothing by default. */
    protected void checkPositions(int cached, int tokens) {
    }

    /**
     * Makes ready, before a decode step, what its replayed work cannot do itself ({@link Backend#replayAt}): a cache
     * that must grow for one more position. Nothing by default.
     */
    protected void prepareStep(S state) {
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

    /** The head's rows: the vocabulary of a causal LM, the labels of a classifier. */
    @Override
    public int outputs() {
        return head.rows();
    }

    /** What the head scores, for toString: "LM head", or a classifier's "N labels". */
    protected final String headName() {
        return classifier == null ? "LM head" : outputs() + " labels";
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

    /** One token, through the state's replay slot at its position ({@link Backend#replayAt}: a GPU replays one captured graph). */
    @Override
    @SuppressWarnings("unchecked")
    public float[] step(int id, State state) {
        checkIds(new int[]{id});
        S st = (S) state;
        checkPositions(st.position(), 1);
        int outputs = outputs();
        return backend.call(() -> {
            try (Backend.Frame f = backend.frame()) {
                Buffer x = f.floats(hiddenSize), out = f.floats(outputs);
                embed(x, new int[]{id});
                DecodeState d = st;
                prepareStep(st);
                backend.replayAt(d.step, d.position, () -> blocks(f, x, 1, st, null, out, 0, 1));
                d.position++;
                return backend.read(out, outputs);
            }
        });
    }

    /**
     * A batch of states that share one pass per group of up to {@link Backend#rowsAlikeAlone} sequences, where the family
     * has batch states ({@link #freshBatch}) and the backend computes such rows as it computes one; else independent states.
     */
    @Override
    public Batch newBatch(int size) {
        int group = backend.rowsAlikeAlone();
        S head = size >= 1 && group > 1 ? backend.call(() -> freshBatch(Math.min(group, size))) : null;
        if (head == null) return LanguageModel.super.newBatch(size);
        DecodeState[] groups = new DecodeState[(size + group - 1) / group], sequences = new DecodeState[size];
        for (int g = 0; g < groups.length; g++) {
            int first = g * group, count = Math.min(group, size - first);
            groups[g] = g == 0 ? head : backend.call(() -> freshBatch(count));
            for (int i = 0; i < count; i++) sequences[first + i] = groups[g].sequence(i);
        }
        return new SharedBatch(this, groups, sequences);
    }

    /**
     * A batch made by {@link #newBatch}: each group's rows through one pass, replayed on a GPU; a finished sequence's row
     * runs on a placeholder token. Every row's arithmetic is that of a single sequence's step, so each gets its own logits.
     */
    @Override
    public float[] step(int[] ids, Batch batch) {
        if (!(batch instanceof SharedBatch shared) || shared.model() != this) return LanguageModel.super.step(ids, batch);
        int outputs = outputs();
        float[] logits = new float[Math.multiplyExact(ids.length, outputs)];
        stepShared(ids, shared, (out, first, rows) -> System.arraycopy(backend.read(out, rows * outputs), 0, logits, first * outputs, rows * outputs));
        for (int i = 0; i < ids.length; i++) if (ids[i] < 0) Arrays.fill(logits, i * outputs, (i + 1) * outputs, 0f);
        return logits;
    }

    /** As {@link #step(int[], Batch)}, the two most likely tokens found where the logits are. */
    @Override
    public int[] stepTopTwo(int[] ids, Batch batch) {
        if (!(batch instanceof SharedBatch shared) || shared.model() != this) return LanguageModel.super.stepTopTwo(ids, batch);
        int outputs = outputs();
        int[] two = new int[2 * ids.length];
        stepShared(ids, shared, (out, first, rows) -> System.arraycopy(backend.topTwo(out, rows, outputs), 0, two, 2 * first, 2 * rows));
        for (int i = 0; i < ids.length; i++) if (ids[i] < 0) two[2 * i] = two[2 * i + 1] = -1;
        return two;
    }

    /** What a batch step keeps of a group's logits [rows, outputs] (in the backend's memory) for sequences [first, first + rows). */
    @FunctionalInterface
    private interface GroupLogits {
        void take(Buffer logits, int first, int rows);
    }

    @SuppressWarnings("unchecked")
    private void stepShared(int[] ids, SharedBatch shared, GroupLogits take) {
        if (ids.length != shared.size()) throw new IllegalArgumentException(ids.length + " ids for a batch of " + shared.size());
        int[] fed = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            fed[i] = Math.max(ids[i], 0);
            if (ids[i] >= 0) checkPositions(shared.sequence(i).position(), 1);
        }
        checkIds(fed);
        int outputs = outputs(), first = 0;
        for (DecodeState group : shared.groups()) {
            S whole = (S) group;
            int B = group.sequences(), from = first;
            backend.call(() -> {
                try (Backend.Frame f = backend.frame()) {
                    Buffer x = f.floats((long) B * hiddenSize), out = f.floats((long) B * outputs);
                    embed(x, Arrays.copyOfRange(fed, from, from + B));
                    backend.replay(group.step, () -> blocks(f, x, B, whole, null, out, 0, B));
                    take.take(out, from, B);
                    return null;
                }
            });
            first += B;
        }
        for (int i = 0; i < ids.length; i++) if (ids[i] >= 0) ((DecodeState) shared.sequence(i)).position++;
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
    protected final float[] outputGradient(int output, int position, int L) {
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
