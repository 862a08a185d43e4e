package org.mambalens.xai.attention;

import org.mambalens.engine.io.Npy;
import org.mambalens.engine.kernels.AttentionKernels;
import org.mambalens.engine.kernels.Parallel;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;


/**
 * One Mamba layer's attention tensor [E, L, L] in the input's token order, channel by channel: hidden
 * (SPEC §3) or unified (SPEC §4) attention. For a bidirectional layer, BACKWARD is flip(α_bwd) (rows and
 * columns reversed back to the input order) and BOTH is α_fwd + flip(α_bwd) (SPEC §5); a forward-only
 * layer takes FORWARD or BOTH. Channels are computed in parallel and never all held at once.
 */
public final class AttentionMaps {
    /** Which scan direction(s) of a Vision Mamba layer. */
    public enum Direction { FORWARD, BACKWARD, BOTH }

    private final MixerTrace forward, backward;   // either may be null
    private final boolean unified;
    private final int channels, length;

    private AttentionMaps(TraceRecorder trace, int layer, boolean unified, Direction direction) {
        boolean bidirectional = trace.hasMixer(layer, TraceRecorder.Direction.BACKWARD);
        if (!bidirectional && direction == Direction.BACKWARD) throw new IllegalArgumentException("--direction backward: this model scans forward only");
        this.forward = direction != Direction.BACKWARD ? trace.mixer(layer, TraceRecorder.Direction.FORWARD) : null;
        this.backward = bidirectional && direction != Direction.FORWARD ? trace.mixer(layer, TraceRecorder.Direction.BACKWARD) : null;
        this.unified = unified;
        MixerTrace any = forward != null ? forward : backward;
        this.channels = any.channels();
        this.length = any.length();
    }

    public static AttentionMaps of(TraceRecorder trace, int layer, boolean unified, Direction direction) {
        return new AttentionMaps(trace, layer, unified, direction);
    }

    /**
     * The summary of whatever attention layer {@code layer} recorded: softmax probabilities (ViT, GPT-NeoX),
     * a Mamba-2 mixer (one matrix per head), an RWKV time mix (one per channel), or a Mamba mixer (hidden
     * attention, both directions combined where there are two).
     */
    public static AttentionSummary summary(TraceRecorder trace, int layer) {
        return summary(trace, layer, false);
    }

    /** As above; with {@code onGpu}, a Mamba mixer's hidden attention is summed on the CUDA GPU ({@link HiddenAttentionCuda}). */
    public static AttentionSummary summary(TraceRecorder trace, int layer, boolean onGpu) {
        if (onGpu && trace.hasMixer(layer, TraceRecorder.Direction.FORWARD)) {
            return HiddenAttentionCuda.summary(trace.mixer(layer, TraceRecorder.Direction.FORWARD),
                    trace.hasMixer(layer, TraceRecorder.Direction.BACKWARD) ? trace.mixer(layer, TraceRecorder.Direction.BACKWARD) : null);
        }
        if (!trace.hasMixer(layer, TraceRecorder.Direction.FORWARD)) {
            Units units = units(trace, layer);
            return AttentionSummary.of(units.count(), units.tokens(), units.matrix());
        }
        return of(trace, layer, false, Direction.BOTH).summary();
    }

    /**
     * One layer's attention matrices, each [T, T] in input order, made one at a time by {@code matrix}: the
     * {@code count} heads of softmax attention (ViT, GPT-NeoX, Griffin's local attention) or of a Mamba-2 mixer, or
     * the channels of an RWKV time mix, of a Griffin RG-LRU or of a Mamba mixer (hidden attention, both directions combined where there are two).
     */
    public record Units(int count, int tokens, String unit, java.util.function.IntFunction<float[]> matrix) {
    }

    public static Units units(TraceRecorder trace, int layer) {
        if (trace.hasAttention(layer)) {
            var a = trace.attention(layer);
            int size = a.tokens() * a.tokens();
            return new Units(a.heads(), a.tokens(), "head", h -> java.util.Arrays.copyOfRange(a.probs(), h * size, (h + 1) * size));
        }
        if (trace.hasSsd(layer)) {
            var t = trace.ssd(layer);
            return new Units(t.heads(), t.length(), "head", SsdAttention.of(t)::head);
        }
        if (trace.hasRwkv(layer)) {
            var t = trace.rwkv(layer);
            return new Units(t.channels(), t.length(), "channel", RwkvAttention.of(t)::channel);
        }
        if (trace.hasLru(layer)) {
            var t = trace.lru(layer);
            return new Units(t.channels(), t.length(), "channel", LruAttention.of(t)::channel);
        }
        AttentionMaps maps = of(trace, layer, false, Direction.BOTH);
        return new Units(maps.channels(), maps.length(), "channel", c -> maps.new Worker().channel(c, new float[maps.length * maps.length]));
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
        long need = workingBytes(), heap = Runtime.getRuntime().maxMemory();
        if (need > heap * 3 / 4) {
            throw new IllegalArgumentException(String.format("%d tokens need about %.1f GiB of working memory for %d threads' "
                    + "[L, L] matrices, more than the %.1f GiB heap allows; use fewer tokens, fewer threads (-Dmambalens.threads) "
                    + "or a larger -Xmx", length, need / 1073741824.0, Parallel.THREADS, heap / 1073741824.0));
        }
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
        AttentionSummary.CausalAccumulator total = new AttentionSummary.CausalAccumulator(length, backward != null);
        // One range per thread: each range sums into [T, T] arrays of its own, merged once at the end.
        Parallel.forRange(channels, (channels + Parallel.THREADS - 1) / Parallel.THREADS, (c0, c1) -> {
            AttentionSummary.CausalAccumulator acc = new AttentionSummary.CausalAccumulator(length, backward != null);
            if (unified) {
                Worker w = new Worker();
                for (int c = c0; c < c1; c++) {
                    w.fwd.compute(c);
                    if (w.bwd != null) w.bwd.compute(c);
                    acc.add(w.fwd.matrix, w.bwd == null ? null : w.bwd.matrix);
                }
            } else {
                new TiledReduction(acc).run(c0, c1);
            }
            synchronized (total) {
                total.merge(acc);
            }
        });
        return total.summary(channels);
    }

    /**
     * The hidden-attention summary block by block: for a group of channels, each block (bi, bj) of every
     * channel is computed into a Q × Q tile and summed into block accumulators that stay in L1; the [T, T]
     * sums are touched once per group and block instead of once per channel (at long sequences they, not the
     * arithmetic, were the bound).
     */
    private final class TiledReduction {
        static final int GROUP = 8;
        final AttentionSummary.CausalAccumulator acc;
        final int q = HiddenAttention.BLOCK;
        final float[] tile = new float[q * q], blockSum = new float[q * q], blockPos = new float[q * q];

        TiledReduction(AttentionSummary.CausalAccumulator acc) {
            this.acc = acc;
        }

        void run(int c0, int c1) {
            HiddenAttention fwd = HiddenAttention.of(forward), bwd = backward == null ? null : HiddenAttention.of(backward);
            HiddenAttention.Workspace[] wf = new HiddenAttention.Workspace[GROUP], wb = new HiddenAttention.Workspace[GROUP];
            for (int k = 0; k < GROUP; k++) {
                wf[k] = new HiddenAttention.Workspace(forward);
                if (bwd != null) wb[k] = new HiddenAttention.Workspace(backward);
            }
            float[][] diagF = new float[GROUP][length], diagB = new float[GROUP][length];
            int blocks = fwd.blocks();
            for (int g0 = c0; g0 < c1; g0 += GROUP) {
                int n = Math.min(GROUP, c1 - g0);
                for (int k = 0; k < n; k++) {
                    fwd.prepare(g0 + k, wf[k]);
                    if (bwd != null) bwd.prepare(g0 + k, wb[k]);
                }
                for (int bi = 0; bi < blocks; bi++) {
                    for (int bj = 0; bj <= bi; bj++) {
                        reduce(fwd, wf, diagF, g0, n, bi, bj, false);
                        if (bwd != null) reduce(bwd, wb, diagB, g0, n, bi, bj, true);
                    }
                }
                for (int k = 0; k < n; k++) acc.addDiagonal(diagF[k], bwd == null ? null : diagB[k]);
            }
        }

        /** Block (bi, bj) of channels [g0, g0 + n) of one direction into the accumulator; diagonals kept per channel. */
        private void reduce(HiddenAttention alpha, HiddenAttention.Workspace[] ws, float[][] diag, int g0, int n, int bi, int bj, boolean backward) {
            int i0 = bi * q, i1 = Math.min(length, i0 + q), rows = i1 - i0, j0 = bj * q;
            java.util.Arrays.fill(blockSum, 0f);
            java.util.Arrays.fill(blockPos, 0f);
            float[] extremes = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
            for (int k = 0; k < n; k++) {
                if (bj < bi) {                                              // the whole block is strictly lower: fused
                    alpha.accumulateBlock(g0 + k, bi, bj, ws[k], blockSum, blockPos, extremes);
                    continue;
                }
                alpha.block(g0 + k, bi, bj, ws[k], tile, 0, q);             // below the diagonal, and the diagonal itself
                for (int r = 0; r < rows; r++) {
                    AttentionKernels.accumulate(blockSum, blockPos, extremes, tile, r * q, r);
                    diag[k][i0 + r] = tile[r * q + r];
                }
            }
            acc.observe(extremes[0], extremes[1]);
            acc.addBlock(backward, i0, i1, j0, q, blockSum, blockPos);
        }
    }

    /** The whole tensor [E, L, L] in one array (E·L² must fit in an int). */
    public float[] tensor() {
        long size = (long) channels * length * length;
        if (size > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("[E, L, L] = " + size + " floats do not fit in one array; stream them with write()");
        float[] out = new float[(int) size];
        int L2 = length * length;
        Parallel.forRange(channels, 1, (c0, c1) -> {
            Worker w = new Worker();
            float[] m = new float[L2];
            for (int c = c0; c < c1; c++) System.arraycopy(w.channel(c, m), 0, out, c * L2, L2);
        });
        return out;
    }

    /**
     * Streams the tensor [E, L, L] to a float32 NPY file, a group of channels at a time (one [L, L]
     * matrix per thread in memory), so its size is bounded by the disk only.
     */
    public void write(java.nio.file.Path file) {
        checkMemory();
        int L2 = length * length, group = Math.max(1, Parallel.THREADS);
        Npy.writeFloat32(file, new int[]{channels, length, length}, sink -> {
            float[][] batch = new float[group][L2];
            for (int g0 = 0; g0 < channels; g0 += group) {
                int from = g0, n = Math.min(group, channels - g0);
                Parallel.forRange(n, 1, (k0, k1) -> {
                    Worker w = new Worker();
                    for (int k = k0; k < k1; k++) w.channel(from + k, batch[k]);
                });
                for (int k = 0; k < n; k++) sink.accept(batch[k]);
            }
        });
    }
}
