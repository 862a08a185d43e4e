package org.mambalens.xai.attention;

import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * A layer's channels or heads ranked as {@code compare-attention} ranks them: by the share of |A| off the diagonal,
 * highest first, ties by index — the units that reach furthest into the past (a nearly diagonal matrix shows nothing
 * about how tokens mix). The mean of |A| over the units comes from the same pass over the matrices.
 *
 * @param absoluteMean     mean over the units of |A_c|, [T, T]
 * @param offDiagonalShare per unit, the share of its |A| off the diagonal (0 for a unit whose A is all zeros)
 */
public record UnitRanking(int tokens, float[] absoluteMean, double[] offDiagonalShare) {

    /** Makes each of the layer's matrices once. */
    public static UnitRanking of(AttentionMaps.Units units) {
        int T = units.tokens(), count = units.count();
        float[] mean = new float[T * T];
        double[] share = new double[count];
        for (int c = 0; c < count; c++) {
            float[] a = units.matrix().apply(c);
            double total = 0, off = 0;
            for (int i = 0; i < T; i++) {
                for (int j = 0; j < T; j++) {
                    float v = Math.abs(a[i * T + j]);
                    mean[i * T + j] += v / count;
                    total += v;
                    if (i != j) off += v;
                }
            }
            share[c] = total > 0 ? off / total : 0;
        }
        return new UnitRanking(T, mean, share);
    }

    /** The first {@code limit} units of the ranking. */
    public int[] top(int limit) {
        return IntStream.range(0, offDiagonalShare.length).boxed()
                .sorted(Comparator.comparingDouble((Integer c) -> -offDiagonalShare[c]).thenComparingInt(c -> c))
                .limit(limit).mapToInt(Integer::intValue).toArray();
    }
}
