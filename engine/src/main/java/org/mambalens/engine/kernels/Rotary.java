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
        float[] cos = new float[half], sin = new float[half];
        angles(cos, sin, p, inverseFrequencies, sign);
        rotate(x, off, cos, sin);
    }

    /** cos[j] and sin[j] of the angle p·f_j (times {@code sign}) for j < f.length: one position's turn, for every head. */
    public static void angles(float[] cos, float[] sin, int p, float[] inverseFrequencies, int sign) {
        for (int j = 0; j < inverseFrequencies.length; j++) {
            double angle = p * inverseFrequencies[j];
            cos[j] = (float) Math.cos(angle);
            sin[j] = sign * (float) Math.sin(angle);
        }
    }

    /** Turns x[off + j] and x[off + j + half] by the angles whose cosines and sines are given, half = cos.length. */
    public static void rotate(float[] x, int off, float[] cos, float[] sin) {
        int half = cos.length;
        for (int j = 0; j < half; j++) {
            float a = x[off + j], b = x[off + j + half];
            x[off + j] = a * cos[j] - b * sin[j];
            x[off + j + half] = b * cos[j] + a * sin[j];
        }
    }
}
