package org.mambalens.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.engine.text.Sampler;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The text classifiers against their references: GPTNeoXForSequenceClassification (transformers) and
 * MambaForSequenceClassification (weights-tools/reference/mamba_classifier.py) at random weights, and the
 * trained fortunes topic classifiers on the whole test split, on the CPU and, where a GPU opens, on CUDA; the GPT-NeoX
 * LM they were tuned from.
 */
class TextClassifiersTest {
    static Stream<Arguments> randomWeights() {
        return Fixtures.onEveryDevice("mamba_cls_f32", "mamba_cls_bf16", "neox_cls_parallel_f32", "neox_cls_sequential_bf16");
    }

    static Stream<Arguments> trained() {
        return Fixtures.onEveryDevice("mamba-fortunes-topics", "gptneox-fortunes-topics", "mamba-wordnet", "gptneox-wordnet");
    }

    static TextClassifier load(Path dir, Device device) {
        if (device == Device.CUDA) GpuRequired.check();
        return Models.loadTextClassifier(dir, device, Precision.F32);
    }

    @ParameterizedTest
    @MethodSource("randomWeights")
    void logitsMatchTheReference(Device device, String name) {
        Path dir = Fixtures.golden().resolve("classifiers/" + name);
        JsonNode ref = Fixtures.json(dir.resolve("reference.json"));
        Npy.Array expected = Npy.readFloat32(dir.resolve("logits.npy"));
        try (TextClassifier classifier = load(dir, device)) {
            int C = classifier.labels().size();
            assertThat(expected.dim(1)).isEqualTo(C);
            assertThat(classifier.labels()).isEqualTo(labels(Fixtures.json(dir.resolve("config.json"))));
            float[] actual = new float[expected.data().length];
            for (int row = 0; row < expected.dim(0); row++) {
                int[] ids = Fixtures.ints(ref.get("token_ids").get(row));   // padded rows run as they are, pads and all
                assertThat(classifier.readPosition(ids)).isEqualTo(ref.get("read_positions").get(row).asInt());
                System.arraycopy(classifier.logits(ids), 0, actual, row * C, C);
            }
            assertThat(Fixtures.relativeError(actual, expected.data())).isLessThan(1e-4);
        }
    }

    /** Every text of the test split: logits within 1e-4 of PyTorch's, hence the same predictions and accuracy. */
    @ParameterizedTest
    @MethodSource("trained")
    void trainedClassifiersMatchPyTorchOnTheTestSplit(Device device, String name) throws Exception {
        Path dir = Fixtures.repository().resolve("models/" + name);
        Path golden = Fixtures.golden().resolve("trained/" + name);
        Npy.Array expected = Npy.readFloat32(golden.resolve("test_logits.npy"));
        String split = Fixtures.json(golden.resolve("reference.json")).get("data").asText();       // the test split, in the repository
        List<String> lines = Files.readAllLines(Fixtures.repository().resolve(split));
        BpeTokenizer tokenizer = BpeTokenizer.load(dir.resolve("tokenizer.json"));
        ObjectMapper json = new ObjectMapper();
        try (TextClassifier classifier = load(dir, device)) {
            int C = classifier.labels().size(), right = 0;
            assertThat(expected.dim(0)).isEqualTo(lines.size());
            float[] actual = new float[expected.data().length];
            for (int n = 0; n < lines.size(); n++) {
                JsonNode row = json.readTree(lines.get(n));
                float[] logits = classifier.logits(tokenizer.encode(row.get("text").asText()));
                System.arraycopy(logits, 0, actual, n * C, C);
                if (Sampler.argmax(logits) == row.get("label").asInt()) right++;
                assertThat(Sampler.argmax(logits)).as("text %d", n).isEqualTo(Sampler.argmax(Arrays.copyOfRange(expected.data(), n * C, (n + 1) * C)));
            }
            assertThat(Fixtures.relativeError(actual, expected.data())).isLessThan(1e-4);
            assertThat((double) right / lines.size()).isCloseTo(Fixtures.json(golden.resolve("reference.json")).get("test_accuracy").asDouble(),
                    org.assertj.core.data.Offset.offset(1e-9));
        }
    }

    @Test
    void trainedGptNeoXLanguageModelMatchesTransformers() {
        Path golden = Fixtures.golden().resolve("trained/gptneox-fortunes");
        JsonNode ref = Fixtures.json(golden.resolve("reference.json"));
        int[] ids = Fixtures.ints(ref.get("token_ids")), greedy = Fixtures.ints(ref.get("greedy_ids"));
        try (LanguageModel lm = Models.loadLanguageModel(Fixtures.repository().resolve("models/gptneox-fortunes"))) {
            assertThat(Fixtures.relativeError(lm.forward(ids, null), Npy.readFloat32(golden.resolve("logits.npy")).data())).isLessThan(1e-4);
            assertThat(Fixtures.greedy(lm, ids, greedy.length)).containsExactly(greedy);
        }
    }

    @Test
    void labelsResolveByNameOrIndexAndRefuseOthers() {
        try (TextClassifier classifier = Models.loadTextClassifier(Fixtures.golden().resolve("classifiers/mamba_cls_f32"), Device.CPU, Precision.F32)) {
            assertThat(classifier.label("positive")).isEqualTo(2);
            assertThat(classifier.label("1")).isEqualTo(1);
            assertThatThrownBy(() -> classifier.label("3")).hasMessageContaining("[negative, neutral, positive]");
            assertThatThrownBy(() -> classifier.model().forwardWithGradients(new int[]{5, 6}, 1, 3, org.mambalens.engine.trace.TraceRecorder.allLayers()))
                    .hasMessageContaining("output 3 is outside the model's outputs [0, 3)");
        }
    }

    @Test
    void aLanguageModelIsNotAClassifier() {
        assertThatThrownBy(() -> Models.loadTextClassifier(Fixtures.golden().resolve("gptneox/neox_parallel_f32"), Device.CPU, Precision.F32))
                .hasMessageContaining("not a text classifier");
    }

    private static List<String> labels(JsonNode config) {
        return java.util.stream.IntStream.range(0, config.get("id2label").size()).mapToObj(k -> config.get("id2label").get(Integer.toString(k)).asText()).toList();
    }

    /**
     * transformers has no sequence-classification head for Mamba-2, RWKV or RecurrentGemma: a checkpoint whose
     * config.json names one is refused in one line naming that file.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"mamba2/mamba2_f32, Mamba2ForSequenceClassification", "rwkv/rwkv_f32, RwkvForSequenceClassification",
            "griffin/griffin_f32, RecurrentGemmaForSequenceClassification"})
    void classifiersOfFamiliesWithoutAHeadAreRefused(String fixture, String architecture, @org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        Path dir = Fixtures.golden().resolve(fixture);
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) Fixtures.json(dir.resolve("config.json"));
        config.putArray("architectures").add(architecture);
        config.putObject("id2label").put("0", "a").put("1", "b");
        config.put("pad_token_id", 0);
        Files.writeString(tmp.resolve("config.json"), config.toPrettyString());
        Files.copy(dir.resolve("model.safetensors"), tmp.resolve("model.safetensors"));
        String type = config.get("model_type").asText();
        assertThatThrownBy(() -> Models.loadTextClassifier(tmp, Device.CPU, Precision.F32))
                .hasMessageContainingAll(tmp.resolve("config.json").toString(), "\"" + type + "\" sequence classifiers are not supported")
                .hasMessageNotContaining("\n");
    }
}
