package org.mambalens.engine.trace;

/**
 * The softmax attention probabilities of one Transformer layer for one input.
 *
 * @param probs [heads, T, T], row t holding the weights query t gives every key
 */
public record AttentionTrace(int heads, int tokens, float[] probs) implements LayerTrace {
    public float prob(int head, int query, int key) {
        return probs[(head * tokens + query) * tokens + key];
    }
}
