package org.mambalens.engine.trace;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** One record/layer pair for every kind of layer trace: what goes in comes out, of its kind, and nothing else does. */
class TraceRecorderTest {
    static final float[] ONE = {1f};

    static MixerTrace scan() {
        return new MixerTrace(1, 1, 1, ONE, ONE, ONE, ONE, ONE, ONE, ONE, ONE, ONE, ONE, ONE, null);
    }

    /** One of each kind, in the order LayerTrace permits them. */
    static List<LayerTrace> everyKind() {
        return List.of(new MambaLayerTrace(scan(), null),
                new SsdTrace(1, 1, 1, 1, 1, ONE, ONE, ONE, ONE, ONE, ONE, ONE, ONE, new SsdTrace.Conv(ONE, ONE, ONE, null, 1), new SsdTrace.Norm(ONE, 1e-5f, ONE)),
                new RwkvTrace(1, 1, ONE, ONE, ONE, ONE, ONE, ONE),
                new LruTrace(1, 1, ONE, ONE, ONE, ONE, ONE, ONE, ONE, ONE),
                new AttentionTrace(1, 1, ONE));
    }

    @Test
    void everyKindRoundTripsThroughRecordAndLayer() {
        List<LayerTrace> kinds = everyKind();
        assertThat(kinds).extracting(TraceRecorderTest::kind).containsExactly("Mamba", "Mamba-2", "RWKV", "RG-LRU", "softmax");
        TraceRecorder trace = TraceRecorder.allLayers();
        for (int layer = 0; layer < kinds.size(); layer++) {
            LayerTrace t = kinds.get(layer);
            trace.record(layer, () -> t);
        }
        assertThat(trace.recordedLayers()).containsExactly(0, 1, 2, 3, 4);
        for (int layer = 0; layer < kinds.size(); layer++) {
            assertThat(trace.layer(layer)).isSameAs(kinds.get(layer));
            assertThat(trace.layer(layer, kinds.get(layer).getClass())).isSameAs(kinds.get(layer));
        }
    }

    @Test
    void aLayerOfAnotherKindIsRefusedInOneLineNamingTheLayerAndBothKinds() {
        TraceRecorder trace = TraceRecorder.allLayers();
        trace.record(3, () -> everyKind().get(2));
        assertThatThrownBy(() -> trace.layer(3, SsdTrace.class)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("layer 3 recorded RwkvTrace, not SsdTrace");
        assertThatThrownBy(() -> trace.layer(4)).hasMessage("layer 4 was not recorded");
        assertThatThrownBy(() -> trace.layer(4, AttentionTrace.class)).hasMessage("layer 4 was not recorded");
    }

    @Test
    void aLayerThatIsNotWantedIsNeverMade() {
        TraceRecorder trace = TraceRecorder.layers(Set.of(1));
        trace.record(0, () -> {
            throw new AssertionError("layer 0 was made");
        });
        trace.record(1, () -> everyKind().get(4));
        assertThat(trace.recordedLayers()).containsExactly(1);
    }

    /** Hidden states are kept, in order, only by a recorder made for them, which wants no layer; others never make them. */
    @Test
    void hiddenStatesAreKeptOnlyWhenAskedFor() {
        TraceRecorder hidden = TraceRecorder.hiddenStatesOnly();
        assertThat(hidden.recordsHiddenStates()).isTrue();
        assertThat(hidden.wants(0)).isFalse();
        hidden.recordHiddenState("embeddings", 2, () -> new float[]{1, 2, 3, 4, 5, 6});
        hidden.recordHiddenState("layer 0", 2, () -> new float[6]);
        assertThat(hidden.hiddenStates()).extracting(TraceRecorder.HiddenState::source).containsExactly("embeddings", "layer 0");
        assertThat(hidden.hiddenStates().getFirst().width()).isEqualTo(3);
        TraceRecorder layers = TraceRecorder.allLayers();
        assertThat(layers.recordsHiddenStates()).isFalse();
        layers.recordHiddenState("embeddings", 1, () -> {
            throw new AssertionError("a hidden state was made");
        });
        assertThat(layers.hiddenStates()).isEmpty();
    }

    /** Vision Mamba records a layer's forward scan, then its backward one: one trace with both. */
    @Test
    void theTwoScansOfABidirectionalLayerJoin() {
        MixerTrace forward = scan(), backward = scan();
        TraceRecorder trace = TraceRecorder.allLayers();
        trace.record(0, () -> MambaLayerTrace.of(TraceRecorder.Direction.FORWARD, forward));
        assertThat(trace.layer(0, MambaLayerTrace.class).bidirectional()).isFalse();
        assertThatThrownBy(() -> trace.layer(0, MambaLayerTrace.class).scan(TraceRecorder.Direction.BACKWARD)).hasMessageContaining("no BACKWARD scan");
        trace.record(0, () -> MambaLayerTrace.of(TraceRecorder.Direction.BACKWARD, backward));
        MambaLayerTrace both = trace.layer(0, MambaLayerTrace.class);
        assertThat(both.bidirectional()).isTrue();
        assertThat(both.scan(TraceRecorder.Direction.FORWARD)).isSameAs(forward);
        assertThat(both.scan(TraceRecorder.Direction.BACKWARD)).isSameAs(backward);
    }

    /** A switch with no default: a new kind of layer trace does not compile here until it is named. */
    private static String kind(LayerTrace t) {
        return switch (t) {
            case MambaLayerTrace _ -> "Mamba";
            case SsdTrace _ -> "Mamba-2";
            case RwkvTrace _ -> "RWKV";
            case LruTrace _ -> "RG-LRU";
            case AttentionTrace _ -> "softmax";
        };
    }
}
