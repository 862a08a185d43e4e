package org.mambalens.engine.model.gptneox;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The engine against transformers' GPTNeoXForCausalLM on the same safetensors (weights-tools/reference/
 * gptneox_fixtures.py): parallel residual with F32 weights, and sequential residual with BF16 weights,
 * no attention bias, half-rotary heads and another rotary base; on the CPU and, where one can be
 * opened, on a CUDA GPU (the same model class over the other backend).
 */
class GptNeoXGoldenTest {
    static final String[] FIXTURES = {"neox_parallel_f32", "neox_sequential_bf16"};

    @TempDir
    Path tmp;

    static Path dir(String name) {
        return Fixtures.golden().resolve("gptneox/" + name);
    }

    /** Every fixture on every device. */
    static Stream<Arguments> cases() {
        return Stream.of(Device.CPU, Device.CUDA).flatMap(d -> Arrays.stream(FIXTURES).map(name -> Arguments.of(d, name)));
    }

    static LanguageModel load(Path dir, Device device) {
        if (device == Device.CUDA) GpuRequired.check();
        return Models.loadLanguageModel(dir, device, Precision.F32);
    }

    /** How close decoding must come to the whole-sequence forward: a GPU sums its GEMMs in other orders. */
    static double decodeTolerance(Device device) {
        return device == Device.CUDA ? 1e-4 : 1e-5;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void logitsAndAttentionMatchTransformers(Device device, String name) {
        JsonNode ref = Fixtures.json(dir(name).resolve("reference.json"));
        int[] ids = Fixtures.ints(ref.get("token_ids"));
        try (LanguageModel model = load(dir(name), device)) {
            assertThat(model).isInstanceOf(GptNeoXModel.class);
            assertThat(model.onGpu()).isEqualTo(device == Device.CUDA);
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

    @ParameterizedTest
    @MethodSource("cases")
    void greedyIdsMatchTransformers(Device device, String name) {
        try (LanguageModel model = load(dir(name), device)) {
            Fixtures.assertGreedyIdsMatch(model, dir(name));
        }
    }

    /** A prompt prefilled in two parts (one of them a single token), then one token at a time through the cache. */
    @ParameterizedTest
    @MethodSource("cases")
    void decodingEqualsTheForwardPass(Device device, String name) {
        int[] ids = Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids"));
        try (LanguageModel model = load(dir(name), device)) {
            Fixtures.assertDecodeEqualsForward(model, ids, 1, 9, decodeTolerance(device));
        }
    }

    /**
     * A prompt longer than a prefill chunk (the fixture's max_position_embeddings raised: the rotary embedding
     * has no table), then steps past the cache's first capacity, which then grows: every row as the forward's.
     */
    @ParameterizedTest
    @EnumSource(value = Device.class, names = {"CPU", "CUDA"})
    void longPromptsArePrefilledInChunksAndTheCacheGrows(Device device) throws Exception {
        Path dir = withMaxPositions(dir(FIXTURES[0]), 1024);
        int[] ids = new Random(3).ints(GptNeoXModel.PREFILL_CHUNK + 90, 0, 300).toArray();
        int prompt = GptNeoXModel.PREFILL_CHUNK + 37;
        try (LanguageModel model = load(dir, device)) {
            int v = model.vocabSize();
            float[] all = model.forward(ids, null);
            LanguageModel.State state = model.newState();
            float[] last = model.prefill(Arrays.copyOf(ids, prompt), state);
            assertThat(Fixtures.relativeError(last, Arrays.copyOfRange(all, (prompt - 1) * v, prompt * v))).isLessThan(decodeTolerance(device));
            for (int t = prompt; t < ids.length; t++) {
                float[] row = model.step(ids[t], state);
                assertThat(Fixtures.relativeError(row, Arrays.copyOfRange(all, t * v, (t + 1) * v))).as("position %d", t)
                        .isLessThan(decodeTolerance(device));
            }
            assertThat(state.position()).isEqualTo(ids.length);
        }
    }

    @ParameterizedTest
    @EnumSource(value = Device.class, names = {"CPU", "CUDA"})
    void positionsBeyondMaxPositionEmbeddingsAreRefusedBeforeAnythingRuns(Device device) {
        try (LanguageModel model = load(dir(FIXTURES[0]), device)) {
            LanguageModel.State state = model.newState();
            model.prefill(new int[100], state);
            assertThatThrownBy(() -> model.prefill(new int[29], state)).hasMessageContaining("129 positions exceed max_position_embeddings 128");
            assertThat(state.position()).isEqualTo(100);
            assertThatThrownBy(() -> model.forward(new int[129], null)).hasMessageContaining("max_position_embeddings 128");
            float[] row = model.prefill(new int[28], state);
            assertThat(row).hasSize(model.vocabSize());
            assertThat(state.position()).isEqualTo(128);
        }
    }

    /** A GPU model's reverse pass runs on the CPU from the same checkpoint: the same gradients as a CPU model's. */
    @ParameterizedTest
    @MethodSource("fixtures")
    void gradientsOfAGpuModelEqualThoseOfACpuModel(String name) {
        GpuRequired.check();
        int[] ids = Arrays.copyOf(Fixtures.ints(Fixtures.json(dir(name).resolve("reference.json")).get("token_ids")), 12);
        TraceRecorder onGpu = TraceRecorder.allLayers(), onCpu = TraceRecorder.allLayers();
        try (LanguageModel gpu = load(dir(name), Device.CUDA); LanguageModel cpu = load(dir(name), Device.CPU)) {
            float[] g = gpu.forwardWithGradients(ids, 11, 5, onGpu), c = cpu.forwardWithGradients(ids, 11, 5, onCpu);
            assertThat(g).containsExactly(c);
            assertThat(onGpu.inputGradient()).containsExactly(onCpu.inputGradient());
            for (int layer = 0; layer < cpu.layers(); layer++) assertThat(onGpu.attentionGradient(layer)).containsExactly(onCpu.attentionGradient(layer));
        }
    }

    static Stream<String> fixtures() {
        return Arrays.stream(FIXTURES);
    }

    /** A copy of a fixture whose config.json allows {@code positions} positions. */
    private Path withMaxPositions(Path dir, int positions) throws Exception {
        Path out = tmp.resolve(dir.getFileName() + "-" + positions);
        Files.createDirectories(out);
        ObjectNode config = (ObjectNode) Fixtures.json(dir.resolve("config.json"));
        config.put("max_position_embeddings", positions);
        Files.writeString(out.resolve("config.json"), config.toPrettyString());
        Files.copy(dir.resolve("model.safetensors"), out.resolve("model.safetensors"));
        return out;
    }
}
