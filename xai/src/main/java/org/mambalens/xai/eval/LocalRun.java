package org.mambalens.xai.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.kernels.Parallel;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.stream.IntStream;

/** Runs a {@link DatasetJob} on this machine: the single-machine side of the commands that also run on Spark. */
public final class LocalRun {
    private LocalRun() {
    }

    /** The first {@code limit} items on {@code threads} threads, then the job's files in {@code out}; returns results.json. */
    public static Path run(DatasetJob job, Path out, int limit, int threads, PrintStream progress) {
        List<Integer> items = IntStream.range(0, Math.min(limit, job.size())).boxed().toList();
        return job.write(out, compute(job, items, threads, result -> { }, progress));
    }

    /**
     * As {@link #run}, resumable: each finished item is appended to {@code out}/journal.jsonl as it comes (under its index
     * field {@code key}), and the items an earlier run with the same {@code config} left there are not computed again. A
     * run stopped part-way loses only the items in flight; one with other models or settings is refused.
     */
    public static Path resume(DatasetJob job, ObjectNode config, String key, Path out, int limit, int threads, PrintStream progress) {
        int n = Math.min(limit, job.size());
        Path createdDir = Files.exists(out) ? null : out;
        Journal journal = Journal.open(out.resolve(Journal.FILE), config, key);
        List<Integer> todo = IntStream.range(0, n).filter(i -> !journal.done().containsKey(i)).boxed().toList();
        if (todo.size() < n) progress.printf("resuming: %d of %d %s already in %s%n", n - todo.size(), n, job.unit(), journal.file());
        try {
            compute(job, todo, threads, journal::append, progress);
        } catch (RuntimeException | Error e) {
            journal.discardIfEmpty(createdDir);
            throw e;
        }
        // Every item as the journal holds it, this run's too: a resumed run then writes the values a fresh one writes
        // (an item's numbers as read back from JSON, not the ones computed in memory).
        var done = new TreeMap<>(Journal.open(journal.file(), config, key).done());
        return job.write(out, done.subMap(0, n));
    }

    /**
     * Computes {@code items} on {@code threads} threads, each item on one thread with its kernels inline (the
     * items are the parallelism, as on a Spark executor, so both give the same figures), handing each result to
     * {@code finished} as it comes. Stops at the first failure and throws it.
     */
    public static SortedMap<Integer, JsonNode> compute(DatasetJob job, List<Integer> items, int threads, Consumer<ObjectNode> finished,
                                                       PrintStream progress) {
        SortedMap<Integer, JsonNode> results = new ConcurrentSkipListMap<>();
        Evaluation.Progress bar = new Evaluation.Progress(progress, items.size(), job.unit());
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < Math.max(1, Math.min(threads, items.size())); t++) {     // a thread per item at most
            workers.add(Thread.ofPlatform().name(job.unit() + "-" + t).start(() -> Parallel.inline(() -> {
                for (int k; failure.get() == null && (k = next.getAndIncrement()) < items.size(); ) {
                    try {
                        int i = items.get(k);
                        ObjectNode result = job.item(i);
                        finished.accept(result);
                        results.put(i, result);
                        bar.step();
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }
            })));
        }
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
        }
        bar.finish();
        if (failure.get() instanceof RuntimeException e) throw e;
        if (failure.get() != null) throw new IllegalStateException(failure.get());
        return results;
    }
}
