package org.mambalens.xai.attention;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.model.mamba.MambaModel;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The SPEC §3/§4 invariant: the hidden attention applied to u, and the unified attention applied to
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
            for (int layer : trace.recordedLayers()) check(trace.mixer(layer), name + " layer " + layer);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"vim/vim_small", "vim/vim_gray_cls0"})
    void reproducesBothVisionMambaDirections(String name) {
        Npy.Array pixels = Npy.readFloat32(Fixtures.golden().resolve(name + "/pixels.npy"));
        try (ImageClassifier model = Models.loadImageClassifier(Fixtures.golden().resolve(name))) {
            TraceRecorder trace = TraceRecorder.allLayers();
            model.classify(Arrays.copyOf(pixels.data(), pixels.data().length / pixels.dim(0)), trace);
            for (int layer : trace.recordedLayers()) {
                for (TraceRecorder.Direction d : TraceRecorder.Direction.values()) check(trace.mixer(layer, d), name + " layer " + layer + " " + d);
            }
        }
    }

    private static void check(MixerTrace t, String what) {
        HiddenAttention alpha = HiddenAttention.of(t);
        assertThat(Fixtures.relativeError(alpha.apply(), t.y())).as(what).isLessThan(1e-5);
        assertThat(Fixtures.relativeError(UnifiedAttention.of(t).apply(), t.y())).as("unified " + what).isLessThan(1e-5);
        // causal: nothing above the diagonal; the channel mean is the mean of the channels
        float[] c0 = alpha.channel(0);
        int L = alpha.length();
        for (int i = 0; i < L; i++) for (int j = i + 1; j < L; j++) assertThat(c0[i * L + j]).isZero();
        assertThat(alpha.row(0, L - 1)).containsExactly(Arrays.copyOfRange(c0, (L - 1) * L, L * L));
    }
}
