package org.mambalens.engine.model.rwkv;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.RwkvTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** The engine against transformers' RwkvForCausalLM on the same safetensors (weights-tools/reference/rwkv_fixtures.py). */
class RwkvGoldenTest {
    static Path dir(String name) {
        return Fixtures.golden().resolve("rwkv/" + name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"rwkv_f32", "rwkv_bf16"})
    void logitsAndWkvMatchTransformers(String name) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        try (LanguageModel model = Models.loadLanguageModel(dir(name))) {
            assertThat(model).isInstanceOf(RwkvModel.class);
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = model.forward(Fixtures.ints(ref.get("token_ids")), trace);
            assertThat(Fixtures.relativeError(logits, Npy.readFloat32(dir(name).resolve("logits.npy")).data())).isLessThan(1e-4);
            int checked = 0;
            for (int layer = 0; layer < model.layers(); layer++) {
                Path file = dir(name).resolve("wkv_" + layer + ".npy");
                if (!Files.exists(file)) continue;
                RwkvTrace t = trace.layer(layer, RwkvTrace.class);
                float[] wkv = Npy.readFloat32(file).data(), expected = new float[wkv.length];
                for (int j = 0; j < wkv.length; j++) expected[j] = t.r()[j] * wkv[j];   // the fixture is WKV before the gate
                assertThat(Fixtures.relativeError(t.gated(), expected)).as(name + " layer " + layer).isLessThan(1e-5);
                checked++;
            }
            assertThat(checked).isEqualTo(2);
        }
    }
}
