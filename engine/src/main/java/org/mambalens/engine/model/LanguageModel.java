package org.mambalens.engine.model;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.TopTwo;
import org.mambalens.engine.trace.TraceRecorder;

/** A causal language model: logits for a prompt, then one token at a time from a recurrent state. */
public interface LanguageModel extends AutoCloseable {
    /** Per-sequence decoding state (for Mamba: each layer's conv window and SSM state). */
    interface State {
        /** Tokens consumed so far. */
        int position();
    }

    int vocabSize();

    /** Rows of the output head: the vocabulary for a causal LM, the labels for a sequence classifier's model. */
    default int outputs() {
        return vocabSize();
    }

    /** Blocks (Mamba layers or Transformer layers). */
    int layers();

    int eosTokenId();

    /** Positions the model can hold (prompt and generated tokens together): unbounded for the recurrent models. */
    default int maxPositions() {
        return Integer.MAX_VALUE;
    }

    /** Where this model computes. */
    default Backend backend() {
        return CpuBackend.INSTANCE;
    }

    /** Whether this model runs on a GPU (its explanations then sum their attention maps there too). */
    default boolean onGpu() {
        return backend().isGpu();
    }

    State newState();

    /** Logits [L, outputs] for every position of {@code ids}, from a fresh state, optionally traced. */
    float[] forward(int[] ids, TraceRecorder trace);

    /**
     * Runs {@code ids} from a fresh state (traced as {@link #forward} traces), then back-propagates the
     * logit of output {@code token} (a label for a classifier) at {@code position} and records in {@code trace}, for the layers it wants,
     * the gradient with respect to the residual stream entering each layer [L, D], and the input gradient [L, D]:
     * with respect to the input embeddings exactly as transformers takes them ({@code model(inputs_embeds=...)}:
     * Griffin's before its √D normaliser, RWKV's before blocks.0.pre_ln). Returns the logits [outputs] at {@code position}.
     */
    float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace);

    /**
     * ∂logits[position, target] / ∂inputs_embeds [L, D], the input embeddings exactly as transformers takes them
     * (see {@link #forwardWithGradients}); only for a family with a reverse pass.
     */
    default float[] inputGradient(int[] ids, int position, int target) {
        TraceRecorder trace = TraceRecorder.layers(java.util.Set.of());
        forwardWithGradients(ids, position, target, trace);
        return trace.inputGradient();
    }

    /** Consumes {@code ids} into {@code state}; returns the logits [vocab] after the last one. */
    float[] prefill(int[] ids, State state);

    /** Consumes one token into {@code state}; returns the logits [vocab] that follow it. */
    float[] step(int id, State state);

    /**
     * Sequences decoded together: each is a {@link State} of its own (prefill it alone, with {@link #prefill}), and
     * {@link #step(int[], Batch)} advances them all by one token at once.
     */
    interface Batch {
        int size();

        State sequence(int index);
    }

    /** A batch of {@code size} fresh sequences; by default, independent states stepped one after another. */
    default Batch newBatch(int size) {
        if (size < 1) throw new IllegalArgumentException("a batch of " + size + " sequences");
        State[] states = new State[size];
        for (int i = 0; i < size; i++) states[i] = newState();
        return new Batch() {
            @Override
            public int size() {
                return size;
            }

            @Override
            public State sequence(int index) {
                return states[index];
            }
        };
    }

    /**
     * One token for every sequence of {@code batch}: ids[i] for sequence i, or −1 for a finished sequence, which is
     * not continued afterwards (its state is then undefined). Returns logits [size, outputs], sequence i's from
     * i·outputs (zeros for a finished one); each sequence's are those it gets stepped alone.
     */
    default float[] step(int[] ids, Batch batch) {
        if (ids.length != batch.size()) throw new IllegalArgumentException(ids.length + " ids for a batch of " + batch.size());
        int outputs = outputs();
        float[] logits = new float[ids.length * outputs];
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] >= 0) System.arraycopy(step(ids[i], batch.sequence(i)), 0, logits, i * outputs, outputs);
        }
        return logits;
    }

    /**
     * As {@link #step(int[], Batch)} for a greedy decoder: per sequence its two most likely next tokens, [size, 2] as
     * {@link Backend#topTwo} gives them (−1, −1 for a finished sequence, or for logits that are not all finite), instead
     * of the logits, which then need not leave the device.
     */
    default int[] stepTopTwo(int[] ids, Batch batch) {
        int[] two = TopTwo.of(step(ids, batch), ids.length, outputs());
        for (int i = 0; i < ids.length; i++) if (ids[i] < 0) two[2 * i] = two[2 * i + 1] = -1;
        return two;
    }

    /** Refuses an output index outside the head's rows [0, outputs). */
    static void checkOutput(int output, int outputs) {
        if (output < 0 || output >= outputs) {
            throw new IllegalArgumentException("output " + output + " is outside the model's outputs [0, " + outputs + ") (its vocabulary, or a classifier's labels)");
        }
    }

    /** Refuses an empty prompt or an id outside [0, vocabSize), naming the id. */
    static void checkIds(int[] ids, int vocabSize) {
        if (ids.length == 0) throw new IllegalArgumentException("no tokens given");
        for (int id : ids) {
            if (id < 0 || id >= vocabSize) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + vocabSize + ")");
        }
    }

    @Override
    void close();
}
