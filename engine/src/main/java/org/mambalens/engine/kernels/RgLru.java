package org.mambalens.engine.kernels;

/**
 * Griffin's real-gated linear recurrent unit (RG-LRU) over T tokens of W channels, in H gate blocks of
 * bw = W/H channels (the gates are block-diagonal):
 * <pre>
 *   r_t = σ(x_t·W_a + b_a),  i_t = σ(x_t·W_x + b_x)           (per block: x_t's bw channels times a [bw in, bw out] matrix)
 *   log a_t = −8·r_t·softplus(Λ),  h_t = a_t ⊙ h_{t−1} + √(1 − a_t²) ⊙ i_t ⊙ x_t
 *   (position 0 resets: h_0 = i_0 ⊙ x_0)
 * </pre>
 */
public final class RgLru {
    private RgLru() {
    }

    /** The gate weights [H, bw, bw] (in, out) and biases [W], and softplus(Λ) [W]. */
    public record Weights(float[] inputGate, float[] inputGateBias, float[] recurrentGate, float[] recurrentGateBias,
                          float[] softplusLambda) {
    }

    /**
     * Runs the recurrence over x (rows ldx apart from xOff), continuing from and updating h [W]; the first token
     * is at {@code position}. y [T, W] (from yOff) receives h_t; a and b [T, W] (may be null; from aOff, bOff)
     * receive a_t and the input factor i_t·√(1 − a_t²) (i_t alone at position 0). Blocks run in parallel.
     */
    public static void scan(float[] y, int yOff, float[] x, int xOff, int ldx, Weights w, float[] h, float[] a, int aOff,
                            float[] b, int bOff, int tokens, int width, int blockWidth, int position) {
        int T = tokens, W = width, bw = blockWidth, blocks = W / bw;
        float[] ig = w.inputGate(), rg = w.recurrentGate(), lambda = w.softplusLambda();
        Parallel.forRange(blocks, (long) T * bw * bw >= 1 << 15 ? 1 : blocks, (b0, b1) -> {
            float[] inputPre = new float[bw], recurrentPre = new float[bw];
            for (int block = b0; block < b1; block++) {
                int c0 = block * bw;
                for (int t = 0; t < T; t++) {
                    boolean reset = position + t == 0;
                    System.arraycopy(w.inputGateBias(), c0, inputPre, 0, bw);          // x_t's block times the block's [in, out] matrix
                    System.arraycopy(w.recurrentGateBias(), c0, recurrentPre, 0, bw);
                    for (int in = 0; in < bw; in++) {
                        float v = x[xOff + t * ldx + c0 + in];
                        int row = (c0 + in) * bw;
                        for (int o = 0; o < bw; o++) {
                            inputPre[o] += v * ig[row + o];
                            recurrentPre[o] += v * rg[row + o];
                        }
                    }
                    for (int o = 0; o < bw; o++) {
                        int c = c0 + o, k = t * W + c;
                        float i = Scalar.sigmoid(inputPre[o]), logA = -8f * Scalar.sigmoid(recurrentPre[o]) * lambda[c];
                        float at = (float) Math.exp(logA), multiplier = reset ? 1f : (float) Math.sqrt(1 - (float) Math.exp(2 * logA));
                        h[c] = (reset ? 0f : at * h[c]) + x[xOff + t * ldx + c] * i * multiplier;
                        y[yOff + k] = h[c];
                        if (a != null) a[aOff + k] = at;
                        if (b != null) b[bOff + k] = i * multiplier;
                    }
                }
            }
        });
    }
}
