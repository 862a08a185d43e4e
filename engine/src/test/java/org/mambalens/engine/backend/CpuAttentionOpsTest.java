package org.mambalens.engine.backend;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.mambalens.engine.Fixtures;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/** The CPU backend's rotary, storeHeads, causalAttention and attention against plain scalar loops, on odd sizes and strided views. */
class CpuAttentionOpsTest {
    private static final CpuBackend CPU = CpuBackend.INSTANCE;

    @ParameterizedTest
    @CsvSource({"3, 2, 11, 6, 0", "5, 3, 7, 2, 13", "1, 1, 9, 8, 1000"})
    void rotaryTurnsThePairsOfEachHeadsFirstDims(int rows, int heads, int headStride, int rotaryDims, int first) {
        Random random = new Random(rows * 31 + heads);
        int ld = heads * headStride + 3, offset = 5, half = rotaryDims / 2;
        float[] x = Fixtures.gaussian(random, offset + rows * ld, 1), expected = x.clone();
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
        float[] x = Fixtures.gaussian(random, rows * ld, 1), cache = Fixtures.gaussian(random, heads * capacity * headSize, 1), expected = cache.clone();
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
        float[] q = Fixtures.gaussian(random, L * ldq, 1), keys = Fixtures.gaussian(random, kvHeads * capacity * dh, 1), values = Fixtures.gaussian(random, kvHeads * capacity * dh, 1);
        float[] context = new float[L * ldContext], probs = Fixtures.gaussian(random, H * L * T, 1);
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

    /**
     * B sequences of T tokens, every query seeing every key (ViT), q, k and v side by side with a bias; at views that do
     * not start their arrays; several blocks of query rows and a last partial one, head sizes beside and at whole vectors.
     */
    @ParameterizedTest
    @CsvSource({"1, 5, 1, 3", "2, 37, 3, 7", "1, 70, 2, 16", "3, 9, 4, 1"})
    void attentionMatchesAScalarLoop(int B, int T, int H, int dh) {
        Random random = new Random(B * 1000 + T);
        int D = H * dh;
        float scale = (float) (1 / Math.sqrt(dh));
        float[] qkv = Fixtures.gaussian(random, 1 + B * T * 3 * D, 1), bias = Fixtures.gaussian(random, 3 * D, 1);
        float[] context = new float[2 + B * T * D], probs = new float[3 + B * H * T * T];
        double[] expectedContext = new double[B * T * D], expectedProbs = new double[B * H * T * T];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                for (int t = 0; t < T; t++) {
                    double[] s = new double[T];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int c = 0; c < T; c++) {
                        double dot = 0;
                        for (int j = 0; j < dh; j++) {
                            int qj = h * dh + j, kj = D + qj;
                            dot += ((double) qkv[1 + (b * T + t) * 3 * D + qj] + bias[qj]) * ((double) qkv[1 + (b * T + c) * 3 * D + kj] + bias[kj]);
                        }
                        s[c] = scale * dot;
                        max = Math.max(max, s[c]);
                    }
                    for (int c = 0; c < T; c++) sum += s[c] = Math.exp(s[c] - max);
                    for (int c = 0; c < T; c++) expectedProbs[((b * H + h) * T + t) * T + c] = s[c] / sum;
                    for (int j = 0; j < dh; j++) {
                        int vj = 2 * D + h * dh + j;
                        double acc = 0;
                        for (int c = 0; c < T; c++) acc += s[c] / sum * ((double) qkv[1 + (b * T + c) * 3 * D + vj] + bias[vj]);
                        expectedContext[(b * T + t) * D + h * dh + j] = acc;
                    }
                }
            }
        }
        CPU.attention(wrap(context).at(2), wrap(qkv).at(1), wrap(bias), B, T, H, dh, wrap(probs).at(3));
        assertThat(Fixtures.relativeError(java.util.Arrays.copyOfRange(context, 2, context.length), toFloats(expectedContext))).isLessThan(1e-5);
        assertThat(Fixtures.relativeError(java.util.Arrays.copyOfRange(probs, 3, probs.length), toFloats(expectedProbs))).isLessThan(1e-5);
        assertThat(context[0]).isZero();
        assertThat(probs[0]).isZero();
        float[] without = new float[context.length];                           // no probabilities asked for: the same context
        CPU.attention(wrap(without).at(2), wrap(qkv).at(1), wrap(bias), B, T, H, dh, null);
        assertThat(without).containsExactly(context);
    }

    private static float[] toFloats(double[] x) {
        float[] f = new float[x.length];
        for (int i = 0; i < x.length; i++) f[i] = (float) x[i];
        return f;
    }
}
