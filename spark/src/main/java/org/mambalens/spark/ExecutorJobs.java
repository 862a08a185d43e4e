package org.mambalens.spark;

import org.mambalens.cli.JobSpec;
import org.mambalens.xai.eval.DatasetJob;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The jobs opened in this JVM, by spec (model paths and options): an executor loads a job's models once, for its
 * first task, and every later task and item of any run with the same spec reuses them. They stay open for the
 * JVM's life, as an executor's cache does. A job that fails to open is not kept: the next task tries again.
 */
final class ExecutorJobs {
    /** The opened job and how long this caller spent opening it (0 when another task had opened it). */
    record Opened(DatasetJob job, long nanos) {
    }

    private static final Map<JobSpec, DatasetJob> OPEN = new ConcurrentHashMap<>();

    private ExecutorJobs() {
    }

    /** The job for {@code spec}, opened by the first caller while the others wait; throws what opening threw. */
    static Opened get(JobSpec spec) {
        long[] nanos = {0};
        DatasetJob job = OPEN.computeIfAbsent(spec, s -> {
            long start = System.nanoTime();
            DatasetJob opened = s.open();
            nanos[0] = System.nanoTime() - start;
            return opened;
        });
        return new Opened(job, nanos[0]);
    }
}
