package org.mambalens.engine.model.rwkv;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.RwkvTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The engine against transformers' RwkvForCausalLM on the same safetensors (weights-tools/reference/rwkv_fixtures.py),
 * on the CPU and, where a GPU can be opened, on CUDA (skipped with the reason otherwise).
 */
class RwkvGoldenTest {
    static final String[] CONFIGS = {"rwkv_f32", "rwkv_bf16"};

    static Path dir(String name) {
        return Fixtures.golden().resolve("rwkv/" + name);
    }

    static Stream<Device> devices() {
        return Stream.of(Device.CPU, Device.CUDA);
    }

    /** Every device with every fixture. */
    static Stream<Arguments> fixtures() {
        return devices().flatMap(d -> Arrays.stream(CONFIGS).map(name -> Arguments.of(d, name)));
    }

    static LanguageModel load(Device device, String name) {
        if (device == Device.CUDA) GpuRequired.check();
        LanguageModel model = Models.loadLanguageModel(dir(name), device, Precision.F32);
        assertThat(model).isInstanceOf(RwkvModel.class);
        assertThat(model.onGpu()).isEqualTo(device == Device.CUDA);
        return model;
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void logitsAndWkvMatchTransformers(Device device, String name) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        try (LanguageModel model = load(device, name)) {
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

    @ParameterizedTest
    @MethodSource("fixtures")
    void greedyIdsMatchTransformers(Device device, String name) {
        try (LanguageModel model = load(device, name)) {
            Fixtures.assertGreedyIdsMatch(model, dir(name));
        }
    }

    /** A prompt prefilled in two parts (one of them a single token), then one token at a time (replayed steps on a GPU). */
    @ParameterizedTest
    @MethodSource("fixtures")
    void decodingEqualsTheForwardPass(Device device, String name) {
        int[] ids = Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids"));
        try (LanguageModel model = load(device, name)) {
            Fixtures.assertDecodeEqualsForward(model, ids, 1, 9);
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void longPromptsArePrefilledInChunksWithTheSameResult(Device device) {
        try (LanguageModel model = load(device, CONFIGS[0])) {
            int[] ids = new Random(3).ints(RwkvModel.PREFILL_CHUNK + 37, 0, model.vocabSize()).toArray();
            int v = model.vocabSize();
            float[] all = model.forward(ids, null);
            LanguageModel.State state = model.newState();
            float[] last = model.prefill(ids, state);
            assertThat(Fixtures.relativeError(last, Arrays.copyOfRange(all, (ids.length - 1) * v, ids.length * v))).isLessThan(1e-5);
            assertThat(state.position()).isEqualTo(ids.length);
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void aBadTokenIdIsRefusedBeforeAnythingRuns(Device device) {
        try (LanguageModel model = load(device, CONFIGS[0])) {
            LanguageModel.State state = model.newState();
            int[] ids = new int[RwkvModel.PREFILL_CHUNK + 10];     // the bad id is in the second chunk
            ids[ids.length - 1] = model.vocabSize();
            assertThatThrownBy(() -> model.prefill(ids, state)).hasMessageContaining("token id " + model.vocabSize() + " is outside the vocabulary");
            assertThat(state.position()).isZero();
        }
    }

    @ParameterizedTest
    @MethodSource("devices")
    void onlyTheWantedLayersAreTraced(Device device) {
        try (LanguageModel model = load(device, CONFIGS[0])) {
            TraceRecorder onlyLayerOne = TraceRecorder.layers(java.util.Set.of(1));
            model.forward(new int[]{1, 2, 3}, onlyLayerOne);
            assertThat(onlyLayerOne.recordedLayers()).containsExactly(1);
            assertThat(onlyLayerOne.layer(1, org.mambalens.engine.trace.RwkvTrace.class).length()).isEqualTo(3);
        }
    }
}
