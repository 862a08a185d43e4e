package org.mambalens.xai.attention;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.model.mamba.MambaModel;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.RwkvTrace;
import org.mambalens.engine.trace.SsdTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The DESIGN §3/§4 invariant: the hidden attention applied to u, and the unified attention applied to
 * x', reproduce the branch output (and so, out_proj being linear, the layer's output).
 */
class HiddenAttentionTest {
    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16"})
    void reproducesEveryLanguageModelLayer(String name) {
        int[] ids = Fixtures.ints(Fixtures.json(Fixtures.golden().resolve(name + "/reference.json")).get("token_ids"));
        try (MambaModel model = MambaModel.load(Fixtures.golden().resolve(name))) {
            TraceRecorder trace = TraceRecorder.allLayers();
            model.forward(ids, trace);
            for (int layer : trace.recordedLayers()) check(trace.layer(layer, MambaLayerTrace.class).forward(), name + " layer " + layer);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"vim/vim_small", "vim/vim_gray_cls0"})
    void reproducesBothVisionMambaDirections(String name) {
        TraceRecorder trace = traceFirstImage(name);
        for (int layer : trace.recordedLayers()) {
            for (TraceRecorder.Direction d : TraceRecorder.Direction.values()) check(trace.layer(layer, MambaLayerTrace.class).scan(d), name + " layer " + layer + " " + d);
        }
    }

    /** Every layer of a Vision Mamba fixture, traced on its first image. */
    private static TraceRecorder traceFirstImage(String name) {
        Npy.Array pixels = Npy.readFloat32(Fixtures.golden().resolve(name + "/pixels.npy"));
        try (ImageClassifier model = Models.loadImageClassifier(Fixtures.golden().resolve(name))) {
            TraceRecorder trace = TraceRecorder.allLayers();
            model.classify(Arrays.copyOf(pixels.data(), pixels.data().length / pixels.dim(0)), trace);
            return trace;
        }
    }

    /**
     * Mamba-2: each head's α applied to x, plus D·x, reproduces the scan output of every layer; the unified
     * operator applied to the conv input reproduces the gated RMSNorm's output.
     */
    @ParameterizedTest
    @ValueSource(strings = {"mamba2/mamba2_f32", "mamba2/mamba2_groups_bf16"})
    void reproducesEveryMamba2Layer(String name) {
        int[] ids = Fixtures.ints(Fixtures.json(Fixtures.golden().resolve(name + "/reference.json")).get("token_ids"));
        try (var model = Models.loadLanguageModel(Fixtures.golden().resolve(name))) {
            TraceRecorder trace = TraceRecorder.allLayers();
            model.forward(ids, trace);
            for (int layer = 0; layer < model.layers(); layer++) {
                var t = trace.layer(layer, SsdTrace.class);
                SsdAttention alpha = SsdAttention.of(t);
                assertThat(Fixtures.relativeError(alpha.apply(), t.y())).as(name + " layer " + layer).isLessThan(1e-5);
                assertThat(Fixtures.relativeError(SsdUnifiedAttention.of(t).apply(), t.norm().output())).as("unified " + name + " layer " + layer).isLessThan(1e-5);
                float[] h0 = alpha.head(0);
                for (int i = 0; i < t.length(); i++) for (int j = i + 1; j < t.length(); j++) assertThat(h0[i * t.length() + j]).isZero();
            }
        }
    }

    /** Griffin: α·x reproduces every RG-LRU output, and the unified operator (conv and gate folded in) the gated output. */
    @ParameterizedTest
    @ValueSource(strings = {"griffin/griffin_f32", "griffin/griffin_bf16"})
    void reproducesEveryGriffinRecurrentLayer(String name) {
        int[] ids = Fixtures.ints(Fixtures.json(Fixtures.golden().resolve(name + "/reference.json")).get("token_ids"));
        try (var model = Models.loadLanguageModel(Fixtures.golden().resolve(name))) {
            TraceRecorder trace = TraceRecorder.allLayers();
            model.forward(ids, trace);
            int checked = 0;
            for (int layer = 0; layer < model.layers(); layer++) {
                if (!(trace.layer(layer) instanceof LruTrace t)) continue;     // Griffin's local-attention layers
                LruAttention alpha = LruAttention.of(t);
                assertThat(Fixtures.relativeError(alpha.apply(), t.h())).as(name + " layer " + layer).isLessThan(1e-5);
                float[] gated = t.h().clone();
                for (int k = 0; k < gated.length; k++) gated[k] *= t.gate()[k];
                assertThat(Fixtures.relativeError(alpha.applyUnified(), gated)).as("unified " + name + " layer " + layer).isLessThan(1e-5);
                float[] c0 = alpha.channel(0), u0 = alpha.unifiedChannel(0);
                for (int i = 0; i < t.length(); i++) {
                    for (int j = i + 1; j < t.length(); j++) assertThat(c0[i * t.length() + j]).isZero();
                    for (int j = i + 1; j < t.length(); j++) assertThat(u0[i * t.length() + j]).isZero();
                }
                checked++;
            }
            assertThat(checked).isPositive();
        }
    }

    /** RWKV-4: each channel's normalised WKV weights, gated, applied to v reproduce what the output projection reads. */
    @ParameterizedTest
    @ValueSource(strings = {"rwkv/rwkv_f32", "rwkv/rwkv_bf16"})
    void reproducesEveryRwkvLayer(String name) {
        int[] ids = Fixtures.ints(Fixtures.json(Fixtures.golden().resolve(name + "/reference.json")).get("token_ids"));
        try (var model = Models.loadLanguageModel(Fixtures.golden().resolve(name))) {
            TraceRecorder trace = TraceRecorder.allLayers();
            model.forward(ids, trace);
            for (int layer = 0; layer < model.layers(); layer++) {
                var t = trace.layer(layer, RwkvTrace.class);
                RwkvAttention alpha = RwkvAttention.of(t);
                assertThat(Fixtures.relativeError(alpha.apply(), t.gated())).as(name + " layer " + layer).isLessThan(1e-5);
                float[] c0 = alpha.channel(0);
                for (int i = 0; i < t.length(); i++) {
                    double rowSum = 0;
                    for (int j = 0; j < t.length(); j++) {
                        if (j > i) assertThat(c0[i * t.length() + j]).isZero();
                        rowSum += c0[i * t.length() + j];
                    }
                    assertThat(rowSum).as("a row sums to its gate σ(r)").isCloseTo(t.r()[i * t.channels()], org.assertj.core.data.Offset.offset(1e-5));
                }
            }
        }
    }

    /** α and the unified operator against the matrices built from transformers' internals in float64 (gradient_fixtures.py). */
    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/conv3_rank_given"})
    void matchesTheReferenceMatrices(String name) {
        var target = Fixtures.json(Fixtures.golden().resolve(name + "/grad_target.json"));
        try (MambaModel model = MambaModel.load(Fixtures.golden().resolve(name))) {
            TraceRecorder trace = TraceRecorder.allLayers();
            model.forward(Fixtures.ints(target.get("tokens")), trace);
            for (int layer : trace.recordedLayers()) {
                for (boolean unified : new boolean[]{false, true}) {
                    Npy.Array expected = Npy.readFloat32(Fixtures.golden().resolve(name + (unified ? "/unified_" : "/alpha_") + layer + ".npy"));
                    float[] actual = AttentionMaps.of(trace.layer(layer, MambaLayerTrace.class), unified, AttentionMaps.Direction.FORWARD).tensor();
                    assertThat(Fixtures.relativeError(actual, expected.data())).as(name + " layer " + layer + (unified ? " unified" : " α")).isLessThan(1e-5);
                }
            }
        }
    }

    /**
     * The blocked computation equals the definition on every weight, including blocks whose Δ span forces
     * the fallback (large Δ), columns before a super-block, and sequences that end inside a block.
     */
    @ParameterizedTest
    @ValueSource(doubles = {0.05, 3.0})
    void blockedChannelsEqualTheDefinition(double deltaScale) {
        java.util.Random r = new java.util.Random(17);
        int L = (2 * HiddenAttention.SUPER + 1) * HiddenAttention.BLOCK + 5, E = 3, N = 4;
        float[] delta = new float[L * E], b = new float[L * N], c = new float[L * N], a = new float[E * N];
        for (int k = 0; k < delta.length; k++) delta[k] = (float) (deltaScale * r.nextDouble());
        for (int k = 0; k < b.length; k++) {
            b[k] = (float) r.nextGaussian();
            c[k] = (float) r.nextGaussian();
        }
        for (int k = 0; k < a.length; k++) a[k] = (float) -(0.5 + 8 * r.nextDouble());
        MixerTrace t = new MixerTrace(L, E, N, delta, b, c, new float[L * E], new float[L * E], new float[L * E], new float[L * E],
                new float[L * E], a, new float[E], new float[4 * E], null);
        HiddenAttention alpha = HiddenAttention.of(t);
        for (int ch = 0; ch < E; ch++) {
            float[] m = alpha.channel(ch);
            double max = 0;
            for (float v : m) max = Math.max(max, Math.abs(v));
            for (int i = 0; i < L; i++) {
                for (int j = 0; j < L; j++) {
                    assertThat((double) m[i * L + j]).as("channel %d [%d, %d]", ch, i, j).isCloseTo(alpha.weight(ch, i, j), org.assertj.core.data.Offset.offset(1e-6 * max));
                }
            }
        }
    }

    /** Block by block over several blocks (150 tokens: at least three blocks on any vector width) equals the whole tensor. */
    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/conv3_rank_given"})
    void blockwiseSummaryEqualsTheWholeTensor(String name) {
        int[] ids = new int[150];
        java.util.Random r = new java.util.Random(2);
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(256);                 // within both fixtures' vocabularies
        try (MambaModel model = MambaModel.load(Fixtures.golden().resolve(name))) {
            TraceRecorder trace = TraceRecorder.layers(java.util.Set.of(1));
            model.forward(ids, trace);
            AttentionMaps maps = AttentionMaps.of(trace.layer(1, MambaLayerTrace.class), false, AttentionMaps.Direction.FORWARD);
            AttentionSummary whole = AttentionSummary.of(maps.tensor(), maps.channels(), maps.length()), blocked = maps.summary();
            assertThat(Fixtures.relativeError(blocked.mean(), whole.mean())).isLessThan(1e-5);
            assertThat(Fixtures.relativeError(blocked.positiveMean(), whole.positiveMean())).isLessThan(1e-5);
            assertThat(blocked.min()).isEqualTo(whole.min());
            assertThat(blocked.max()).isEqualTo(whole.max());
        }
    }

    /** The layer summary gathered channel by channel equals the one of the whole tensor. */
    @ParameterizedTest
    @ValueSource(strings = {"vim/vim_small", "vim/vim_gray_cls0"})
    void summaryEqualsTheWholeTensors(String name) {
        TraceRecorder trace = traceFirstImage(name);
        AttentionMaps oneWay = AttentionMaps.of(trace.layer(1, MambaLayerTrace.class), true, AttentionMaps.Direction.FORWARD);
        AttentionSummary dense = AttentionSummary.of(oneWay.tensor(), oneWay.channels(), oneWay.length()), causal = oneWay.summary();
        assertThat(Fixtures.relativeError(causal.mean(), dense.mean())).isLessThan(1e-5);
        assertThat(causal.min()).isEqualTo(dense.min());
        assertThat(causal.max()).isEqualTo(dense.max());
        AttentionMaps maps = AttentionMaps.of(trace.layer(1, MambaLayerTrace.class), false, AttentionMaps.Direction.BOTH);
        AttentionSummary whole = AttentionSummary.of(maps.tensor(), maps.channels(), maps.length()), streamed = maps.summary();
        assertThat(Fixtures.relativeError(streamed.mean(), whole.mean())).isLessThan(1e-5);    // float sums per thread
        assertThat(Fixtures.relativeError(streamed.positiveMean(), whole.positiveMean())).isLessThan(1e-5);
        assertThat(streamed.min()).isEqualTo(whole.min());
        assertThat(streamed.max()).isEqualTo(whole.max());
        assertThat(whole.min()).isNegative();                              // both directions: no structural zeros left
    }

    private static void check(MixerTrace t, String what) {
        HiddenAttention alpha = HiddenAttention.of(t);
        assertThat(Fixtures.relativeError(alpha.apply(), t.y())).as(what).isLessThan(1e-5);
        assertThat(Fixtures.relativeError(UnifiedAttention.of(t).apply(), t.y())).as("unified " + what).isLessThan(1e-5);
        // causal: nothing above the diagonal; a row on demand is the blocked channel's row
        float[] c0 = alpha.channel(0);
        int L = alpha.length();
        for (int i = 0; i < L; i++) for (int j = i + 1; j < L; j++) assertThat(c0[i * L + j]).isZero();
        assertThat(Fixtures.relativeError(alpha.row(0, L - 1), Arrays.copyOfRange(c0, (L - 1) * L, L * L))).isLessThan(1e-5);
    }
}
