package org.mambalens.xai.attention;

import org.mambalens.engine.kernels.AttentionKernels;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.Parallel;

import java.util.Arrays;

/**
 * What the explanation methods read from one layer's attention tensor [C, T, T] (C channels or heads),
 * gathered without holding the tensor: the mean over C, the mean over C of the positive part, and the
 * tensor's minimum and maximum (DESIGN §7 normalises the whole tensor before averaging).
 */
public record AttentionSummary(int count, int tokens,
                               float[] mean,           // [T, T] mean over C of A_c
                               float[] positiveMean,   // [T, T] mean over C of max(A_c, 0)
                               float min, float max) {

    /** The summary of a tensor held whole, [C, T, T] row-major. */
    public static AttentionSummary of(float[] tensor, int count, int tokens) {
        int size = tokens * tokens;
        return of(count, tokens, c -> java.util.Arrays.copyOfRange(tensor, c * size, (c + 1) * size));
    }

    /** The summary of a tensor made one [T, T] matrix at a time by {@code channel}, never held whole. */
    public static AttentionSummary of(int count, int tokens, java.util.function.IntFunction<float[]> channel) {
        Accumulator acc = new Accumulator(tokens);
        for (int c = 0; c < count; c++) acc.add(channel.apply(c));
        return acc.summary(count);
    }

    /** The mean over C of |A_c|, [T, T]: |v| = 2·max(v, 0) − v. */
    public float[] absoluteMean() {
        float[] out = new float[mean.length];
        for (int k = 0; k < out.length; k++) out[k] = 2 * positiveMean[k] - mean[k];
        return out;
    }

    /** min-max normalised over the whole tensor, then averaged over C: (mean − min) / (max − min), [T, T]. */
    public float[] normalisedMean() {
        return normalised(mean, min, max);
    }

    /** The same for the tensor clamped at zero first, as Mamba-Attribution uses it. */
    public float[] positiveNormalisedMean() {
        return normalised(positiveMean, Math.max(min, 0f), Math.max(max, 0f));
    }

    private static float[] normalised(float[] m, float lo, float hi) {
        float range = hi > lo ? hi - lo : 1f;
        float[] out = new float[m.length];
        for (int k = 0; k < m.length; k++) out[k] = (m[k] - lo) / range;
        return out;
    }

    /** Running sums over the channels (heads) of a tensor held whole. */
    static final class Accumulator {
        final double[] sum, positive;
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        final int tokens;

        Accumulator(int tokens) {
            this.tokens = tokens;
            sum = new double[tokens * tokens];
            positive = new double[tokens * tokens];
        }

        void add(float[] channel) {
            for (int k = 0; k < channel.length; k++) {
                float v = channel[k];
                sum[k] += v;
                if (v > 0) positive[k] += v;
                if (v < min) min = v;
                if (v > max) max = v;
            }
        }

        AttentionSummary summary(int count) {
            float[] mean = new float[sum.length], pos = new float[sum.length];
            for (int k = 0; k < sum.length; k++) {
                mean[k] = (float) (sum[k] / count);
                pos[k] = (float) (positive[k] / count);
            }
            return new AttentionSummary(count, tokens, mean, pos, min, max);
        }
    }

    /**
     * Running sums over the channels of a Mamba layer, fed each direction's causal matrix as computed
     * (lower triangle, the backward one in its own reversed order). Off the diagonal the combined tensor
     * α_fwd + flip(α_bwd) is one of the two, so the strict lower triangles are summed apart, vector by
     * vector, and flipped once at the end; only the diagonal adds both. A forward-only layer's upper
     * triangle is zeros, which count in the minimum and maximum.
     */
    static final class CausalAccumulator {
        final int tokens, stride;                 // stride: AttentionKernels.rowStride, room for the kernels' whole vectors
        final boolean bidirectional;
        final float[] sumF, posF, sumB, posB;     // [T, stride], strict lower triangles in each direction's own order
        final float[] diagSum, diagPos, diagonal; // [T], the combined diagonal's sums, and one channel's
        float min, max;

        CausalAccumulator(int tokens, boolean bidirectional) {
            this.tokens = tokens;
            this.bidirectional = bidirectional;
            stride = AttentionKernels.rowStride(tokens, HiddenAttention.CHUNK);
            sumF = new float[tokens * stride];
            posF = new float[tokens * stride];
            sumB = bidirectional ? new float[tokens * stride] : null;
            posB = bidirectional ? new float[tokens * stride] : null;
            diagSum = new float[tokens];
            diagPos = new float[tokens];
            diagonal = new float[tokens];
            clearExtremes();
        }

        /** One channel: the forward matrix, and the backward one (null for a forward-only layer), each [T, T]. */
        void add(float[] fwd, float[] bwd) {
            int T = tokens;
            lower(fwd, sumF, posF);
            if (bwd != null) lower(bwd, sumB, posB);
            float[] df = new float[T], db = bwd == null ? null : new float[T];
            for (int i = 0; i < T; i++) {
                df[i] = fwd[i * T + i];
                if (db != null) db[i] = bwd[i * T + i];
            }
            addDiagonal(df, db);
        }

        /** One channel's diagonals, each direction in its own order; the backward one may be null. */
        void addDiagonal(float[] fwd, float[] bwd) {
            int T = tokens;
            for (int i = 0; i < T; i++) diagonal[i] = fwd[i] + (bwd == null ? 0f : bwd[T - 1 - i]);
            float[] extremes = {min, max};
            AttentionKernels.accumulate(diagSum, diagPos, 0, 0, extremes, diagonal, 0, 0, 1, T, 0);
            min = extremes[0];
            max = extremes[1];
        }

        /** Extends the running minimum and maximum. */
        void observe(float lo, float hi) {
            min = Math.min(min, lo);
            max = Math.max(max, hi);
        }

        /** A matrix [T, T] below its diagonal into the sums: row i, columns [0, i). */
        private void lower(float[] m, float[] sum, float[] pos) {
            float[] extremes = {min, max};
            AttentionKernels.accumulate(sum, pos, stride, stride, extremes, m, tokens, tokens, tokens - 1, 1, 1);
            min = extremes[0];
            max = extremes[1];
        }

        /**
         * Adds the sums of {@code count} other accumulators into this one, in order, and empties them for their
         * next chunk of channels. Rows go in parallel; each row's additions are in the same order whatever thread
         * makes them.
         */
        void absorb(CausalAccumulator[] others, int count) {
            Parallel.forRange(tokens, 16, (i0, i1) -> {
                for (int i = Math.max(i0, 1); i < i1; i++) {                 // below the diagonal: row i, columns [0, i)
                    for (int k = 0; k < count; k++) {
                        CausalAccumulator o = others[k];
                        move(sumF, o.sumF, i * stride, i);
                        move(posF, o.posF, i * stride, i);
                        if (bidirectional) {
                            move(sumB, o.sumB, i * stride, i);
                            move(posB, o.posB, i * stride, i);
                        }
                    }
                }
            });
            for (int k = 0; k < count; k++) {
                CausalAccumulator o = others[k];
                move(diagSum, o.diagSum, 0, tokens);
                move(diagPos, o.diagPos, 0, tokens);
                min = Math.min(min, o.min);
                max = Math.max(max, o.max);
                o.clearExtremes();
            }
        }

        /** into[at ..+ n) += from[at ..+ n), and from's stretch back to zeros. */
        private static void move(float[] into, float[] from, int at, int n) {
            Elementwise.addInPlace(into, at, from, at, n);
            Arrays.fill(from, at, at + n, 0f);
        }

        /** The extremes before any channel: a forward-only layer's zeros above the diagonal, else none. */
        private void clearExtremes() {
            boolean zeros = !bidirectional && tokens > 1;
            min = zeros ? 0f : Float.POSITIVE_INFINITY;
            max = zeros ? 0f : Float.NEGATIVE_INFINITY;
        }

        /**
         * The means, rows in parallel (each element on its own: the same bits for any thread count), leaving the sums
         * empty for the next layer: row i's task is the only one to read row i of the forward sums, row T − 1 − i of the
         * backward ones and the diagonal's i, so it empties them as it goes.
         */
        AttentionSummary takeSummary(int count) {
            int T = tokens;
            float[] mean = new float[T * T], pos = new float[T * T];
            Parallel.forRange(T, Parallel.rowGrain(T), (i0, i1) -> {
                for (int i = i0; i < i1; i++) {
                    for (int j = 0; j < T; j++) {
                        int k = i * T + j, below = i * stride + j, flipped = (T - 1 - i) * stride + (T - 1 - j);
                        double s = i > j ? sumF[below] : i == j ? diagSum[i] : bidirectional ? sumB[flipped] : 0;
                        double p = i > j ? posF[below] : i == j ? diagPos[i] : bidirectional ? posB[flipped] : 0;
                        mean[k] = (float) (s / count);
                        pos[k] = (float) (p / count);
                    }
                    Arrays.fill(sumF, i * stride, i * stride + i, 0f);
                    Arrays.fill(posF, i * stride, i * stride + i, 0f);
                    if (bidirectional) {
                        int r = T - 1 - i;
                        Arrays.fill(sumB, r * stride, r * stride + r, 0f);
                        Arrays.fill(posB, r * stride, r * stride + r, 0f);
                    }
                    diagSum[i] = diagPos[i] = 0f;
                }
            });
            AttentionSummary summary = new AttentionSummary(count, T, mean, pos, min, max);
            clearExtremes();
            return summary;
        }
    }
}
