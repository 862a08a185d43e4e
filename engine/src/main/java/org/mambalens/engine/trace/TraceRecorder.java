package org.mambalens.engine.trace;

import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * Opt-in recording of a forward pass, layer by layer: Mamba mixers' Δ, B, C, s, u, z (per scan
 * direction), Mamba-2 mixers' Δ, B, C, x, z, y, RWKV time mixes' r, k, v, Griffin's RG-LRU gates and
 * Transformers' softmax probabilities; after a reverse pass, the gradients the
 * attribution methods read. A model given no recorder (null) does no extra
 * work at all; given one, it copies out only the layers the recorder {@linkplain #wants wants}.
 */
public final class TraceRecorder {
    /** Scan direction: Mamba language models run forward only; Vision Mamba runs both. */
    public enum Direction { FORWARD, BACKWARD }

    private final Set<Integer> layers;
    private final Map<Integer, Map<Direction, MixerTrace>> mixers = new TreeMap<>();
    private final Map<Integer, AttentionTrace> attention = new TreeMap<>();
    private final Map<Integer, SsdTrace> ssd = new TreeMap<>();
    private final Map<Integer, RwkvTrace> rwkv = new TreeMap<>();
    private final Map<Integer, LruTrace> lru = new TreeMap<>();
    private final Map<Integer, float[]> residualGradients = new TreeMap<>();
    private final Map<Integer, float[]> attentionGradients = new TreeMap<>();
    private float[] inputGradient;

    private TraceRecorder(Set<Integer> layers) {
        this.layers = layers;
    }

    /** Records every layer. */
    public static TraceRecorder allLayers() {
        return new TraceRecorder(null);
    }

    /** Records the given layers only (indices from 0). */
    public static TraceRecorder layers(Set<Integer> layers) {
        return new TraceRecorder(Set.copyOf(layers));
    }

    public boolean wants(int layer) {
        return layers == null || layers.contains(layer);
    }

    /** Stores what {@code make} builds, if this layer is wanted; the copy is never made otherwise. */
    public synchronized void recordMixer(int layer, Direction direction, Supplier<MixerTrace> make) {
        if (wants(layer)) mixers.computeIfAbsent(layer, k -> new TreeMap<>()).put(direction, make.get());
    }

    /** Stores a Mamba-2 mixer's tensors, if this layer is wanted. */
    public synchronized void recordSsd(int layer, Supplier<SsdTrace> make) {
        if (wants(layer)) ssd.put(layer, make.get());
    }

    public synchronized SsdTrace ssd(int layer) {
        SsdTrace t = ssd.get(layer);
        if (t == null) throw new IllegalArgumentException("layer " + layer + " Mamba-2 mixer was not recorded");
        return t;
    }

    public synchronized boolean hasSsd(int layer) {
        return ssd.containsKey(layer);
    }

    /** Stores an RWKV time-mix layer's tensors, if this layer is wanted. */
    public synchronized void recordRwkv(int layer, Supplier<RwkvTrace> make) {
        if (wants(layer)) rwkv.put(layer, make.get());
    }

    public synchronized RwkvTrace rwkv(int layer) {
        RwkvTrace t = rwkv.get(layer);
        if (t == null) throw new IllegalArgumentException("layer " + layer + " RWKV time mix was not recorded");
        return t;
    }

    public synchronized boolean hasRwkv(int layer) {
        return rwkv.containsKey(layer);
    }

    /** Stores a Griffin recurrent block's tensors, if this layer is wanted. */
    public synchronized void recordLru(int layer, Supplier<LruTrace> make) {
        if (wants(layer)) lru.put(layer, make.get());
    }

    public synchronized LruTrace lru(int layer) {
        LruTrace t = lru.get(layer);
        if (t == null) throw new IllegalArgumentException("layer " + layer + " RG-LRU was not recorded");
        return t;
    }

    public synchronized boolean hasLru(int layer) {
        return lru.containsKey(layer);
    }

    /** Stores a Transformer layer's softmax probabilities, if this layer is wanted. */
    public synchronized void recordAttention(int layer, Supplier<AttentionTrace> make) {
        if (wants(layer)) attention.put(layer, make.get());
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

    public synchronized AttentionTrace attention(int layer) {
        AttentionTrace t = attention.get(layer);
        if (t == null) throw new IllegalArgumentException("layer " + layer + " attention was not recorded");
        return t;
    }

    public synchronized MixerTrace mixer(int layer, Direction direction) {
        Map<Direction, MixerTrace> m = mixers.get(layer);
        MixerTrace t = m == null ? null : m.get(direction);
        if (t == null) throw new IllegalArgumentException("layer " + layer + " " + direction + " was not recorded");
        return t;
    }

    public synchronized boolean hasAttention(int layer) {
        return attention.containsKey(layer);
    }

    public synchronized boolean hasMixer(int layer, Direction direction) {
        Map<Direction, MixerTrace> m = mixers.get(layer);
        return m != null && m.containsKey(direction);
    }

    public MixerTrace mixer(int layer) {
        return mixer(layer, Direction.FORWARD);
    }

    /** Layers with a recorded mixer or attention. */
    public synchronized Set<Integer> recordedLayers() {
        Set<Integer> all = new java.util.TreeSet<>(mixers.keySet());
        all.addAll(attention.keySet());
        all.addAll(ssd.keySet());
        all.addAll(rwkv.keySet());
        all.addAll(lru.keySet());
        return Collections.unmodifiableSet(all);
    }
}
