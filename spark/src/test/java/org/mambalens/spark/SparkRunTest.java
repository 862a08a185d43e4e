package org.mambalens.spark;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.cli.Main;
import org.mambalens.engine.Fixtures;
import org.mambalens.xai.data.FashionMnist;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * --spark local[2] against the same command without it: results.json agrees within 1e-9 (all but the timings),
 * the items' rows are written, and an item that fails is reported in its row while the others are aggregated.
 *
 * <p>Each test first runs its command once and throws the output away. The engine's SIMD sums (Vector API
 * reduceLanes) add their lanes in one order while interpreted and in another once C2 has compiled them, so a
 * cold JVM's first items differ from a warm one's by float rounding (1e-7 relative, more in a ranking metric such
 * as mAP when two pixels' relevances swap). Warm, both runs compute with the same compiled kernels.
 */
class SparkRunTest {
    private static final double TOLERANCE = 1e-9;
    /** Milliseconds per item: the only figure that differs from one run to the next. */
    private static final String TIMING = "ms_per_image";

    @TempDir
    Path tmp;

    @BeforeAll
    static void loopbackOnly() {
        System.setProperty("mambalens.home", Fixtures.repository().toString());
        System.setProperty("spark.driver.host", "127.0.0.1");
        System.setProperty("spark.driver.bindAddress", "127.0.0.1");
        System.setProperty("spark.ui.enabled", "false");
    }

    @Test
    void evaluateOnSparkWritesTheSingleMachineResults() throws IOException {
        assumeTrue(FashionMnist.available(FashionMnist.DEBIAN), "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
        String[] args = {"evaluate", "--models", "vim", "--methods", "raw", "--limit", "2"};
        Path here = tmp.resolve("here"), spark = tmp.resolve("spark");
        assertThat(Main.run(with(args, "--threads", "2", "--out", tmp.resolve("warm-up").toString()))).isZero();
        assertThat(Main.run(with(args, "--threads", "2", "--out", here.toString()))).isZero();
        assertThat(Main.run(with(args, "--spark", "local[2]", "--out", spark.toString()))).isZero();
        assertSameResults(Fixtures.json(spark.resolve("results.json")), Fixtures.json(here.resolve("results.json")), "");
        assertThat(Files.readString(spark.resolve("per_image.csv"))).isEqualTo(withoutTimes(Files.readString(here.resolve("per_image.csv")),
                Files.readString(spark.resolve("per_image.csv"))));
        List<String> rows = csvLines(spark.resolve("items.csv"));
        assertThat(rows).hasSize(1 + 2);
        assertThat(rows.getFirst()).isEqualTo("item,ok,error,seconds,load_seconds,executor,result");
        assertThat(rows.get(1)).startsWith("0,true,,");
        assertThat(listParquet(spark.resolve("items.parquet"))).isNotEmpty();
    }

    @Test
    void anItemThatFailsIsReportedInItsRowAndTheOthersAreAggregated() throws IOException {
        Path texts = tmp.resolve("texts.jsonl");
        List<String> lines = Files.readAllLines(Fixtures.repository().resolve("data/fortunes-topics/test.jsonl")).subList(0, 3);
        List<String> withEmpty = new ArrayList<>(lines);
        withEmpty.add("{\"text\": \"\", \"label\": 0}");
        Files.write(texts, withEmpty);
        String[] args = {"evaluate-text", "--models", "mamba", "--methods", "raw", "--data", texts.toString()};
        Path here = tmp.resolve("here"), spark = tmp.resolve("spark");
        assertThat(Main.run(with(args, "--limit", "3", "--threads", "2", "--out", tmp.resolve("warm-up").toString()))).isZero();
        assertThat(Main.run(with(args, "--limit", "3", "--threads", "2", "--out", here.toString()))).isZero();
        assertThat(Main.run(with(args, "--limit", "4", "--spark", "local[2]", "--spark-files", "shared", "--out", spark.toString()))).isZero();
        assertSameResults(Fixtures.json(spark.resolve("results.json")), Fixtures.json(here.resolve("results.json")), "");
        List<String> rows = csvLines(spark.resolve("items.csv"));
        assertThat(rows).hasSize(1 + 4);
        assertThat(rows.get(4)).startsWith("3,false,").contains("encodes to no tokens");
    }

    /** Equal text and structure, numbers within {@link #TOLERANCE}, timings left out. */
    static void assertSameResults(JsonNode got, JsonNode expected, String path) {
        if (expected.isNumber()) {
            assertThat(got.isNumber()).as(path).isTrue();
            assertThat(got.asDouble()).as(path).isCloseTo(expected.asDouble(), org.assertj.core.data.Offset.offset(TOLERANCE));
        } else if (expected.isObject()) {
            List<String> gotNames = new ArrayList<>(), expectedNames = new ArrayList<>();
            got.fieldNames().forEachRemaining(gotNames::add);
            expected.fieldNames().forEachRemaining(expectedNames::add);
            assertThat(gotNames).as(path).isEqualTo(expectedNames);
            for (Iterator<Map.Entry<String, JsonNode>> it = expected.fields(); it.hasNext(); ) {
                var e = it.next();
                if (!e.getKey().equals(TIMING)) assertSameResults(got.get(e.getKey()), e.getValue(), path + "/" + e.getKey());
            }
        } else if (expected.isArray()) {
            assertThat(got.size()).as(path).isEqualTo(expected.size());
            for (int k = 0; k < expected.size(); k++) assertSameResults(got.get(k), expected.get(k), path + "[" + k + "]");
        } else {
            assertThat(got).as(path).isEqualTo(expected);
        }
    }

    /** {@code expected}'s lines with the last field (the item's milliseconds) taken from {@code got}. */
    private static String withoutTimes(String expected, String got) {
        String[] e = expected.split("\n"), g = got.split("\n");
        StringBuilder out = new StringBuilder();
        for (int k = 0; k < e.length; k++) {
            out.append(k < g.length ? e[k].substring(0, e[k].lastIndexOf(',') + 1) + g[k].substring(g[k].lastIndexOf(',') + 1) : e[k]).append('\n');
        }
        return out.toString();
    }

    /** The lines of the one CSV part Spark wrote into {@code dir}. */
    private static List<String> csvLines(Path dir) throws IOException {
        try (var parts = Files.list(dir)) {
            Path part = parts.filter(p -> p.getFileName().toString().endsWith(".csv")).findFirst().orElseThrow();
            return Files.readAllLines(part);
        }
    }

    private static List<Path> listParquet(Path dir) throws IOException {
        try (var parts = Files.list(dir)) {
            return parts.filter(p -> p.getFileName().toString().endsWith(".parquet")).toList();
        }
    }

    private static String[] with(String[] args, String... more) {
        String[] all = java.util.Arrays.copyOf(args, args.length + more.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return all;
    }
}
