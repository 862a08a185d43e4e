package org.mambalens.engine.kernels;

import java.util.stream.IntStream;

/** The only threading code: split a range into chunks and run them on the common fork-join pool. */
public final class Parallel {
    /** Threads the kernels use: every core unless {@code -Dmambalens.threads=N} says otherwise. */
    public static final int THREADS = Integer.getInteger("mambalens.threads", Runtime.getRuntime().availableProcessors());

    /** Body over a half-open range of work items. */
    @FunctionalInterface
    public interface Range {
        void run(int from, int to);
    }

    private Parallel() {
    }

    /**
     * Runs {@code body} over [0, n) in chunks of at least {@code grain} items, on the caller alone when
     * there is a single chunk (the fast path that keeps small decode kernels free of pool overhead).
     */
    public static void forRange(int n, int grain, Range body) {
        int chunks = Math.min(THREADS, Math.max(1, n / Math.max(1, grain)));
        if (chunks <= 1) {
            body.run(0, n);
            return;
        }
        int per = (n + chunks - 1) / chunks;
        IntStream.range(0, chunks).parallel().forEach(c -> {
            int from = c * per, to = Math.min(n, from + per);
            if (from < to) body.run(from, to);
        });
    }
}
