package org.mambalens.engine.trace;

/**
 * A Mamba (selective-scan) mixer: its forward scan, and Vision Mamba's backward scan over the reversed
 * tokens, in that reversed order (null for a model that scans forward only).
 */
public record MambaLayerTrace(MixerTrace forward, MixerTrace backward) implements LayerTrace {
    public MambaLayerTrace {
        if (forward == null && backward == null) throw new IllegalArgumentException("a Mamba layer trace needs a scan");
    }

    /** One scan of a layer; a bidirectional layer records its two one after the other, and the recorder joins them. */
    public static MambaLayerTrace of(TraceRecorder.Direction direction, MixerTrace scan) {
        return switch (direction) {
            case FORWARD -> new MambaLayerTrace(scan, null);
            case BACKWARD -> new MambaLayerTrace(null, scan);
        };
    }

    public boolean bidirectional() {
        return forward != null && backward != null;
    }

    /** The scan in {@code direction}; refused in one line when the layer has none. */
    public MixerTrace scan(TraceRecorder.Direction direction) {
        MixerTrace t = direction == TraceRecorder.Direction.FORWARD ? forward : backward;
        if (t == null) throw new IllegalArgumentException("this Mamba layer recorded no " + direction + " scan");
        return t;
    }

    /** This layer with the scans {@code other} recorded added (or replaced). */
    MambaLayerTrace join(MambaLayerTrace other) {
        return new MambaLayerTrace(other.forward != null ? other.forward : forward, other.backward != null ? other.backward : backward);
    }
}
