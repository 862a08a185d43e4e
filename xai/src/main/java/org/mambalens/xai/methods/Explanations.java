package org.mambalens.xai.methods;

import org.mambalens.xai.data.ImagePreprocessor;

import java.util.List;

/**
 * Raw attention and attention rollout (SPEC §7), from the attention tensors of one image's layers,
 * as the seed paper's code computes them for the cls token. Both return one relevance per token.
 */
public final class Explanations {
    private Explanations() {
    }

    /** Raw attention: per layer the min-max normalised channel (head) mean; averaged over layers ≥ start; the cls row. */
    public static float[] raw(List<LayerAttention> layers, int startLayer, int cls) {
        int T = layers.get(0).tokens();
        float[] row = new float[T];
        int used = 0;
        for (int l = startLayer; l < layers.size(); l++, used++) {
            float[] m = layers.get(l).normalisedMean();
            for (int j = 0; j < T; j++) row[j] += m[cls * T + j];
        }
        for (int j = 0; j < T; j++) row[j] /= Math.max(1, used);
        return row;
    }

    /**
     * Rollout (Abnar and Zuidema): Â_l = normalize_rows(mean_c(A_l) + I), R = Â_n ⋯ Â_s (later layers
     * on the left); the cls row of R.
     */
    public static float[] rollout(List<LayerAttention> layers, int startLayer, int cls) {
        int T = layers.get(0).tokens();
        double[] r = null;
        for (int l = startLayer; l < layers.size(); l++) {
            float[] a = layers.get(l).mean();
            double[] hat = new double[T * T];
            for (int i = 0; i < T; i++) {
                double sum = 0;
                for (int j = 0; j < T; j++) sum += hat[i * T + j] = a[i * T + j] + (i == j ? 1 : 0);
                for (int j = 0; j < T; j++) hat[i * T + j] /= sum;
            }
            r = r == null ? hat : multiply(hat, r, T);                     // R ← Â_l · R
        }
        float[] row = new float[T];
        for (int j = 0; j < T; j++) row[j] = (float) r[cls * T + j];
        return row;
    }

    private static double[] multiply(double[] a, double[] b, int n) {
        double[] c = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < n; k++) {
                double v = a[i * n + k];
                if (v != 0) for (int j = 0; j < n; j++) c[i * n + j] += v * b[k * n + j];
            }
        }
        return c;
    }

    /** The cls row without the cls column, as the patch grid [G·G], row by row. */
    public static float[] patchMap(float[] row, int cls) {
        float[] out = new float[row.length - 1];
        for (int j = 0, k = 0; j < row.length; j++) if (j != cls) out[k++] = row[j];
        return out;
    }

    /** Bilinear upsampling of a [G, G] map to [S, S], as images are resized. */
    public static float[] upsample(float[] map, int grid, int size) {
        return ImagePreprocessor.bilinear(map, grid, grid, size);
    }

    /** Min-max normalised copy (all zeros when constant). */
    public static float[] normalised(float[] v) {
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        for (float x : v) {
            min = Math.min(min, x);
            max = Math.max(max, x);
        }
        float[] out = new float[v.length];
        if (max > min) for (int i = 0; i < v.length; i++) out[i] = (v[i] - min) / (max - min);
        return out;
    }
}
