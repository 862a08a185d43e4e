package org.mambalens.xai.methods;

import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.RwkvTrace;
import org.mambalens.engine.trace.SsdTrace;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionSummary;
import org.mambalens.xai.data.ImagePreprocessor;

import java.util.ArrayList;
import java.util.List;

/**
 * The explanation methods of DESIGN §7, as the seed papers' code computes them, each returning one
 * relevance per token: the row of the explained token (the cls token of an image classifier, the
 * explained position of a language model). Rollouts are computed for that row only: e·Â_n⋯Â_s is a
 * chain of vector-matrix products, T² per layer instead of T³.
 */
public final class Explanations {
    private Explanations() {
    }

    /** Raw attention: per layer the min-max normalised channel (head) mean; averaged over layers ≥ start; the row. */
    public static float[] raw(List<AttentionSummary> layers, int startLayer, int row) {
        int T = layers.get(0).tokens();
        float[] out = new float[T];
        int used = 0;
        for (int l = startLayer; l < layers.size(); l++, used++) {
            float[] m = layers.get(l).normalisedMean();
            for (int j = 0; j < T; j++) out[j] += m[row * T + j];
        }
        for (int j = 0; j < T; j++) out[j] /= Math.max(1, used);
        return out;
    }

    /** Rollout (Abnar and Zuidema): Â_l = normalize_rows(mean_c(A_l) + I), R = Â_n ⋯ Â_s (later layers on the left); the row of R. */
    public static float[] rollout(List<AttentionSummary> layers, int startLayer, int row) {
        List<float[]> means = new ArrayList<>();
        for (AttentionSummary s : layers) means.add(s.mean());
        return rolloutRow(means, layers.get(0).tokens(), startLayer, row);
    }

    /**
     * Mamba-Attribution: per layer, the gradient g [T, D] of the explained logit with respect to the
     * residual stream entering the layer gives one weight per token, w_j = max_d g⁺[j, d], min-max
     * normalised; the columns of the min-max normalised, channel-averaged α⁺ are scaled by it; the
     * products are rolled out from the start layer.
     */
    public static float[] mambaAttribution(List<AttentionSummary> layers, List<float[]> residualGradients, int startLayer, int row) {
        int T = layers.get(0).tokens();
        List<float[]> fused = new ArrayList<>();
        for (int l = 0; l < layers.size(); l++) {
            float[] g = residualGradients.get(l);
            int D = g.length / T;
            float[] weight = new float[T];
            for (int j = 0; j < T; j++) {
                float w = 0;
                for (int d = 0; d < D; d++) w = Math.max(w, g[j * D + d]);
                weight[j] = w;
            }
            weight = normalised(weight);
            float[] a = layers.get(l).positiveNormalisedMean();
            for (int i = 0; i < T; i++) for (int j = 0; j < T; j++) a[i * T + j] *= weight[j];
            fused.add(a);
        }
        return rolloutRow(fused, T, startLayer, row);
    }

    /**
     * Transformer-Attribution (Chefer et al., "Generic Attention-model Explainability"): per layer
     * Ē = mean_h((∂y/∂A_h ⊙ A_h)⁺), R ← R + Ē·R from R = I over every layer, as their code runs it; the row of R.
     */
    public static float[] transformerAttribution(List<AttentionTrace> attention, List<float[]> gradients, int row) {
        int T = attention.get(0).tokens();
        double[] v = new double[T];                                         // e_row · (I + Ē_n) ⋯ (I + Ē_1)
        v[row] = 1;
        for (int l = attention.size() - 1; l >= 0; l--) {
            AttentionTrace a = attention.get(l);
            float[] g = gradients.get(l), p = a.probs();
            int H = a.heads();
            double[] e = new double[T * T];
            for (int h = 0; h < H; h++) {
                for (int k = 0; k < T * T; k++) e[k] += Math.max(0f, g[h * T * T + k] * p[h * T * T + k]) / H;
            }
            double[] next = v.clone();
            for (int i = 0; i < T; i++) {
                if (v[i] == 0) continue;
                for (int j = 0; j < T; j++) next[j] += v[i] * e[i * T + j];
            }
            v = next;
        }
        float[] out = new float[T];
        for (int j = 0; j < T; j++) out[j] = (float) v[j];
        return out;
    }

    /**
     * The attribution method that fits the recorded model, from the gradients its reverse pass left in
     * {@code trace}: Chefer et al.'s for softmax attention (every layer), Mamba-Attribution (residual-stream
     * gradients over the implicit attention) otherwise.
     */
    public static float[] attribution(TraceRecorder trace, List<AttentionSummary> layers, int startLayer, int row) {
        List<float[]> gradients = new ArrayList<>();
        int recurrent = trace.recordedLayers().stream().filter(l -> trace.layer(l) instanceof LruTrace).findFirst().orElse(0);
        return switch (trace.layer(recurrent)) {                           // Griffin (first block possibly attention): by a recurrent layer
            case AttentionTrace _ -> {
                List<AttentionTrace> attention = new ArrayList<>();
                for (int l = 0; l < layers.size(); l++) {
                    attention.add(trace.layer(l, AttentionTrace.class));
                    gradients.add(trace.attentionGradient(l));
                }
                yield transformerAttribution(attention, gradients, row);
            }
            case MambaLayerTrace _, SsdTrace _, RwkvTrace _, LruTrace _ -> {
                for (int l = 0; l < layers.size(); l++) gradients.add(trace.residualGradient(l));
                yield mambaAttribution(layers, gradients, startLayer, row);
            }
        };
    }

    /** e_row · Â_n ⋯ Â_s with Â_l = normalize_rows(M_l + I). */
    private static float[] rolloutRow(List<float[]> matrices, int T, int startLayer, int row) {
        double[] v = new double[T];
        v[row] = 1;
        for (int l = matrices.size() - 1; l >= startLayer; l--) {
            float[] m = matrices.get(l);
            double[] next = new double[T];
            for (int i = 0; i < T; i++) {
                if (v[i] == 0) continue;
                double sum = 1;
                for (int j = 0; j < T; j++) sum += m[i * T + j];
                double scale = v[i] / sum;
                for (int j = 0; j < T; j++) next[j] += scale * (m[i * T + j] + (i == j ? 1 : 0));
            }
            v = next;
        }
        float[] out = new float[T];
        for (int j = 0; j < T; j++) out[j] = (float) v[j];
        return out;
    }

    /** The row without the cls column, as the patch grid [G·G], row by row. */
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
