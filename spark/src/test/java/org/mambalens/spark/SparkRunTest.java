package org.mambalens.spark;

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
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * --spark local[2] against the same command without it: results.json agrees within 1e-9 (all but the timings),
 * the items' rows are written, and an item that fails is reported in its row while the others are aggregated.

 */
class SparkRunTest {
    private static final double TOLERANCE = 1e-9;

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
        assertThat(Main.run(with(args, "--threads", "2", "--out", here.toString()))).isZero();
        assertThat(Main.run(with(args, "--spark", "local[2]", "--out", spark.toString()))).isZero();
        assertSameResults(spark.resolve("results.json"), here.resolve("results.json"));
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
        List<String> lines = Files.readAllLines(Fixtures.repository().resolve("data/fortunes-topics/test.jsonl")).subList(0, 2);
        List<String> withEmpty = new ArrayList<>(lines);
        withEmpty.add("{\"text\": \"\", \"label\": 0}");
        Files.write(texts, withEmpty);
        String[] args = {"evaluate-text", "--models", "mamba", "--methods", "raw", "--data", texts.toString()};
        Path here = tmp.resolve("here"), spark = tmp.resolve("spark");
        assertThat(Main.run(with(args, "--limit", "2", "--threads", "2", "--out", here.toString()))).isZero();
        assertThat(Main.run(with(args, "--limit", "3", "--spark", "local[2]", "--spark-files", "shared", "--out", spark.toString()))).isZero();
        assertSameResults(spark.resolve("results.json"), here.resolve("results.json"));
        List<String> rows = csvLines(spark.resolve("items.csv"));
        assertThat(rows).hasSize(1 + 3);
        assertThat(rows.get(3)).startsWith("2,false,").contains("encodes to no tokens");
        // the empty text alone: nothing to aggregate, a failed command (its row still written)
        Path empty = tmp.resolve("empty.jsonl"), none = tmp.resolve("none");
        Files.writeString(empty, withEmpty.getLast() + "\n");
        assertThat(Main.run("evaluate-text", "--models", "mamba", "--methods", "raw", "--data", empty.toString(), "--spark", "local[2]",
                "--spark-files", "shared", "--out", none.toString())).isEqualTo(1);
        assertThat(csvLines(none.resolve("items.csv"))).hasSize(2);
        assertThat(none.resolve("results.json")).doesNotExist();
    }

    @Test
    void classifyAndExplainOnSparkWriteTheSingleMachineResults() throws IOException {
        String[] classify = {"classify", "--texts", "--limit", "6"};
        Path here = tmp.resolve("here"), spark = tmp.resolve("spark");
        assertThat(Main.run(with(classify, "--results", here.toString()))).isZero();
        assertThat(Main.run(with(classify, "--spark", "local[2]", "--results", spark.toString()))).isZero();
        assertSameResults(spark.resolve("results.json"), here.resolve("results.json"));

        Path list = tmp.resolve("images.txt");
        Files.writeString(list, Fixtures.repository().resolve("data/fashion-mnist/test-0002-trouser.png") + "\n"
                + Fixtures.repository().resolve("data/fashion-mnist/test-0008-sandal.png") + "\n");
        String[] explain = {"explain", "--model", Fixtures.repository().resolve("models/vim-fashion").toString(), "--method", "raw", "--inputs", list.toString()};
        Path reports = tmp.resolve("reports"), sparkReports = tmp.resolve("spark-reports");
        assertThat(Main.run(with(explain, "--out", reports.toString()))).isZero();
        assertThat(Main.run(with(explain, "--spark", "local[2]", "--out", sparkReports.toString()))).isZero();
        assertSameResults(sparkReports.resolve("results.json"), reports.resolve("results.json"));
        assertThat(Files.readString(sparkReports.resolve("0001-test-0008-sandal/explanation.json")))
                .isEqualTo(Files.readString(reports.resolve("0001-test-0008-sandal/explanation.json")));
    }

    static void assertSameResults(Path got, Path expected) {
        ResultsComparison.Outcome outcome = ResultsComparison.compare(Fixtures.json(got), Fixtures.json(expected), TOLERANCE);
        assertThat(outcome.differences()).as("largest difference %.3e", outcome.largest()).isEmpty();
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
