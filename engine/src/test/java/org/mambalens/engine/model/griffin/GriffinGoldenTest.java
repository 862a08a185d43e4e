package org.mambalens.engine.model.griffin;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** The engine against transformers' RecurrentGemmaForCausalLM on the same safetensors (weights-tools/reference/recurrent_gemma_fixtures.py). */
class GriffinGoldenTest {
    static Path dir(String name) {
        return Fixtures.golden().resolve("griffin/" + name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"griffin_f32", "griffin_bf16"})
    void logitsRgLruOutputsAndAttentionMatchTransformers(String name) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        try (LanguageModel model = Models.loadLanguageModel(dir(name))) {
            assertThat(model).isInstanceOf(GriffinModel.class);
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = model.forward(Fixtures.ints(ref.get("token_ids")), trace);
            assertThat(Fixtures.relativeError(logits, Npy.readFloat32(dir(name).resolve("logits.npy")).data())).isLessThan(1e-4);
            int lru = 0, attention = 0;
            for (int layer = 0; layer < model.layers(); layer++) {
                Path h = dir(name).resolve("lru_" + layer + ".npy"), probs = dir(name).resolve("attn_" + layer + ".npy");
                if (Files.exists(h)) {
                    assertThat(Fixtures.relativeError(trace.layer(layer, LruTrace.class).h(), Npy.readFloat32(h).data())).as(name + " layer " + layer).isLessThan(1e-5);
                    lru++;
                }
                if (Files.exists(probs)) {
                    assertThat(Fixtures.relativeError(trace.layer(layer, AttentionTrace.class).probs(), Npy.readFloat32(probs).data())).as(name + " layer " + layer).isLessThan(1e-4);
                    attention++;
                }
            }
            assertThat(lru).isEqualTo(2);
            assertThat(attention).isEqualTo(1);
        }
    }

    /** A prefill chunk longer than the attention window (16), starting mid-sequence, then single steps across the window's edge. */
    @Test
    void decodingAcrossTheWindowEqualsTheForwardPass() {
        int[] ids = Fixtures.ints(Fixtures.json(dir("griffin_f32").resolve("reference.json")).get("token_ids"));
        try (LanguageModel model = Models.loadLanguageModel(dir("griffin_f32"))) {
            assertThat(((GriffinModel) model).config().window()).isLessThan(25);
            Fixtures.assertDecodeEqualsForward(model, ids, 5, 30);
        }
    }
}
