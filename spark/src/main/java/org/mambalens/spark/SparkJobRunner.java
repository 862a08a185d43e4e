package org.mambalens.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.mambalens.cli.JobSpec;
import org.mambalens.cli.SparkRunner;
import org.mambalens.engine.kernels.Parallel;
import org.mambalens.xai.eval.DatasetJob;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.IntStream;

/**
 * The Spark side of --spark: the items' indices spread over the executors, each executor opening the job once
 * ({@link ExecutorJobs}) and computing its items with the same function as a single-machine run, one item per
 * task thread with its kernels inline; the driver collects one row per item, writes them as Parquet and CSV,
 * and hands the results of the items that succeeded to the same aggregator as a single-machine run.
 */
public final class SparkJobRunner implements SparkRunner {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String EXECUTOR_OPTIONS = "spark.executor.extraJavaOptions";
    private static final String ENGINE_JVM_OPTIONS = "--add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED";
    private static final StructType ROWS = new StructType()
            .add("item", DataTypes.IntegerType, false)
            .add("ok", DataTypes.BooleanType, false)
            .add("error", DataTypes.StringType, true)
            .add("seconds", DataTypes.DoubleType, false)
            .add("load_seconds", DataTypes.DoubleType, false)
            .add("executor", DataTypes.StringType, false)
            .add("result", DataTypes.StringType, true);

    @Override
    public int run(JobSpec spec, int limit, String master, Files files, Path out, PrintStream progress) {
        long start = System.nanoTime();
        // The driver opens the job too: it checks the arguments before a cluster is asked for anything, and writes the results.
        try (DatasetJob job = spec.open()) {
            int n = Math.min(limit, job.size());
            SparkSession session = session(master, job);
            try {
                double started = seconds(start);
                List<ItemOutcome> outcomes = compute(session, spec, files, n);
                double computed = seconds(start);
                writeRows(session, outcomes, out);
                SortedMap<Integer, JsonNode> results = new TreeMap<>();
                for (ItemOutcome o : outcomes) if (o.ok()) results.put(o.item(), parse(o.result()));
                report(progress, master, outcomes, n, started, computed, seconds(start), job.unit());
                if (results.isEmpty()) {
                    throw new IllegalStateException("every item failed (" + out.resolve("items.csv") + "), the first with: " + outcomes.getFirst().error());
                }
                System.out.println("wrote " + job.write(out, results));
                return n - results.size();
            } finally {
                session.stop();
            }
        }
    }

    /**
     * A session for {@code master}. On local[N] nothing needs the network: the driver binds to the loopback address
     * and no web UI starts, unless the caller's spark.* properties say otherwise. A cluster takes its settings from
     * spark-submit, spark-defaults.conf and spark.* system properties.
     */
    private static SparkSession session(String master, DatasetJob job) {
        // Executors run the engine's kernels too: they need the Vector API module and native access (the CUDA backend) as ./mambalens gives them.
        String executorOptions = (System.getProperty(EXECUTOR_OPTIONS, "") + " " + ENGINE_JVM_OPTIONS).strip();
        SparkSession.Builder builder = SparkSession.builder().master(master).appName("mambalens " + job.getClass().getSimpleName())
                .config(EXECUTOR_OPTIONS, executorOptions);
        if (master.startsWith("local")) {
            builder.config("spark.driver.host", System.getProperty("spark.driver.host", "127.0.0.1"))
                    .config("spark.driver.bindAddress", System.getProperty("spark.driver.bindAddress", "127.0.0.1"))
                    .config("spark.ui.enabled", System.getProperty("spark.ui.enabled", "false"));
        }
        return builder.getOrCreate();
    }

    /** Every item's outcome, in item order: the models and data shipped to the executors first when {@code files} says so. */
    private static List<ItemOutcome> compute(SparkSession session, JobSpec spec, Files files, int n) {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(session.sparkContext());
        boolean ship = files == Files.ship;
        try (Shipment ignored = ship ? Shipment.of(sc, spec.inputs()) : null) {
            // A few partitions per core: an executor that gets slow items is not left holding the job's tail alone.
            int partitions = Math.max(1, Math.min(n, 4 * sc.defaultParallelism()));
            JavaRDD<Integer> items = sc.parallelize(IntStream.range(0, n).boxed().toList(), partitions);
            List<ItemOutcome> outcomes = new ArrayList<>(items.mapPartitions(part -> computePartition(part, spec, ship)).collect());
            outcomes.sort((a, b) -> Integer.compare(a.item(), b.item()));
            return outcomes;
        }
    }

    /** On an executor: the job opened (or found open) in this JVM, then each item, its failure caught as its own. */
    private static Iterator<ItemOutcome> computePartition(Iterator<Integer> items, JobSpec spec, boolean ship) {
        String executor = executorName();
        List<ItemOutcome> outcomes = new ArrayList<>();
        ExecutorJobs.Opened opened;
        try {
            opened = ExecutorJobs.get(ship ? spec.relocated(Shipment::located) : spec);
        } catch (RuntimeException e) {
            items.forEachRemaining(i -> outcomes.add(new ItemOutcome(i, null, "opening the job: " + message(e), 0, 0, executor)));
            return outcomes.iterator();
        }
        double load = opened.nanos() / 1e9;
        while (items.hasNext()) {
            int i = items.next();
            long start = System.nanoTime();
            ObjectNode[] result = {null};
            try {
                Parallel.inline(() -> result[0] = opened.job().item(i));
                outcomes.add(new ItemOutcome(i, JSON.writeValueAsString(result[0]), null, seconds(start), load, executor));
            } catch (Exception | StackOverflowError | OutOfMemoryError e) {
                outcomes.add(new ItemOutcome(i, null, message(e), seconds(start), load, executor));
            }
            load = 0;
        }
        return outcomes.iterator();
    }

    /** out/items.parquet and out/items.csv: one row per item, in item order. */
    private static void writeRows(SparkSession session, List<ItemOutcome> outcomes, Path out) {
        List<Row> rows = outcomes.stream().map(o -> RowFactory.create(o.item(), o.ok(), o.error(), o.seconds(), o.loadSeconds(), o.executor(), o.result())).toList();
        Dataset<Row> frame = session.createDataFrame(rows, ROWS).coalesce(1);
        String dir = out.toAbsolutePath().toString();
        frame.write().mode(SaveMode.Overwrite).parquet(dir + "/items.parquet");
        // RFC 4180 quoting (a quote inside a field doubled), as spreadsheets and Python's csv read it; Spark's default escapes with a backslash.
        frame.write().mode(SaveMode.Overwrite).option("header", true).option("escape", "\"").csv(dir + "/items.csv");
    }

    /** Where the time went, and each failed item with its error. */
    private static void report(PrintStream progress, String master, List<ItemOutcome> outcomes, int n, double started, double computed, double total,
                               String unit) {
        double itemSeconds = outcomes.stream().mapToDouble(ItemOutcome::seconds).sum();
        double loadSeconds = outcomes.stream().mapToDouble(ItemOutcome::loadSeconds).sum();
        long executors = outcomes.stream().map(ItemOutcome::executor).distinct().count();
        progress.printf("spark %s: %d %s in %.2f s (%.2f %s/s) on %d executor JVMs: session and driver's models %.2f s, "
                        + "items %.2f s wall (models loaded on executors %.2f s, items' compute %.2f s summed over threads), rows %.2f s%n",
                master, n, unit, total, n / total, unit, executors, started, computed - started, loadSeconds, itemSeconds, total - computed);
        for (ItemOutcome o : outcomes) if (!o.ok()) progress.println("item " + o.item() + " failed on " + o.executor() + ": " + o.error());
    }

    private static JsonNode parse(String json) {
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String executorName() {
        try {
            return InetAddress.getLocalHost().getHostName() + "/" + ManagementFactory.getRuntimeMXBean().getPid();
        } catch (IOException e) {
            return "pid " + ManagementFactory.getRuntimeMXBean().getPid();
        }
    }

    private static String message(Throwable e) {
        String m = e.getMessage();
        return e.getClass().getSimpleName() + (m == null || m.isBlank() ? "" : ": " + m.lines().findFirst().orElse(m));
    }

    private static double seconds(long since) {
        return (System.nanoTime() - since) / 1e9;
    }
}
