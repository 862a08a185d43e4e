package org.mambalens.engine.trace;

/**
 * One RWKV-4 time-mix layer's recorded tensors for L tokens and A channels.
 *
 * @param r     the receptance gate σ(W_r·x_r) [L, A]
 * @param k     keys [L, A]
 * @param v     values [L, A]
 * @param gated σ(r) ⊙ WKV, what the output projection reads [L, A]
 * @param decay w = −exp(time_decay) [A]
 * @param bonus u = time_first [A]
 */
public record RwkvTrace(int length, int channels, float[] r, float[] k, float[] v, float[] gated, float[] decay, float[] bonus) implements LayerTrace {
}
