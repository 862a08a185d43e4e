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
 */
public record SsdTrace(int length, int heads, int headDim, int groups, int stateSize,
                       float[] delta, float[] b, float[] c, float[] x, float[] z, float[] y, float[] a, float[] d) {
    /** The group whose B and C head h reads. */
    public int group(int head) {
        return head / (heads / groups);
    }
}
