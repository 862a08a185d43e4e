package org.mambalens.engine.model.gptneox;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The engine against transformers' GPTNeoXForCausalLM on the same safetensors (weights-tools/reference/
 * gptneox_fixtures.py): parallel residual with F32 weights, and sequential residual with BF16 weights,
 * no attention bias, half-rotary heads and another rotary base.
 */
class GptNeoXGoldenTest {
    static Path dir(String name) {
        return Fixtures.golden().resolve("gptneox/" + name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"neox_parallel_f32", "neox_sequential_bf16"})
    void logitsAndAttentionMatchTransformers(String name) throws Exception {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        int[] ids = Fixtures.ints(ref.get("token_ids"));
        try (LanguageModel model = Models.loadLanguageModel(dir(name))) {
            assertThat(model).isInstanceOf(GptNeoXModel.class);
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = model.forward(ids, trace);
            assertThat(Fixtures.relativeError(logits, Npy.readFloat32(dir(name).resolve("logits.npy")).data())).isLessThan(1e-4);
            int checked = 0;
            for (int layer = 0; layer < 8; layer++) {
                Path attn = dir(name).resolve("attn_" + layer + ".npy");
                if (!Files.exists(attn)) continue;
                assertThat(Fixtures.relativeError(trace.layer(layer, AttentionTrace.class).probs(), Npy.readFloat32(attn).data())).as("layer " + layer).isLessThan(1e-4);
                checked++;
            }
            assertThat(checked).isEqualTo(2);
        }
    }
}
