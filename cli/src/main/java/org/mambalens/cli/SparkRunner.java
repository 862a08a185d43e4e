package org.mambalens.cli;

import java.io.PrintStream;
import java.nio.file.Path;

/**
 * Runs a {@link JobSpec} on Apache Spark. The implementation lives in the spark module, which depends on this
 * one; the CLI finds it with {@link java.util.ServiceLoader} only when --spark is given, so the plain CLI jar
 * carries no Spark and starts as fast as before (./mambalens puts the spark module's class path first when it
 * sees --spark; spark-submit uses mambalens-spark.jar).
 */
public interface SparkRunner {
    /** How the executors reach the models and data: copies made with SparkContext.addFile, or the same paths. */
    enum Files { ship, shared }

    /**
     * The first {@code limit} items of {@code spec} spread over the executors of {@code master}; the job's own
     * files in {@code out} from the items that succeeded, plus one row per item (its result or its error) in
     * out/items.parquet and out/items.csv. Returns the number of items that failed; throws, after writing the rows,
     * when every item failed.
     */
    int run(JobSpec spec, int limit, String master, Files files, Path out, PrintStream progress);
}
