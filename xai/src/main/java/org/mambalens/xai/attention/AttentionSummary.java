package org.mambalens.xai.attention;

/**
 * What the explanation methods read from one layer's attention tensor [C, T, T] (C channels or heads),
 * gathered without holding the tensor: the mean over C, the mean over C of the positive part, and the
 * tensor's minimum and maximum (SPEC §7 normalises the whole tensor before averaging).
 */
public record AttentionSummary(int count, int tokens,
                               float[] mean,           // [T, T] mean over C of A_c
                               float[] positiveMean,   // [T, T] mean over C of max(A_c, 0)
                               float min, float max) {

    /** The summary of a tensor held whole, [C, T, T] row-major. */
    public static AttentionSummary of(float[] tensor, int count, int tokens) {
        Accumulator acc = new Accumulator(tokens);
        int size = tokens * tokens;
        float[] channel = new float[size];
        for (int c = 0; c < count; c++) {
            System.arraycopy(tensor, c * size, channel, 0, size);
            acc.add(channel);
        }
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

    /** Running sums over channels, one per thread; {@link #merge} joins them. */
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

        void merge(Accumulator other) {
            for (int k = 0; k < sum.length; k++) {
                sum[k] += other.sum[k];
                positive[k] += other.positive[k];
            }
            min = Math.min(min, other.min);
            max = Math.max(max, other.max);
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
}
