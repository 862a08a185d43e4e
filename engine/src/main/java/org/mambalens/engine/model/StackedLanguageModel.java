package org.mambalens.engine.model;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.TraceRecorder;

/**
 * What every stacked language model shares: the head over the final hidden states, the id checks, and
 * prefill/step through the model's own state. A model supplies {@link #hidden}: its embedding, blocks
 * and final norm for L tokens, continuing from a state.
 */
public abstract class StackedLanguageModel implements LanguageModel {
    protected final Checkpoint checkpoint;
    private final Tensor head;              // [O, D]: the LM head, or a classifier's score
    private final int vocabSize, outputs, hiddenSize, layers, eosTokenId;

    protected StackedLanguageModel(Checkpoint checkpoint, int vocabSize, Tensor head, int hiddenSize, int layers, int eosTokenId) {
        this.checkpoint = checkpoint;
        this.head = head;
        this.vocabSize = vocabSize;
        this.outputs = head.dim(0);
        this.hiddenSize = hiddenSize;
        this.layers = layers;
        this.eosTokenId = eosTokenId;
    }

    /** The final-normed hidden states [L, D] of {@code ids}, continuing from and advancing {@code state}; traced when asked. */
    protected abstract float[] hidden(int[] ids, State state, TraceRecorder trace);

    /** The rows of {@code embeddings} [V, D] for the ids, [L, D] in F32. */
    protected static float[] embed(Tensor embeddings, int[] ids) {
        int D = embeddings.dim(1);
        float[] x = new float[ids.length * D];
        for (int t = 0; t < ids.length; t++) {
            for (int i = 0; i < D; i++) x[t * D + i] = embeddings.getFloat((long) ids[t] * D + i);
        }
        return x;
    }

    /** Checks that {@code ids} may follow what {@code state} has seen (beyond the vocabulary check); nothing by default. */
    protected void checkPositions(int[] ids, State state) {
    }

    /** What a family's head does after the matrix product (Griffin's soft cap); nothing by default. */
    protected void finishLogits(float[] logits) {
    }

    /** The output head [O, D]. */
    protected Tensor head() {
        return head;
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public int outputs() {
        return outputs;
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
    public float[] forward(int[] ids, TraceRecorder trace) {
        LanguageModel.checkIds(ids, vocabSize);
        State state = newState();
        checkPositions(ids, state);
        float[] h = hidden(ids, state, trace);
        float[] logits = new float[ids.length * outputs];                  // [L, O]
        MatMul.matmul(logits, 0, outputs, h, 0, hiddenSize, ids.length, head, null);
        finishLogits(logits);
        return logits;
    }

    @Override
    public float[] prefill(int[] ids, State state) {
        LanguageModel.checkIds(ids, vocabSize);
        checkPositions(ids, state);
        float[] h = hidden(ids, state, null);
        float[] logits = new float[outputs];
        MatMul.matvec(logits, 0, h, (ids.length - 1) * hiddenSize, head, null);
        finishLogits(logits);
        return logits;
    }

    @Override
    public float[] step(int id, State state) {
        return prefill(new int[]{id}, state);
    }

    /** A family without a reverse pass says so; those with one override this. */
    @Override
    public float[] forwardWithGradients(int[] ids, int position, int token, TraceRecorder trace) {
        throw new UnsupportedOperationException("the reverse pass (attribution) is not implemented for " + this + " yet");
    }

    @Override
    public void close() {
        checkpoint.close();
    }
}
