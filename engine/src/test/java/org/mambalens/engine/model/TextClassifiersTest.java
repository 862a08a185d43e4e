package org.mambalens.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.engine.text.Sampler;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The text classifiers against their references at random weights: GPTNeoXForSequenceClassification (transformers) and
 * our Mamba, Mamba-2, RWKV and RecurrentGemma ...ForSequenceClassification (weights-tools/reference/sequence_classifiers.py);
 * the Mamba-2, RWKV and Griffin classifiers against their language models' forward and reverse passes; the trained fortune topic and
 * WordNet gloss classifiers on their whole test splits, on the CPU and, where a GPU opens, on CUDA; the GPT-NeoX LM
 * they were tuned from.
 */
class TextClassifiersTest {
    static Stream<Arguments> randomWeights() {
        return Fixtures.onEveryDevice("mamba_cls_f32", "mamba_cls_bf16", "neox_cls_parallel_f32", "neox_cls_sequential_bf16", "mamba2_cls_f32",
                "mamba2_cls_bf16", "rwkv_cls_f32", "rwkv_cls_bf16", "griffin_cls_f32", "griffin_cls_bf16");
    }

    static Stream<Arguments> trained() {
        return Fixtures.onEveryDevice("mamba-fortunes-topics", "gptneox-fortunes-topics", "mamba-wordnet", "gptneox-wordnet", "mamba2-wordnet",
                "rwkv-wordnet", "griffin-wordnet");
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

    static Stream<Arguments> recurrentLanguageModels() {
        return Fixtures.onEveryDevice("mamba2/mamba2_f32", "mamba2/mamba2_groups_bf16", "rwkv/rwkv_f32", "rwkv/rwkv_bf16", "griffin/griffin_f32",
                "griffin/griffin_bf16");
    }

    /** Our classifiers of the families transformers has none for (weights-tools/reference/sequence_classifiers.py), by model_type. */
    private static final Map<String, String> ARCHITECTURES = Map.of("mamba2", "Mamba2ForSequenceClassification",
            "rwkv", "RwkvForSequenceClassification", "recurrent_gemma", "RecurrentGemmaForSequenceClassification");

    /**
     * A Mamba-2, RWKV or Griffin classifier made from the family's LM fixture with a random score [3, D]: at every
     * position its label logits are the LM's last hidden state (the final norm's output, as the LM's forward records it)
     * times scoreᵀ, without Griffin's soft cap; a right-padded text is read at its last token.
     */
    @ParameterizedTest
    @MethodSource("recurrentLanguageModels")
    void recurrentClassifiersScoreTheFinalHiddenState(Device device, String fixture, @TempDir Path tmp) {
        Path lm = Fixtures.golden().resolve(fixture);
        int[] ids = prompt(lm);
        int L = ids.length, C = 3, pad = unusedId(ids);
        TraceRecorder hidden = TraceRecorder.hiddenStatesOnly();
        try (LanguageModel model = Models.loadLanguageModel(lm)) {
            model.forward(ids, hidden);
        }
        float[] h = hidden.hiddenStates().getLast().values();
        int D = h.length / L;
        Random random = new Random(7);
        float[] score = new float[C * D];
        for (int k = 0; k < score.length; k++) score[k] = (float) (0.3 * random.nextGaussian());
        float[] expected = new float[L * C];
        for (int t = 0; t < L; t++) {
            for (int k = 0; k < C; k++) {
                double sum = 0;
                for (int j = 0; j < D; j++) sum += (double) h[t * D + j] * score[k * D + j];
                expected[t * C + k] = (float) sum;
            }
        }
        Path dir = ClassifierCheckpoint.write(lm, tmp, ARCHITECTURES.get(Families.forDirectory(lm).modelType()), score, C, pad);
        double tolerance = device == Device.CPU ? 1e-5 : 1e-4;
        try (TextClassifier classifier = load(dir, device)) {
            assertThat(classifier.labels()).containsExactly("label0", "label1", "label2");
            assertThat(Fixtures.relativeError(classifier.model().forward(ids, null), expected)).isLessThan(tolerance);
            int[] padded = Arrays.copyOf(ids, L + 5);
            Arrays.fill(padded, L, padded.length, pad);
            assertThat(classifier.readPosition(padded)).isEqualTo(L - 1);
            assertThat(Fixtures.relativeError(classifier.logits(padded), Arrays.copyOfRange(expected, (L - 1) * C, L * C))).isLessThan(tolerance);
        }
    }

    /**
     * The reverse pass for a label is the LM's for the token whose head row that label's score copies: the same residual
     * and input gradients, also from a GPU model (whose reverse pass runs on its checkpoint's CPU view). Griffin's LM
     * logit is soft-capped, cap·tanh(z/cap), and the classifier's is not, so there the LM's gradient is the classifier's
     * times 1 − tanh²(z/cap).
     */
    @ParameterizedTest
    @MethodSource("recurrentLanguageModels")
    void recurrentClassifiersReverseThroughTheirScore(Device device, String fixture, @TempDir Path tmp) {
        Path lm = Fixtures.golden().resolve(fixture);
        int[] ids = prompt(lm), tokens = {5, 17, 42};
        int position = ids.length - 4, label = 1;
        double cap = Fixtures.json(lm.resolve("config.json")).path("logits_soft_cap").asDouble(0);
        Path dir = ClassifierCheckpoint.write(lm, tmp, ARCHITECTURES.get(Families.forDirectory(lm).modelType()),
                ClassifierCheckpoint.headRows(lm, tokens), tokens.length, unusedId(ids));
        TraceRecorder byLabel = TraceRecorder.allLayers(), byToken = TraceRecorder.allLayers();
        try (TextClassifier classifier = load(dir, device); LanguageModel model = Models.loadLanguageModel(lm)) {
            float[] labelLogits = classifier.model().forwardWithGradients(ids, position, label, byLabel);
            float capped = model.forwardWithGradients(ids, position, tokens[label], byToken)[tokens[label]];
            double z = labelLogits[label];
            assertThat(capped).isCloseTo((float) (cap > 0 ? cap * Math.tanh(z / cap) : z), org.assertj.core.data.Percentage.withPercentage(1e-3));
            float factor = (float) (cap > 0 ? 1 - (capped / cap) * (capped / cap) : 1);
            for (int l = 0; l < classifier.model().layers(); l++) {
                assertThat(Fixtures.relativeError(scaled(byLabel.residualGradient(l), factor), byToken.residualGradient(l))).as("layer " + l).isLessThan(1e-5);
            }
            assertThat(Fixtures.relativeError(scaled(byLabel.inputGradient(), factor), byToken.inputGradient())).isLessThan(1e-5);
        }
    }

    /** The first 16 ids of a language-model fixture's prompt. */
    private static int[] prompt(Path lm) {
        return Arrays.copyOf(Fixtures.ints(Fixtures.json(lm.resolve("reference.json")).get("token_ids")), 16);
    }

    /** The smallest id not among {@code ids}: a pad token that pads only. */
    private static int unusedId(int[] ids) {
        java.util.Set<Integer> used = new java.util.HashSet<>(Arrays.stream(ids).boxed().toList());
        int id = 0;
        while (used.contains(id)) id++;
        return id;
    }

    private static float[] scaled(float[] values, float factor) {
        float[] out = values.clone();
        for (int k = 0; k < out.length; k++) out[k] *= factor;
        return out;
    }
}
