package org.mambalens.xai.render;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.xai.methods.ImageExplainer.Method;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The text report for a Transformer language model: softmax summaries, rollout and Chefer's attribution through its reverse pass. */
class TextReportTest {
    @TempDir
    Path tmp;

    @Test
    void explainsAGptNeoXPrediction() throws Exception {
        Path dir = Fixtures.golden().resolve("gptneox/neox_sequential_bf16");
        int[] ids = Arrays.copyOf(Fixtures.ints(Fixtures.json(dir.resolve("reference.json")).get("token_ids")), 10);
        try (LanguageModel lm = Models.loadLanguageModel(dir)) {
            Path report = TextReport.write(tmp, Families.forDirectory(dir), lm, ids, id -> "<" + id + ">", "ten ids", List.of(Method.values()), -1,
                    TextReport.Target.nextToken(ids, null, id -> "<" + id + ">"));
            assertThat(Files.readString(report)).contains("Attention per layer", "attribution", "&lt;" + ids[0] + "&gt;");
            var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(tmp.resolve("explanation.json").toFile());
            assertThat(json.get("model").asText()).isEqualTo("gpt_neox");
            assertThat(json.get("model_name").asText()).isEqualTo("GPT-NeoX");
            for (String m : new String[]{"raw", "rollout", "attribution"}) assertThat(json.get(m).size()).as(m).isEqualTo(10);
            double rolloutSum = 0;
            for (var v : json.get("rollout")) rolloutSum += v.asDouble();
            assertThat(rolloutSum).as("a rollout row of row-stochastic matrices sums to 1").isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-4));
            for (var v : json.get("attribution")) assertThat(v.asDouble()).isGreaterThanOrEqualTo(0);
            assertThat(tmp.resolve("layer2_matrix.png")).exists();
        }
    }

    /** A classifier's chosen label, read before trailing pads: the relevance row is the read position's, nothing after it counts. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"mamba_cls_f32", "neox_cls_parallel_f32"})
    void explainsAClassifierLabelAtItsReadPosition(String name) throws Exception {
        Path dir = Fixtures.golden().resolve("classifiers/" + name);
        int[] ids = Fixtures.ints(Fixtures.json(dir.resolve("reference.json")).get("token_ids").get(1));     // pads from 17 on
        try (org.mambalens.engine.model.TextClassifier classifier = Models.loadTextClassifier(dir, org.mambalens.engine.model.Device.CPU, Precision.F32)) {
            TextReport.write(tmp, Families.forDirectory(dir), classifier.model(), ids, id -> "<" + id + ">", "padded", List.of(Method.values()), 0,
                    TextReport.Target.label(classifier, ids, 2));
            var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(tmp.resolve("explanation.json").toFile());
            assertThat(json.get("position").asInt()).isEqualTo(16);
            assertThat(json.get("explained_label").asText()).isEqualTo(classifier.labels().get(2));
            for (String m : new String[]{"raw", "rollout", "attribution"}) {
                assertThat(json.get(m).size()).isEqualTo(ids.length);
                for (int t = 17; t < ids.length; t++) assertThat(json.get(m).get(t).asDouble()).as(m + " after the read position").isZero();
                assertThat(json.get(m).get(3).asDouble()).as(m).isNotZero();
            }
        }
    }

    /**
     * A Mamba-2, RWKV or Griffin classifier (its LM fixture with a random score): every method explains a label at the
     * read position of a right-padded text, the implicit attention of its layers and the reverse pass from the label.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"mamba2/mamba2_groups_bf16, Mamba2ForSequenceClassification", "rwkv/rwkv_f32, RwkvForSequenceClassification",
            "griffin/griffin_bf16, RecurrentGemmaForSequenceClassification"})
    void explainsARecurrentClassifierLabelAtItsReadPosition(String fixture, String architecture) throws Exception {
        Path lm = Fixtures.golden().resolve(fixture);
        int[] ids = Arrays.copyOf(Fixtures.ints(Fixtures.json(lm.resolve("reference.json")).get("token_ids")), 16);
        int pad = java.util.stream.IntStream.range(0, 300).filter(id -> Arrays.stream(ids).noneMatch(x -> x == id)).findFirst().orElseThrow();
        Arrays.fill(ids, 12, 16, pad);
        int D = Fixtures.json(lm.resolve("config.json")).get("hidden_size").asInt();
        java.util.Random random = new java.util.Random(3);
        float[] score = new float[3 * D];
        for (int k = 0; k < score.length; k++) score[k] = (float) random.nextGaussian();
        Path dir = org.mambalens.engine.model.ClassifierCheckpoint.write(lm, tmp.resolve("classifier"), architecture, score, 3, pad);
        try (org.mambalens.engine.model.TextClassifier classifier = Models.loadTextClassifier(dir, org.mambalens.engine.model.Device.CPU, Precision.F32)) {
            TextReport.write(tmp.resolve("report"), Families.forDirectory(dir), classifier.model(), ids, id -> "<" + id + ">", "padded",
                    List.of(Method.values()), 0, TextReport.Target.label(classifier, ids, 2));
            var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(tmp.resolve("report/explanation.json").toFile());
            assertThat(json.get("position").asInt()).isEqualTo(11);
            assertThat(json.get("explained_label").asText()).isEqualTo("label2");
            for (String m : new String[]{"raw", "rollout", "attribution"}) {
                assertThat(json.get(m).size()).isEqualTo(ids.length);
                for (int t = 12; t < ids.length; t++) assertThat(json.get(m).get(t).asDouble()).as(m + " after the read position").isZero();
                assertThat(json.get(m).get(11).asDouble()).as(m + ": the read position is relevant to itself").isGreaterThan(0);
            }
        }
    }

    /**
     * Mamba-2, RWKV and Griffin: raw attention and rollout over their implicit attention, per head and per channel;
     * Mamba-Attribution too where the family has a reverse pass (Mamba-2, RWKV).
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"mamba2/mamba2_groups_bf16, mamba2", "rwkv/rwkv_f32, rwkv", "griffin/griffin_bf16, recurrent_gemma"})
    void explainsRecurrentModelsWithTheirImplicitAttention(String name, String modelType) throws Exception {
        Path dir = Fixtures.golden().resolve(name);
        int[] ids = Arrays.copyOf(Fixtures.ints(Fixtures.json(dir.resolve("reference.json")).get("token_ids")), 8);
        try (LanguageModel lm = Models.loadLanguageModel(dir)) {
            boolean attribution = !modelType.equals("recurrent_gemma");
            TextReport.write(tmp, Families.forDirectory(dir), lm, ids, id -> "<" + id + ">", "eight ids",
                    attribution ? List.of(Method.raw, Method.rollout, Method.attribution) : List.of(Method.raw, Method.rollout), -1,
                    TextReport.Target.nextToken(ids, null, id -> "<" + id + ">"));
            var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(tmp.resolve("explanation.json").toFile());
            assertThat(json.get("model").asText()).isEqualTo(modelType);
            assertThat(json.get("raw").size()).isEqualTo(8);
            assertThat(json.get("rollout").size()).isEqualTo(8);
            if (attribution) {
                assertThat(json.get("attribution").size()).isEqualTo(8);
                assertThat(json.get("attribution").get(7).asDouble()).as("the explained position is relevant to itself").isGreaterThan(0);
            }
            assertThat(Files.readString(tmp.resolve("report.html"))).contains("Implicit attention per layer");
        }
    }
}
