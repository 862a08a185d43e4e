package org.mambalens.engine.model.mamba2;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.SsdTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The engine against transformers' Mamba2ForCausalLM on the same safetensors (weights-tools/reference/
 * mamba2_fixtures.py): one group, F32, tied head; two groups, BF16, biases, conv kernel 3, a Δ limit.
 */
class Mamba2GoldenTest {
    static Path dir(String name) {
        return Fixtures.golden().resolve("mamba2/" + name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba2_f32", "mamba2_groups_bf16"})
    void logitsAndMixerInternalsMatchTransformers(String name) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        try (LanguageModel model = Models.loadLanguageModel(dir(name))) {
            assertThat(model).isInstanceOf(Mamba2Model.class);
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = model.forward(Fixtures.ints(ref.get("token_ids")), trace);
            assertThat(Fixtures.relativeError(logits, Npy.readFloat32(dir(name).resolve("logits.npy")).data())).isLessThan(1e-4);
            int checked = 0;
            for (int layer = 0; layer < model.layers(); layer++) {
                if (!Files.exists(dir(name).resolve("trace_" + layer + "_dt.npy"))) continue;
                SsdTrace t = trace.layer(layer, SsdTrace.class);
                for (var e : Map.of("dt", t.delta(), "B", t.b(), "C", t.c(), "x", t.x(), "y", t.y()).entrySet()) {
                    float[] expected = Npy.readFloat32(dir(name).resolve("trace_" + layer + "_" + e.getKey() + ".npy")).data();
                    assertThat(Fixtures.relativeError(e.getValue(), expected)).as(name + " layer " + layer + " " + e.getKey()).isLessThan(1e-5);
                }
                checked++;
            }
            assertThat(checked).isEqualTo(2);
        }
    }
}
