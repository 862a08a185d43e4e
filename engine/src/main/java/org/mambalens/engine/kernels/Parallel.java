package org.mambalens.engine.kernels;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The only threading code: a fixed set of worker threads that split a range of work items with the
 * caller. Decoding one token runs a hundred short parallel regions, so the workers spin briefly
 * between regions instead of parking at once (waking a parked thread costs tens of microseconds,
 * which a fork-join pool pays every time), and chunks are claimed from a shared counter so a slow
 * thread never holds the others up.
 */
public final class Parallel {
    /** Threads the kernels use: every core unless {@code -Dmambalens.threads=N} says otherwise. */
    public static final int THREADS = ThreadCount.configured();
    private static final long SPIN_NANOS = 200_000;

    /** Body over a half-open range of work items. */
    @FunctionalInterface
    public interface Range {
        void run(int from, int to);
    }

    /** One parallel region: the range cut into chunks, claimed one at a time. */
    private record Job(Range body, int n, int chunks, int per, AtomicInteger next, AtomicInteger done,
                       AtomicReference<Throwable> failure) {
        void work() {
            for (int c; (c = next.getAndIncrement()) < chunks; ) {
                int from = c * per, to = Math.min(n, from + per);
                try {
                    if (from < to && failure.get() == null) body.run(from, to);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                } finally {
                    done.incrementAndGet();
                }
            }
        }
    }

    private static final ReentrantLock REGION = new ReentrantLock();
    private static final Thread[] WORKERS = new Thread[THREADS - 1];
    private static volatile Job current;
    private static volatile long generation;

    static {
        for (int i = 0; i < WORKERS.length; i++) {
            WORKERS[i] = Thread.ofPlatform().daemon().name("mambalens-kernel-" + (i + 1)).start(Parallel::workerLoop);
        }
    }

    private Parallel() {
    }

    /** A grain for rows of {@code width} values each: chunks of at least ~8k values, below which a region costs more than it saves. */
    public static int rowGrain(int width) {
        return Math.max(1, 8192 / Math.max(1, width));
    }

    /**
     * Runs {@code body} over [0, n) in chunks of at least {@code grain} items, on the caller alone when
     * there is a single chunk (the fast path that keeps small decode kernels free of any overhead), when
     * called from inside a region, or while another thread's region holds the workers.
     */
    public static void forRange(int n, int grain, Range body) {
        int chunks = Math.min(4 * THREADS, Math.max(1, n / Math.max(1, grain)));
        if (chunks <= 1 || WORKERS.length == 0 || isWorker() || INLINE.get() || !REGION.tryLock()) {
            body.run(0, n);
            return;
        }
        try {
            int per = (n + chunks - 1) / chunks;
            chunks = (n + per - 1) / per;
            Job job = new Job(body, n, chunks, per, new AtomicInteger(), new AtomicInteger(), new AtomicReference<>());
            current = job;
            generation++;
            for (Thread w : WORKERS) LockSupport.unpark(w);
            job.work();
            while (job.done().get() < chunks) Thread.onSpinWait();
            current = null;
            Throwable failure = job.failure().get();
            if (failure instanceof RuntimeException e) throw e;
            if (failure instanceof Error e) throw e;
            if (failure != null) throw new IllegalStateException(failure);
        } finally {
            REGION.unlock();
        }
    }

    private static final ThreadLocal<Boolean> INLINE = ThreadLocal.withInitial(() -> false);

    /**
     * Runs {@code body} with every kernel it calls on this thread alone: for callers that already spread
     * independent work (images, say) over their own threads, so the kernels do not compete with them.
     */
    public static void inline(Runnable body) {
        boolean before = INLINE.get();
        INLINE.set(true);
        try {
            body.run();
        } finally {
            INLINE.set(before);
        }
    }

    private static boolean isWorker() {
        Thread me = Thread.currentThread();
        for (Thread w : WORKERS) if (w == me) return true;
        return false;
    }

    private static void workerLoop() {
        long seen = 0;
        while (true) {
            long spinStart = System.nanoTime();
            while (generation == seen) {
                if (System.nanoTime() - spinStart < SPIN_NANOS) Thread.onSpinWait();
                else LockSupport.park();
            }
            seen = generation;
            Job job = current;
            if (job != null) job.work();
        }
    }
}
