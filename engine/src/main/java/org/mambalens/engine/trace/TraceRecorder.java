package org.mambalens.engine.trace;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Supplier;

/**
 * Opt-in recording of a forward pass, layer by layer: what each layer's mixer computed, as one
 * {@link LayerTrace} of its kind (a Mamba mixer's Δ, B, C, s, u, z per scan direction, a Mamba-2 mixer's
 * Δ, B, C, x, z, y, an RWKV time mix's r, k, v, Griffin's RG-LRU gates, softmax probabilities); after a
 * reverse pass, the gradients the attribution methods read. A model given no recorder (null) does no
 * extra work at all; given one, it copies out only the layers the recorder {@linkplain #wants wants}. On request
 * ({@link #hiddenStatesOnly}) it keeps the model's hidden states instead, as transformers returns them with
 * {@code output_hidden_states=True} for the family, each named by what produced it.
 */
public final class TraceRecorder {
    /** Scan direction: Mamba language models run forward only; Vision Mamba runs both. */
    public enum Direction { FORWARD, BACKWARD }

    /**
     * One of a model's hidden states [T, D] (T tokens; the batch dimension dropped) and what produced it: "embeddings",
     * "layer 3", "final norm": the first of them that differs from a reference names where a model went wrong.
     */
    public record HiddenState(String source, int tokens, float[] values) {
        /** D: the values of one token. */
        public int width() {
            return values.length / tokens;
        }
    }

    private final Set<Integer> wanted;
    private final boolean hiddenStates;
    private final List<HiddenState> hidden = new ArrayList<>();
    private final Map<Integer, LayerTrace> layers = new TreeMap<>();
    private final Map<Integer, float[]> residualGradients = new TreeMap<>();
    private final Map<Integer, float[]> attentionGradients = new TreeMap<>();
    private float[] inputGradient;

    private TraceRecorder(Set<Integer> wanted, boolean hiddenStates) {
        this.wanted = wanted;
        this.hiddenStates = hiddenStates;
    }

    /** Records every layer. */
    public static TraceRecorder allLayers() {
        return new TraceRecorder(null, false);
    }

    /** Records the given layers only (indices from 0). */
    public static TraceRecorder layers(Set<Integer> layers) {
        return new TraceRecorder(Set.copyOf(layers), false);
    }

    /** Records no layer, only the hidden states. */
    public static TraceRecorder hiddenStatesOnly() {
        return new TraceRecorder(Set.of(), true);
    }

    /** Whether the model should hand over its hidden states ({@link #recordHiddenState}). */
    public boolean recordsHiddenStates() {
        return hiddenStates;
    }

    /** Appends the next hidden state, in the order of transformers' tuple, when hidden states are recorded. */
    public synchronized void recordHiddenState(String source, int tokens, Supplier<float[]> values) {
        if (hiddenStates) hidden.add(new HiddenState(source, tokens, values.get()));
    }

    /** The hidden states recorded, in order (index K is transformers' {@code hidden_states[K]}). */
    public synchronized List<HiddenState> hiddenStates() {
        return List.copyOf(hidden);
    }

    public boolean wants(int layer) {
        return wanted == null || wanted.contains(layer);
    }

    /**
     * Stores what {@code make} builds, if this layer is wanted; the copy is never made otherwise. A
     * bidirectional Mamba layer records its two scans one at a time: they join into one trace.
     */
    public synchronized void record(int layer, Supplier<? extends LayerTrace> make) {
        if (wants(layer)) layers.merge(layer, make.get(), TraceRecorder::join);
    }

    private static LayerTrace join(LayerTrace held, LayerTrace made) {
        return held instanceof MambaLayerTrace scans && made instanceof MambaLayerTrace scan ? scans.join(scan) : made;
    }

    /** What layer {@code layer} recorded; refused in one line when it recorded nothing. */
    public synchronized LayerTrace layer(int layer) {
        LayerTrace t = layers.get(layer);
        if (t == null) throw new IllegalArgumentException("layer " + layer + " was not recorded");
        return t;
    }

    /** What layer {@code layer} recorded, which must be of {@code kind}; refused in one line naming both kinds otherwise. */
    public <T extends LayerTrace> T layer(int layer, Class<T> kind) {
        LayerTrace t = layer(layer);
        if (!kind.isInstance(t)) {
            throw new IllegalArgumentException("layer " + layer + " recorded " + t.getClass().getSimpleName() + ", not " + kind.getSimpleName());
        }
        return kind.cast(t);
    }

    /** Stores ∂(explained output)/∂(residual stream entering the layer) [T, D], if this layer is wanted. */
    public synchronized void recordResidualGradient(int layer, Supplier<float[]> make) {
        if (wants(layer)) residualGradients.put(layer, make.get());
    }

    /** Stores ∂(explained output)/∂(attention probabilities) [H, T, T], if this layer is wanted. */
    public synchronized void recordAttentionGradient(int layer, Supplier<float[]> make) {
        if (wants(layer)) attentionGradients.put(layer, make.get());
    }

    /** Stores ∂(explained output)/∂(model input): pixels [C, S, S], or token embeddings [L, D]. */
    public synchronized void recordInputGradient(float[] gradient) {
        inputGradient = gradient;
    }

    public synchronized float[] inputGradient() {
        if (inputGradient == null) throw new IllegalArgumentException("no input gradient was recorded");
        return inputGradient;
    }

    public synchronized float[] residualGradient(int layer) {
        return recorded(residualGradients, layer, "residual-stream gradient");
    }

    public synchronized float[] attentionGradient(int layer) {
        return recorded(attentionGradients, layer, "attention gradient");
    }

    private static float[] recorded(Map<Integer, float[]> map, int layer, String what) {
        float[] g = map.get(layer);
        if (g == null) throw new IllegalArgumentException("layer " + layer + " " + what + " was not recorded");
        return g;
    }

    /** Layers whose mixer was recorded. */
    public synchronized Set<Integer> recordedLayers() {
        return Collections.unmodifiableSet(new TreeSet<>(layers.keySet()));
    }
}
