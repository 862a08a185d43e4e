package org.mambalens.engine.trace;

/**
 * One Griffin recurrent block's recorded tensors for L tokens and W channels: the RG-LRU
 * h_t = a_t ⊙ h_{t−1} + b_t ⊙ x_t (h_{−1} = 0), and the GeLU branch that gates its output.
 *
 * @param a    the recurrence a_t = exp(−8·σ(W_a·x_t + b_a)·softplus(Λ)) [L, W]; a_0 is never used
 * @param b    the input weight b_t = σ(W_x·x_t + b_x)·√(1 − a_t²) [L, W] (without the square root at position 0)
 * @param x    the conv output, the RG-LRU's input [L, W]
 * @param h    the RG-LRU output [L, W]
 * @param gate gelu(linear_y(input)) [L, W]; the block's output is linear_out(h ⊙ gate)
 * @param convInput linear_x(input), the conv's input [L, W]
 * @param convTaps  the depthwise conv kernel [K, W], tap-major; {@code convBias} [W]
 */
public record LruTrace(int length, int channels, float[] a, float[] b, float[] x, float[] h, float[] gate,
                       float[] convInput, float[] convTaps, float[] convBias) implements LayerTrace {
}
