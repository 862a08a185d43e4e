package org.mambalens.engine.kernels;

/** Rotary position embedding in the rotate_half convention (GPT-NeoX, Gemma): pairs (j, j + half) of a head's first dims. */
public final class Rotary {
    private Rotary() {
    }

    /**
     * Rotates x[off + j] and x[off + j + half] by the angle p·f_j for j < half = f.length; {@code sign} −1 rotates
     * by the negative angle (the transpose, for a reverse pass).
     */
    public static void rotate(float[] x, int off, int p, float[] inverseFrequencies, int sign) {
        int half = inverseFrequencies.length;
        for (int j = 0; j < half; j++) {
            double angle = p * inverseFrequencies[j];
            float cos = (float) Math.cos(angle), sin = sign * (float) Math.sin(angle);
            float a = x[off + j], b = x[off + j + half];
            x[off + j] = a * cos - b * sin;
            x[off + j + half] = b * cos + a * sin;
        }
    }
}
