package org.mambalens.engine.trace;

/**
 * One Mamba-2 mixer's recorded tensors for L tokens: H heads of P channels, G groups of N states.
 *
 * @param delta Δ after softplus and clamping [L, H]
 * @param b     B [L, G·N]
 * @param c     C [L, G·N]
 * @param x     the scan input (conv then SiLU) [L, H·P]
 * @param z     the gate [L, H·P]
 * @param y     the scan output before the gated norm, SSD(x) + D·x [L, H·P]
 * @param a     A = −exp(A_log) [H]
 * @param d     D [H]
 * @param conv  the x channels' conv: its input x' [L, H·P], output s before SiLU [L, H·P], taps [K, H·P] and bias [H·P] (or null)
 * @param norm  the gated RMSNorm: weight [H·P], eps, and its output RMSNorm(y ⊙ silu(z)) [L, H·P]
 */
public record SsdTrace(int length, int heads, int headDim, int groups, int stateSize,
                       float[] delta, float[] b, float[] c, float[] x, float[] z, float[] y, float[] a, float[] d,
                       Conv conv, Norm norm) implements LayerTrace {
    /** The causal conv over the x channels. */
    public record Conv(float[] input, float[] output, float[] taps, float[] bias, int kernel) {
    }

    /** The gated RMSNorm after the scan. */
    public record Norm(float[] weight, float eps, float[] output) {
    }

    /** The group whose B and C head h reads. */
    public int group(int head) {
        return head / (heads / groups);
    }
}
