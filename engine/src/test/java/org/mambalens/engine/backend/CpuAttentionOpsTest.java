package org.mambalens.engine.backend;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.mambalens.engine.Fixtures;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/** The CPU backend's rotary, storeHeads and causalAttention against plain scalar loops, on odd sizes and strided views. */
class CpuAttentionOpsTest {
    private static final CpuBackend CPU = CpuBackend.INSTANCE;

    private static float[] random(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    @ParameterizedTest
    @CsvSource({"3, 2, 11, 6, 0", "5, 3, 7, 2, 13", "1, 1, 9, 8, 1000"})
    void rotaryTurnsThePairsOfEachHeadsFirstDims(int rows, int heads, int headStride, int rotaryDims, int first) {
        Random random = new Random(rows * 31 + heads);
        int ld = heads * headStride + 3, offset = 5, half = rotaryDims / 2;
        float[] x = random(random, offset + rows * ld), expected = x.clone();
        float[] f = new float[half];
        for (int j = 0; j < half; j++) f[j] = (float) (1 / Math.pow(10000, 2.0 * j / rotaryDims));
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads; h++) {
                int o = offset + r * ld + h * headStride;
                for (int j = 0; j < half; j++) {
                    float angle = (first + r) * f[j];
                    double c = Math.cos(angle), s = Math.sin(angle);
                    double a = x[o + j], b = x[o + j + half];
                    expected[o + j] = (float) (a * c - b * s);
                    expected[o + j + half] = (float) (b * c + a * s);
                }
            }
        }
        CPU.rotary(wrap(x).at(offset), ld, rows, heads, headStride, CPU.constant(f), rotaryDims, first);
        assertThat(Fixtures.relativeError(x, expected)).isLessThan(1e-6);
    }

    @ParameterizedTest
    @CsvSource({"3, 2, 5, 7, 4", "1, 3, 3, 9, 0"})
    void storeHeadsAppendsPositionsToAHeadMajorCache(int rows, int heads, int headSize, int capacity, int first) {
        Random random = new Random(7);
        int headStride = headSize + 2, ld = heads * headStride + 1;
        float[] x = random(random, rows * ld), cache = random(random, heads * capacity * headSize), expected = cache.clone();
        for (int g = 0; g < heads; g++) {
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < headSize; j++) expected[(g * capacity + first + r) * headSize + j] = x[r * ld + g * headStride + j];
            }
        }
        CPU.storeHeads(wrap(cache), capacity, first, wrap(x), ld, headStride, rows, heads, headSize);
        assertThat(cache).containsExactly(expected);
    }

    /** L queries after P cached positions, H heads over kv heads, a window or none, q strided as in a fused projection. */
    @ParameterizedTest
    @CsvSource({"5, 0, 3, 3, 7, 0", "3, 6, 4, 2, 5, 0", "1, 10, 3, 1, 9, 0", "6, 4, 2, 2, 3, 4", "4, 13, 6, 3, 17, 5"})
    void causalAttentionMatchesAScalarLoop(int L, int P, int H, int kvHeads, int dh, int window) {
        Random random = new Random(L * 100 + P);
        int T = P + L, capacity = T + 3, qHeadStride = 3 * dh, ldq = H * qHeadStride + 2, ldContext = H * dh + 1;
        float scale = (float) (1 / Math.sqrt(dh));
        float[] q = random(random, L * ldq), keys = random(random, kvHeads * capacity * dh), values = random(random, kvHeads * capacity * dh);
        float[] context = new float[L * ldContext], probs = random(random, H * L * T);
        float[] expectedContext = new float[L * ldContext], expectedProbs = new float[H * L * T];
        for (int h = 0; h < H; h++) {
            int g = h / (H / kvHeads);
            for (int t = 0; t < L; t++) {
                int p = P + t, lo = window > 0 ? Math.max(0, p - window + 1) : 0;
                double[] s = new double[T];
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int c = lo; c <= p; c++) {
                    double dot = 0;
                    for (int j = 0; j < dh; j++) dot += (double) q[t * ldq + h * qHeadStride + j] * keys[(g * capacity + c) * dh + j];
                    s[c] = scale * dot;
                    max = Math.max(max, s[c]);
                }
                for (int c = lo; c <= p; c++) sum += s[c] = Math.exp(s[c] - max);
                for (int c = lo; c <= p; c++) expectedProbs[(h * L + t) * T + c] = (float) (s[c] / sum);
                for (int j = 0; j < dh; j++) {
                    double acc = 0;
                    for (int c = lo; c <= p; c++) acc += s[c] / sum * values[(g * capacity + c) * dh + j];
                    expectedContext[t * ldContext + h * dh + j] = (float) acc;
                }
            }
        }
        CPU.causalAttention(wrap(context), ldContext, wrap(q), ldq, qHeadStride, wrap(keys), wrap(values), capacity, L, H, kvHeads, dh,
                scale, P, window, wrap(probs));
        assertThat(Fixtures.relativeError(context, expectedContext)).isLessThan(1e-5);
        assertThat(Fixtures.relativeError(probs, expectedProbs)).isLessThan(1e-5);
        for (int i = 0; i < probs.length; i++) {
            if (expectedProbs[i] == 0f) assertThat(probs[i]).as("outside the visible range").isZero();
        }
        float[] without = new float[L * ldContext];                         // no probabilities asked for: the same context
        CPU.causalAttention(wrap(without), ldContext, wrap(q), ldq, qHeadStride, wrap(keys), wrap(values), capacity, L, H, kvHeads, dh,
                scale, P, window, null);
        assertThat(without).containsExactly(context);
    }
}
