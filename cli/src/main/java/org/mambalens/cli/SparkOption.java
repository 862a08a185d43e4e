package org.mambalens.cli;

import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ServiceLoader;

/** {@code --spark MASTER} and {@code --spark-files} for the commands that can spread their items over a Spark cluster. */
final class SparkOption {
    @Option(names = "--spark", paramLabel = "MASTER",
            description = "Run on Apache Spark: local[N] (this machine, N executor threads) or spark://HOST:PORT (a standalone cluster). "
                    + "Same results.json as without it, plus DIR/items.parquet and DIR/items.csv with one row per item; an item that "
                    + "fails is reported in its row and the others go on.")
    String master;

    @Option(names = "--spark-files", paramLabel = "ship|shared", defaultValue = "ship",
            description = "With --spark: ship (copy the models and data to every executor with SparkContext.addFile, default) "
                    + "or shared (the executors read the same paths: one machine or a shared file system).")
    SparkRunner.Files files;

    boolean enabled() {
        return master != null;
    }

    /** Runs {@code spec} on Spark and says how many items failed, on standard error; returns the exit code. */
    int run(JobSpec spec, int limit, Path out) {
        SparkRunner runner = ServiceLoader.load(SparkRunner.class).findFirst().orElseThrow(() -> new IllegalArgumentException(
                "--spark: the spark module is not on the class path; run ./mambalens (which adds it when --spark is given) or spark-submit mambalens-spark.jar"));
        int failed = runner.run(spec, limit, master, files, out, System.err);
        if (failed > 0) System.err.println(failed + " items failed: their errors are in " + out.resolve("items.csv"));
        return 0;
    }
}
