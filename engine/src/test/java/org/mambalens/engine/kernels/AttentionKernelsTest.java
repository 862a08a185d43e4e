package org.mambalens.engine.kernels;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.Fixtures;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** The hidden-attention kernels against their scalar twins, on row counts, state sizes and stretches with tails. */
class AttentionKernelsTest {
    final Random random = new Random(5);

    float[] randoms(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) random.nextGaussian();
        return a;
    }

    @Test
    void productMatchesItsTwinAndKeepsToItsRectangle() {
        int P = AttentionKernels.PRODUCT_ROWS, V = Vectors.LANES;
        for (int[] s : new int[][]{{P, V, 1}, {P, 2 * V, 5}, {2 * P, 7 * V, 16}, {3 * P, 4 * V, 17}, {P, 3 * V, 3}}) {
            int count = s[0], width = s[1], n = s[2], at = 3, ld = width + 5, r = 2, c = 4, cld = width + 3;
            float[] rows = randoms(r + count * n), columns = randoms(c + n * cld);
            float[] expected = new float[at + count * ld], actual = new float[expected.length];
            Scalar.product(expected, at, ld, rows, r, count, columns, c, cld, width, n);
            AttentionKernels.product(actual, at, ld, rows, r, count, columns, c, cld, width, n);
            assertThat(Fixtures.relativeError(actual, expected)).as("%d × %d, N = %d", count, width, n).isLessThan(1e-6);
            for (int p = 0; p < count; p++) {                                // nothing written between the rows
                for (int q = width; q < ld && at + p * ld + q < actual.length; q++) assertThat(actual[at + p * ld + q]).isZero();
            }
            assertThat(actual[0]).isZero();
        }
    }

    /** Columns whose last states are zeros, vector by vector: the sums without those terms equal the sums with them. */
    @Test
    void productLeavesOutTheZeroStatesOfEachVector() {
        int P = AttentionKernels.PRODUCT_ROWS, V = Vectors.LANES, n = 16, count = 2 * P, width = 7 * V, ld = width + 1, cld = width + 2;
        int[] states = {0, 3, 16, 5, 1, 16, 9, 2};                                      // one per vector, from the second
        float[] rows = randoms(count * n), columns = randoms(n * cld);
        for (int b = 0; b < width / V; b++) {
            for (int m = states[1 + b]; m < n; m++) for (int q = 0; q < V; q++) columns[m * cld + b * V + q] = 0f;
        }
        float[] expected = new float[count * ld], actual = new float[expected.length];
        AttentionKernels.product(expected, 0, ld, rows, 0, count, columns, 0, cld, width, n);
        AttentionKernels.product(actual, 0, ld, rows, 0, count, columns, 0, cld, width, n, states, 1);
        assertThat(actual).containsExactly(expected);
    }

    /** Whole blocks, rows apart in L1 sets: never a multiple of 4 KiB, whatever the width asked for. */
    @Test
    void rowStridesAvoidWholeMultiplesOf4KiB() {
        for (int length : new int[]{1, 197, 1000, 1024, 4096}) {
            for (int width : new int[]{1, 128, 10_000}) {
                int stride = AttentionKernels.rowStride(length, width);
                assertThat(stride).isGreaterThanOrEqualTo(length);
                assertThat(stride % AttentionKernels.BLOCK).isZero();
                if (length > 1) assertThat(stride * Float.BYTES % 4096).as("%d columns, %d at a time", length, width).isNotZero();
            }
        }
    }

    @Test
    void scaledBlocksEqualTheirTwin() {
        int V = Vectors.LANES, n = 5, blocks = 3, at = 2, ld = blocks * V + 3, c = 1, cld = blocks * V + 7, f = 4;
        float[] columns = randoms(c + n * cld), factors = randoms(f + blocks * n);
        float[] out = randoms(at + n * ld), twin = out.clone();
        AttentionKernels.scaleBlocks(out, at, ld, columns, c, cld, factors, f, blocks, n, n);
        Scalar.scaleBlocks(twin, at, ld, columns, c, cld, factors, f, blocks, n, n);
        assertThat(out).containsExactly(twin);
        float[] fewer = randoms(out.length), fewerTwin = fewer.clone();                // the rows of the last two states left as they were
        AttentionKernels.scaleBlocks(fewer, at, ld, columns, c, cld, factors, f, blocks, n, n - 2);
        Scalar.scaleBlocks(fewerTwin, at, ld, columns, c, cld, factors, f, blocks, n, n - 2);
        assertThat(fewer).containsExactly(fewerTwin);
    }

    /** Adds and comparisons only: equal to the twin bit for bit, with and without a masked last vector, in rectangles and triangles. */
    @Test
    void accumulateEqualsItsTwinExactly() {
        int V = Vectors.LANES;
        for (int[] s : new int[][]{{1, 0, 0}, {1, 1, 0}, {3, V - 1, 0}, {2, V, 0}, {4, 3 * V + 5, 0}, {V, 0, 1}, {V + 3, 2 * V, 1}}) {
            int count = s[0], width = s[1], growth = s[2], at = 3, ld = width + count * growth + 2, from = 1, vld = ld + 2;
            float[] values = randoms(from + count * vld), sum = randoms(at + count * ld + 1), pos = new float[sum.length];
            float[] sumTwin = sum.clone(), posTwin = pos.clone(), extremes = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
            float[] extremesTwin = extremes.clone();
            AttentionKernels.accumulate(sum, pos, at, ld, extremes, values, from, vld, count, width, growth);
            Scalar.accumulate(sumTwin, posTwin, at, ld, extremesTwin, values, from, vld, count, width, growth);
            assertThat(sum).as("%d rows of %d + %d·p", count, width, growth).containsExactly(sumTwin);
            assertThat(pos).containsExactly(posTwin);
            assertThat(extremes).containsExactly(extremesTwin);
        }
    }
}
