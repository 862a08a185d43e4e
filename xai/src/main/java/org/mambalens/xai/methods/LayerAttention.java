package org.mambalens.xai.methods;

import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionMaps;

/**
 * One layer's attention tensor for the explanation methods: [C, T, T] with C = channels (Vision Mamba,
 * hidden attention with both directions combined, SPEC §5) or heads (ViT, softmax probabilities).
 */
public record LayerAttention(int count, int tokens, float[] values) {

    public static LayerAttention mamba(TraceRecorder trace, int layer) {
        var t = trace.mixer(layer);
        return new LayerAttention(t.channels(), t.length(), AttentionMaps.mambaLayer(trace, layer, false, AttentionMaps.Direction.BOTH));
    }

    public static LayerAttention transformer(TraceRecorder trace, int layer) {
        AttentionTrace a = trace.attention(layer);
        return new LayerAttention(a.heads(), a.tokens(), a.probs());
    }

    /** The mean over channels (heads), [T, T]. */
    public float[] mean() {
        int T = tokens;
        float[] out = new float[T * T];
        for (int c = 0; c < count; c++) for (int k = 0; k < T * T; k++) out[k] += values[c * T * T + k];
        for (int k = 0; k < out.length; k++) out[k] /= count;
        return out;
    }

    /** Min-max normalised over the whole tensor, then averaged over channels (heads), [T, T]. */
    public float[] normalisedMean() {
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        for (float v : values) {
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        float range = max > min ? max - min : 1f;
        float[] m = mean();
        for (int k = 0; k < m.length; k++) m[k] = (m[k] - min) / range;
        return m;
    }
}
