package org.mambalens.xai.attention;

import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

/** Whole attention tensors of one layer, as the {@code attention} command writes them. */
public final class AttentionMaps {
    /** Which scan direction(s) of a Vision Mamba layer. */
    public enum Direction { FORWARD, BACKWARD, BOTH }

    private AttentionMaps() {
    }

    /**
     * Per channel, [E, L, L] in the input's token order: hidden (SPEC §3) or unified (SPEC §4) attention.
     * For a bidirectional layer, BACKWARD is flip(α_bwd) (rows and columns reversed back to the input
     * order) and BOTH is α_fwd + flip(α_bwd) (SPEC §5). A forward-only layer takes FORWARD or BOTH.
     */
    public static float[] mambaLayer(TraceRecorder trace, int layer, boolean unified, Direction direction) {
        boolean bidirectional = trace.hasMixer(layer, TraceRecorder.Direction.BACKWARD);
        if (!bidirectional && direction == Direction.BACKWARD) throw new IllegalArgumentException("--direction backward: this model scans forward only");
        float[] out = null;
        if (direction != Direction.BACKWARD) out = channels(trace.mixer(layer, TraceRecorder.Direction.FORWARD), unified, false);
        if (bidirectional && direction != Direction.FORWARD) {
            float[] back = channels(trace.mixer(layer, TraceRecorder.Direction.BACKWARD), unified, true);
            if (out == null) out = back;
            else for (int k = 0; k < out.length; k++) out[k] += back[k];
        }
        return out;
    }

    /** Bytes that {@link #mambaLayer} allocates for this trace: E·L² floats. */
    public static long bytes(MixerTrace t) {
        return 4L * t.channels() * t.length() * t.length();
    }

    private static float[] channels(MixerTrace t, boolean unified, boolean flip) {
        int E = t.channels(), L = t.length();
        float[] out = new float[E * L * L];
        HiddenAttention hidden = unified ? null : HiddenAttention.of(t);
        UnifiedAttention uni = unified ? UnifiedAttention.of(t) : null;
        for (int c = 0; c < E; c++) {
            float[] m = unified ? uni.channel(c) : hidden.channel(c);
            for (int i = 0; i < L; i++) {
                for (int j = 0; j < L; j++) {
                    int to = flip ? (L - 1 - i) * L + (L - 1 - j) : i * L + j;
                    out[c * L * L + to] = m[i * L + j];
                }
            }
        }
        return out;
    }
}
