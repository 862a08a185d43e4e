package org.mambalens.engine.trace;

/**
 * What one Mamba mixer computed over a sequence of {@code length} tokens, in one scan direction:
 * everything DESIGN §3–4 needs to rebuild its hidden and unified attention. Row-major, token first.
 *
 * @param delta Δ = softplus(dt_proj(δr)) [L, E]
 * @param b     B [L, N]
 * @param c     C [L, N]
 * @param s     conv output before SiLU, bias included [L, E]
 * @param u     u = silu(s), the scan input [L, E]
 * @param z     the gate branch of in_proj [L, E]
 * @param x     the conv input x' (in_proj's first half) [L, E]
 * @param y     the branch's output (C·H + D·u) ⊙ silu(z) [L, E], what out_proj receives
 * @param a     the layer's A = −exp(A_log) [E, N] (a parameter, shared, not a copy)
 * @param dSkip the layer's D [E] (a parameter, shared)
 * @param convTaps the conv kernel [K, E], tap-major: s_t = Σ_k w[k]·x'_{t−K+1+k} + bias (shared)
 * @param convBias the conv bias [E], or null (shared)
 */
public record MixerTrace(int length, int channels, int stateSize,
                         float[] delta, float[] b, float[] c, float[] s, float[] u, float[] z, float[] x, float[] y,
                         float[] a, float[] dSkip, float[] convTaps, float[] convBias) {
    public int convKernel() {
        return convTaps.length / channels;
    }

    public float delta(int t, int channel) {
        return delta[t * channels + channel];
    }

    public float b(int t, int n) {
        return b[t * stateSize + n];
    }

    public float c(int t, int n) {
        return c[t * stateSize + n];
    }
}
