package org.mambalens.engine.kernels;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.Fixtures;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** The hidden-attention kernels against their scalar twins, on row counts, state sizes and stretches with tails. */
class AttentionKernelsTest {
    static final int Q = AttentionKernels.BLOCK;
    final Random random = new Random(5);

    float[] randoms(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) random.nextGaussian();
        return a;
    }

    @Test
    void rowsTimesBlockMatchesItsTwinAndKeepsToItsRows() {
        for (int[] s : new int[][]{{1, 1}, {2, 5}, {3, 16}, {7, 17}, {Q + 1, 33}}) {
            int count = s[0], n = s[1], at = 3, ld = Q + 5, r = 2;
            float[] rows = randoms(r + count * n), block = randoms(n * Q);
            float[] expected = new float[at + count * ld], actual = new float[at + count * ld];
            Scalar.rowsTimesBlock(expected, at, ld, rows, r, count, block, n);
            AttentionKernels.rowsTimesBlock(actual, at, ld, rows, r, count, block, n);
            assertThat(Fixtures.relativeError(actual, expected)).as("%d rows, N = %d", count, n).isLessThan(1e-6);
            for (int p = 0; p < count; p++) {                                // nothing written between the rows
                for (int q = Q; q < ld && at + p * ld + q < actual.length; q++) assertThat(actual[at + p * ld + q]).isZero();
            }
            assertThat(actual[0]).isZero();
        }
    }

    @Test
    void accumulatedBlockProductMatchesItsTwin() {
        for (int[] s : new int[][]{{1, 1}, {3, 5}, {7, 17}}) {
            int count = s[0], n = s[1], r = 1;
            float[] rows = randoms(r + count * n), block = randoms(n * Q);
            float[] sum = randoms(count * Q), pos = randoms(count * Q), sumTwin = sum.clone(), posTwin = pos.clone();
            float[] extremes = {-0.5f, 0.5f}, extremesTwin = extremes.clone();
            AttentionKernels.accumulateRowsTimesBlock(sum, pos, extremes, rows, r, count, block, n);
            Scalar.accumulateRowsTimesBlock(sumTwin, posTwin, extremesTwin, rows, r, count, block, n);
            assertThat(Fixtures.relativeError(sum, sumTwin)).as("%d rows, N = %d", count, n).isLessThan(1e-6);
            assertThat(Fixtures.relativeError(pos, posTwin)).isLessThan(1e-6);
            assertThat(extremes[0]).isCloseTo(extremesTwin[0], org.assertj.core.data.Offset.offset(1e-5f));
            assertThat(extremes[1]).isCloseTo(extremesTwin[1], org.assertj.core.data.Offset.offset(1e-5f));
        }
    }

    /** Adds and comparisons only: the vector body and the scalar tail agree with the twin bit for bit. */
    @Test
    void accumulateEqualsItsTwinExactly() {
        for (int n : new int[]{0, 1, Vectors.LANES - 1, Vectors.LANES, 3 * Vectors.LANES + 5}) {
            int from = 3;
            float[] values = randoms(from + n + 2), sum = randoms(values.length), pos = new float[values.length];
            float[] sumTwin = sum.clone(), posTwin = pos.clone(), extremes = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
            float[] extremesTwin = extremes.clone();
            AttentionKernels.accumulate(sum, pos, extremes, values, from, n);
            Scalar.accumulate(sumTwin, posTwin, extremesTwin, values, from, n);
            assertThat(sum).as("n = %d", n).containsExactly(sumTwin);
            assertThat(pos).containsExactly(posTwin);
            assertThat(extremes).containsExactly(extremesTwin);
        }
    }
}
