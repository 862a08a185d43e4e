package org.mambalens.xai.attention;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.kernels.AttentionKernels;
import org.mambalens.engine.io.MemoryBudget;
import org.mambalens.engine.kernels.Parallel;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LayerTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.RwkvTrace;
import org.mambalens.engine.trace.SsdTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.io.PrintStream;
import java.lang.ref.SoftReference;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.IntFunction;

/**
 * One Mamba layer's attention tensor [E, L, L] in the input's token order, channel by channel: hidden
 * (DESIGN §3) or unified (DESIGN §4) attention. For a bidirectional layer, BACKWARD is flip(α_bwd) (rows and
 * columns reversed back to the input order) and BOTH is α_fwd + flip(α_bwd) (DESIGN §5); a forward-only
 * layer takes FORWARD or BOTH. Channels are computed in parallel and never all held at once. For a layer
 * of any kind, {@link #units} gives its matrices and {@link #summary} what the explanation methods read.
 */
public final class AttentionMaps {
    /** Which scan direction(s) of a Vision Mamba layer. */
    public enum Direction { FORWARD, BACKWARD, BOTH }

    private final MixerTrace forward, backward;   // either may be null
    private final boolean unified;
    private final int channels, length;

    private AttentionMaps(MambaLayerTrace mixer, boolean unified, Direction direction) {
        if (!mixer.bidirectional() && direction == Direction.BACKWARD) throw new IllegalArgumentException("--direction backward: this model scans forward only");
        this.forward = direction != Direction.BACKWARD ? mixer.scan(TraceRecorder.Direction.FORWARD) : null;
        this.backward = mixer.bidirectional() && direction != Direction.FORWARD ? mixer.backward() : null;
        this.unified = unified;
        MixerTrace any = forward != null ? forward : backward;
        this.channels = any.channels();
        this.length = any.length();
    }

    public static AttentionMaps of(MambaLayerTrace mixer, boolean unified, Direction direction) {
        return new AttentionMaps(mixer, unified, direction);
    }

    /**
     * The summary of whatever attention a layer recorded: a Mamba mixer's hidden attention (both directions
     * combined where there are two; summed on {@code backend} where it has a faster way than these loops: a GPU sums every (i, j) pair over
     * the channels in one kernel, the [E, T, T] tensor never built),
     * or its {@link #units} one matrix at a time.
     */
    public static AttentionSummary summary(LayerTrace layer, Backend backend) {
        return switch (layer) {
            case MambaLayerTrace mixer -> {
                Backend.HiddenAttentionSums sums = backend.hiddenAttentionSums(mixer.forward(), mixer.backward());
                yield sums == null ? of(mixer, false, Direction.BOTH).summary() : summary(sums, mixer.forward().channels(), mixer.forward().length());
            }
            case SsdTrace _, RwkvTrace _, LruTrace _, AttentionTrace _ -> units(layer).summary();
        };
    }

    /** The means over E channels of a backend's sums. */
    private static AttentionSummary summary(Backend.HiddenAttentionSums sums, int channels, int tokens) {
        float[] mean = sums.sum(), positiveMean = sums.positive();
        for (int k = 0; k < mean.length; k++) {
            mean[k] /= channels;
            positiveMean[k] /= channels;
        }
        return new AttentionSummary(channels, tokens, mean, positiveMean, sums.min(), sums.max());
    }

    /**
     * One layer's attention matrices, each [T, T] in input order, made one at a time by {@code matrix}, which
     * any thread may call.
     */
    public record Units(int count, int tokens, String unit, IntFunction<float[]> matrix) {
        public AttentionSummary summary() {
            return AttentionSummary.of(count, tokens, matrix);
        }

        /**
         * Streams the matrices to a float32 NPY file [count, T, T], a group of them at a time made in
         * parallel, so its size is bounded by the disk only; {@code progress} (may be null) is told how far it got.
         */
        public void write(Path file, PrintStream progress) {
            int group = Parallel.THREADS;
            Npy.writeFloat32(file, new int[]{count, tokens, tokens}, sink -> {
                float[][] batch = new float[group][];
                for (int g0 = 0; g0 < count; g0 += group) {
                    int from = g0, n = Math.min(group, count - g0);
                    Parallel.forRange(n, 1, (k0, k1) -> {
                        for (int k = k0; k < k1; k++) batch[k] = matrix.apply(from + k);
                    });
                    for (int k = 0; k < n; k++) sink.accept(batch[k]);
                    if (progress != null) progress.printf("\r%d/%d %ss", from + n, count, unit);
                }
                if (progress != null) progress.println();
            });
        }
    }

    /**
     * The heads of softmax attention (ViT, GPT-NeoX, Griffin's local attention) or of a Mamba-2 mixer, or the
     * channels of an RWKV time mix, of a Griffin RG-LRU or of a Mamba mixer (hidden attention, both directions
     * combined where there are two).
     */
    public static Units units(LayerTrace layer) {
        return units(layer, false, Direction.BOTH);
    }

    /**
     * As above; with {@code unified}, the operator from the mixer's input to its gated output, per channel (DESIGN
     * §4), where the layer has one, refused in one line where it has none; {@code direction} picks Vision
     * Mamba's scans.
     */
    public static Units units(LayerTrace layer, boolean unified, Direction direction) {
        return switch (layer) {
            case MambaLayerTrace mixer -> of(mixer, unified, direction).units();
            case SsdTrace t when unified -> new Units(t.heads() * t.headDim(), t.length(), "channel", SsdUnifiedAttention.of(t)::channel);
            case SsdTrace t -> new Units(t.heads(), t.length(), "head", SsdAttention.of(t)::head);
            case LruTrace t -> new Units(t.channels(), t.length(), "channel", unified ? LruAttention.of(t)::unifiedChannel : LruAttention.of(t)::channel);
            case RwkvTrace _ when unified -> throw new IllegalArgumentException("--unified: an RWKV layer has no per-channel unified operator "
                    + "(its token shift mixes channels through W_v); without it: [A, L, L] per channel");
            case RwkvTrace t -> new Units(t.channels(), t.length(), "channel", RwkvAttention.of(t)::channel);
            case AttentionTrace _ when unified -> throw new IllegalArgumentException("--unified applies to implicit attention; this layer has softmax attention only");
            case AttentionTrace a -> new Units(a.heads(), a.tokens(), "head",
                    h -> Arrays.copyOfRange(a.probs(), h * a.tokens() * a.tokens(), (h + 1) * a.tokens() * a.tokens()));
        };
    }

    /**
     * This layer's channels; refused up front when the threads' buffers would not fit in the heap. A call borrows
     * a worker's buffers from a pool (one per thread at most) that lives as long as the Units.
     */
    public Units units() {
        checkMemory();
        Queue<Worker> idle = new ConcurrentLinkedQueue<>();
        return new Units(channels, length, "channel", c -> {
            Worker w = Objects.requireNonNullElseGet(idle.poll(), Worker::new);
            try {
                return w.channel(c, new float[length * length]);
            } finally {
                idle.add(w);
            }
        });
    }

    /**
     * Bytes that computing this layer holds at once: per thread, one [L, L] matrix per direction (two with
     * --unified), a [L, L] output and the summary's four [L, L] sums. Bounded by the thread count
     * ({@code -Dmambalens.threads}) and L, never by E; refused up front when the heap cannot hold it.
     */
    public long workingBytes() {
        int directions = (forward != null ? 1 : 0) + (backward != null ? 1 : 0);
        return 4L * length * length * Parallel.THREADS * (directions * (unified ? 2 : 1) + 5);
    }

    private void checkMemory() {
        MemoryBudget.require(workingBytes(), length + " tokens' [L, L] attention matrices, " + Parallel.THREADS + " at once (-Dmambalens.threads),");
    }

    public int channels() {
        return channels;
    }

    public int length() {
        return length;
    }

    /** One thread's buffers: per direction an attention object, its workspace and a [L, L] matrix. */
    private final class Worker {
        final Branch fwd = forward == null ? null : new Branch(forward);
        final Branch bwd = backward == null ? null : new Branch(backward);

        /** Channel c's [L, L] matrix in input order. */
        float[] channel(int c, float[] out) {
            int L = length;
            if (fwd != null) fwd.compute(c);
            if (bwd != null) bwd.compute(c);
            for (int i = 0; i < L; i++) {
                for (int j = 0; j < L; j++) {
                    float v = fwd != null ? fwd.matrix[i * L + j] : 0f;
                    if (bwd != null) v += bwd.matrix[(L - 1 - i) * L + (L - 1 - j)];
                    out[i * L + j] = v;
                }
            }
            return out;
        }
    }

    private final class Branch {
        final HiddenAttention hidden;
        final UnifiedAttention uni;
        final HiddenAttention.Workspace ws;
        final float[] matrix = new float[length * length], alpha;

        Branch(MixerTrace t) {
            hidden = HiddenAttention.of(t);
            uni = unified ? UnifiedAttention.of(t) : null;
            ws = new HiddenAttention.Workspace(t);
            alpha = unified ? new float[length * length] : null;
        }

        void compute(int c) {
            if (unified) uni.channel(c, matrix, ws, alpha);
            else hidden.channel(c, matrix, ws);
        }
    }

    /** The layer summary the explanation methods read (channel mean, positive mean, min, max). */
    public AttentionSummary summary() {
        if (forward == null) throw new IllegalArgumentException("a layer summary combines the directions: ask for FORWARD (one-way models) or BOTH");
        checkMemory();
        // Channels are summed in chunks of a fixed size into [T, T] arrays of their own, and the chunks merged in
        // channel order whichever thread made each: the same bits for any thread count. A wave of one chunk per
        // thread at a time bounds the memory as one range per thread did; the chunks' arrays are emptied for the
        // next wave, and the layer's for the next layer, rather than made anew (Slots).
        int chunks = (channels + SUMMARY_CHUNK - 1) / SUMMARY_CHUNK;
        HiddenAttention hiddenForward = unified ? null : HiddenAttention.of(forward);
        HiddenAttention hiddenBackward = unified || backward == null ? null : HiddenAttention.of(backward);
        Slots slots = Slots.take(this, Math.min(Parallel.THREADS, chunks));
        AttentionSummary.CausalAccumulator total = slots.total, partial[] = slots.partial;
        TiledReduction[] reductions = slots.reductions;
        for (int wave = 0; wave < chunks; wave += Parallel.THREADS) {
            int first = wave, count = Math.min(Parallel.THREADS, chunks - wave);
            Parallel.forRange(count, 1, (k0, k1) -> {
                for (int k = k0; k < k1; k++) {
                    int c0 = (first + k) * SUMMARY_CHUNK, c1 = Math.min(channels, c0 + SUMMARY_CHUNK);
                    if (unified) sumUnified(c0, c1, partial[k]);
                    else reductions[k].run(c0, c1, hiddenForward, hiddenBackward);
                }
            });
            total.absorb(partial, count);
        }
        AttentionSummary summary = total.takeSummary(channels);
        Slots.keep(slots);                                   // every sum back to zeros: absorbed, or taken
        return summary;
    }

    /**
     * The sums of {@link #summary}: the layer's total, and per thread slot its partial sums and the tiled reduction
     * (workspace and factors) that its chunk of every wave reuses. A layer leaves the sums empty, and the calling thread
     * keeps them for its next layer of the same shape: made anew for each layer they were ~3 MB of zeros (ViM-tiny)
     * written by the calling thread alone while the other threads waited, 5 % of the explanation. Held softly, so the
     * collector may take them back when memory is short.
     */
    private static final class Slots {
        private static final ThreadLocal<SoftReference<Slots>> KEPT = new ThreadLocal<>();
        final int length, states, count;
        final boolean bidirectional, unified;
        final AttentionSummary.CausalAccumulator total;
        final AttentionSummary.CausalAccumulator[] partial;
        final TiledReduction[] reductions;   // null for the unified attention, which sums whole matrices

        private Slots(AttentionMaps maps, int count) {
            length = maps.length;
            states = maps.forward.stateSize();
            bidirectional = maps.backward != null;
            unified = maps.unified;
            this.count = count;
            total = new AttentionSummary.CausalAccumulator(length, bidirectional);
            partial = new AttentionSummary.CausalAccumulator[count];
            reductions = unified ? null : new TiledReduction[count];
            for (int k = 0; k < count; k++) {
                partial[k] = new AttentionSummary.CausalAccumulator(length, bidirectional);
                if (!unified) reductions[k] = new TiledReduction(partial[k], maps.forward);
            }
        }

        /** The slots this thread kept, if they fit this layer (taken out, so a failed call never hands back dirty sums), or new ones. */
        static Slots take(AttentionMaps maps, int count) {
            SoftReference<Slots> kept = KEPT.get();
            Slots slots = kept == null ? null : kept.get();
            KEPT.remove();
            boolean fits = slots != null && slots.length == maps.length && slots.states == maps.forward.stateSize()
                    && slots.bidirectional == (maps.backward != null) && slots.unified == maps.unified && slots.count == count;
            return fits ? slots : new Slots(maps, count);
        }

        static void keep(Slots slots) {
            KEPT.set(new SoftReference<>(slots));
        }
    }

    /** Channels summed per chunk of {@link #summary}: a multiple of the tiled reduction's group. */
    private static final int SUMMARY_CHUNK = 64;

    /** The unified attention's sums over channels [c0, c1) into acc, in channel order. */
    private void sumUnified(int c0, int c1, AttentionSummary.CausalAccumulator acc) {
        Worker w = new Worker();
        for (int c = c0; c < c1; c++) {
            w.fwd.compute(c);
            if (w.bwd != null) w.bwd.compute(c);
            acc.add(w.fwd.matrix, w.bwd == null ? null : w.bwd.matrix);
        }
    }

    /**
     * The hidden-attention summary for a group of channels, row block by row block and chunk by chunk of its
     * columns: each channel's stretch of α is made into one tile and summed from there into the [T, T] sums,
     * whose stretch stays in L1 while the group's channels pass through it (at long sequences the sums, not
     * the arithmetic, were the bound).
     */
    private static final class TiledReduction {
        static final int GROUP = 8;
        final AttentionSummary.CausalAccumulator acc;
        final int length;
        final float[] extremes = new float[2];
        // Scratch for the channels this reduction sums, whichever chunk or layer of the shape: prepare rewrites a
        // channel's factors whole.
        final HiddenAttention.Workspace ws;
        final HiddenAttention.Factors[] factors = new HiddenAttention.Factors[GROUP];
        final float[][] diagF, diagB;

        /** For the layers shaped as {@code shape} (tokens and states). */
        TiledReduction(AttentionSummary.CausalAccumulator acc, MixerTrace shape) {
            this.acc = acc;
            length = shape.length();
            ws = new HiddenAttention.Workspace(shape);
            for (int k = 0; k < GROUP; k++) factors[k] = new HiddenAttention.Factors(shape);
            diagF = new float[GROUP][length];
            diagB = new float[GROUP][length];
        }

        void run(int c0, int c1, HiddenAttention fwd, HiddenAttention bwd) {
            for (int g0 = c0; g0 < c1; g0 += GROUP) {
                int n = Math.min(GROUP, c1 - g0);
                reduce(fwd, factors, ws, diagF, g0, n, acc.sumF, acc.posF);
                if (bwd != null) reduce(bwd, factors, ws, diagB, g0, n, acc.sumB, acc.posB);
                for (int k = 0; k < n; k++) acc.addDiagonal(diagF[k], bwd == null ? null : diagB[k]);
            }
        }

        /** Channels [g0, g0 + count) of one direction into its sums; their diagonals kept per channel. */
        private void reduce(HiddenAttention alpha, HiddenAttention.Factors[] factors, HiddenAttention.Workspace ws, float[][] diag,
                            int g0, int count, float[] sum, float[] pos) {
            int ld = acc.stride, q = HiddenAttention.BLOCK, chunk = HiddenAttention.CHUNK;
            for (int k = 0; k < count; k++) alpha.prepare(g0 + k, factors[k], ws);
            extremes[0] = acc.min;
            extremes[1] = acc.max;
            for (int bi = 0; bi < alpha.blocks(); bi++) {
                int i0 = bi * q, rows = Math.min(length, i0 + q) - i0;
                for (int j0 = 0; j0 < i0 + q; j0 += chunk) {
                    int width = Math.min(chunk, i0 + q - j0), beforeDiagonal = Math.min(width, i0 - j0);
                    boolean diagonal = beforeDiagonal < width;                 // then row p stops below it, at column i0 + p
                    for (int k = 0; k < count; k++) {
                        alpha.chunk(g0 + k, bi, j0, width, factors[k], ws);
                        AttentionKernels.accumulate(sum, pos, i0 * ld + j0, ld, extremes, ws.tile, 0, chunk, rows, beforeDiagonal, diagonal ? 1 : 0);
                        if (diagonal) for (int p = 0; p < rows; p++) diag[k][i0 + p] = ws.tile[p * chunk + i0 - j0 + p];
                    }
                }
            }
            acc.observe(extremes[0], extremes[1]);
        }
    }

    /** The whole tensor [E, L, L] in one array (E·L² must fit in an int). */
    public float[] tensor() {
        long size = (long) channels * length * length;
        if (size > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("[E, L, L] = " + size + " floats do not fit in one array; stream them with units().write(file, progress)");
        float[] out = new float[(int) size];
        int L2 = length * length;
        Parallel.forRange(channels, 1, (c0, c1) -> {
            Worker w = new Worker();
            float[] m = new float[L2];
            for (int c = c0; c < c1; c++) System.arraycopy(w.channel(c, m), 0, out, c * L2, L2);
        });
        return out;
    }
}
