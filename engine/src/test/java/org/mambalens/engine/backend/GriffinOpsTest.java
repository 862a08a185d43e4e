package org.mambalens.engine.backend;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.backend.Backend.KeyValueRing;
import org.mambalens.engine.backend.Backend.RgLruWeights;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The CPU backend's Griffin operations (rotary, slidingWindowAttention with ringAppend, rgLru, softCap) against plain
 * scalar loops in double, on odd sizes and on views that do not start at their array's first element.
 */
class GriffinOpsTest {
    final Backend cpu = CpuBackend.INSTANCE;
    final Random random = new Random(17);

    float[] randoms(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) random.nextGaussian();
        return a;
    }

    /** values at element 3 of a larger array, as a view. */
    static Buffer view(float[] values) {
        float[] padded = new float[values.length + 5];
        System.arraycopy(values, 0, padded, 3, values.length);
        return CpuBackend.wrap(padded).at(3);
    }

    static float[] read(Buffer b, int n) {
        return CpuBackend.INSTANCE.read(b, n);
    }

    static void assertClose(float[] actual, double[] expected, double tolerance) {
        assertThat(actual).hasSize(expected.length);
        for (int i = 0; i < expected.length; i++) assertThat((double) actual[i]).as("element %d", i).isCloseTo(expected[i], within(tolerance));
    }

    @Test
    void rotaryTurnsEachHeadsFirstPairsByThePositionsAngle() {
        int rows = 3, heads = 3, dh = 10, half = 3, ld = heads * dh + 4, position = 5;
        float[] x = randoms(rows * ld), f = {1f, 0.1f, 0.01f};
        Buffer b = view(x);
        cpu.rotary(b, ld, rows, heads, dh, cpu.constant(f), 2 * half, position);
        double[] expected = new double[rows * ld];
        for (int i = 0; i < x.length; i++) expected[i] = x[i];
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads; h++) {
                for (int j = 0; j < half; j++) {
                    int at = r * ld + h * dh + j;
                    double angle = (position + r) * (double) f[j], a = x[at], c = x[at + half];
                    expected[at] = a * Math.cos(angle) - c * Math.sin(angle);
                    expected[at + half] = c * Math.cos(angle) + a * Math.sin(angle);
                }
            }
        }
        assertClose(read(b, rows * ld), expected, 1e-5);
    }

    /**
     * Keys and values of every position [0, P + T) kept in full; attention over them as the definition says,
     * in double: context [T, H·dh] and the weights [H, T, P + T].
     */
    record Reference(double[] context, double[] probs) {
        static Reference of(float[] q, float[] keys, float[] values, int P, int T, int H, int KV, int dh, int window, float scale) {
            double[] context = new double[T * H * dh], probs = new double[H * T * (P + T)];
            for (int t = 0; t < T; t++) {
                for (int h = 0; h < H; h++) {
                    int g = h / (H / KV), p = P + t, first = Math.max(0, p - window + 1);
                    double[] w = new double[p + 1];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int s = first; s <= p; s++) {
                        double dot = 0;
                        for (int d = 0; d < dh; d++) dot += (double) q[(t * H + h) * dh + d] * keys[(s * KV + g) * dh + d];
                        w[s] = dot * scale;
                        max = Math.max(max, w[s]);
                    }
                    for (int s = first; s <= p; s++) sum += w[s] = Math.exp(w[s] - max);
                    for (int s = first; s <= p; s++) {
                        probs[(h * T + t) * (P + T) + s] = w[s] / sum;
                        for (int d = 0; d < dh; d++) context[(t * H + h) * dh + d] += w[s] / sum * values[(s * KV + g) * dh + d];
                    }
                }
            }
            return new Reference(context, probs);
        }
    }

    /** Positions [0, P) go into the ring in two appends (the second longer than the ring), then T more attend over it. */
    void checkAttention(int H, int KV, int dh, int window, int capacity, int P, int T) {
        int width = KV * dh, ld = 2 * width + 3;
        float[] keys = randoms((P + T) * width), values = randoms((P + T) * width), q = randoms(T * H * dh);
        KeyValueRing ring = new KeyValueRing(view(new float[capacity * width]), view(new float[capacity * width]), capacity);
        int split = P / 3;
        for (int[] part : new int[][]{{0, split}, {split, P}}) {                  // rows [k | v | 3 spare], ld apart
            int n = part[1] - part[0];
            float[] kv = new float[Math.max(1, n) * ld];
            for (int t = 0; t < n; t++) {
                System.arraycopy(keys, (part[0] + t) * width, kv, t * ld, width);
                System.arraycopy(values, (part[0] + t) * width, kv, t * ld + width, width);
            }
            Buffer rows = view(kv);
            cpu.ringAppend(ring, rows, rows.at(width), ld, width, part[0], n);
        }
        float[] kv = new float[T * ld];
        for (int t = 0; t < T; t++) {
            System.arraycopy(keys, (P + t) * width, kv, t * ld, width);
            System.arraycopy(values, (P + t) * width, kv, t * ld + width, width);
        }
        Buffer rows = view(kv), context = view(randoms(T * H * dh)), probs = view(randoms(H * T * (P + T)));
        float scale = (float) (1 / Math.sqrt(dh));
        cpu.slidingWindowAttention(context, H * dh, view(q), H * dh, rows, rows.at(width), ld, ring, P, T, H, KV, dh, window, scale, probs);
        Reference expected = Reference.of(q, keys, values, P, T, H, KV, dh, window, scale);
        assertClose(read(context, T * H * dh), expected.context(), 1e-5);
        assertClose(read(probs, H * T * (P + T)), expected.probs(), 1e-6);
    }

    @Test
    void slidingWindowAttentionOverARingThatWraps() {
        checkAttention(6, 2, 19, 5, 5, 11, 3);     // grouped heads, the ring full and wrapped
        checkAttention(3, 1, 7, 5, 5, 0, 9);       // a fresh sequence longer than the window
        checkAttention(3, 3, 5, 5, 5, 2, 1);       // a step before the ring is full
    }

    @Test
    void withoutAWindowEveryEarlierPositionIsSeen() {
        checkAttention(4, 2, 9, Integer.MAX_VALUE, 20, 13, 5);
    }

    @Test
    void rgLruFollowsItsRecurrenceAcrossTwoCalls() {
        int T1 = 3, T2 = 2, W = 6, blocks = 2, bw = W / blocks, ldx = W + 1;
        float[] ig = randoms(blocks * bw * bw), igB = randoms(W), rg = randoms(blocks * bw * bw), rgB = randoms(W), lambda = new float[W];
        for (int c = 0; c < W; c++) lambda[c] = (float) Math.log1p(Math.exp(random.nextGaussian()));
        RgLruWeights weights = new RgLruWeights(cpu.constant(ig), cpu.constant(igB), cpu.constant(rg), cpu.constant(rgB), cpu.constant(lambda));
        float[] x = randoms((T1 + T2) * ldx);
        Buffer state = cpu.allocate(W);
        double[] h = new double[W];
        int position = 0;
        for (int T : new int[]{T1, T2}) {
            Buffer y = view(new float[T * W]), a = view(new float[T * W]), b = view(new float[T * W]);
            cpu.rgLru(y, view(x).at((long) position * ldx), ldx, weights, state, a, b, T, W, blocks, position);
            double[] ey = new double[T * W], ea = new double[T * W], eb = new double[T * W];
            for (int t = 0; t < T; t++) {
                int row = (position + t) * ldx;
                for (int c = 0; c < W; c++) {
                    int c0 = c / bw * bw, o = c - c0;
                    double i = igB[c], r = rgB[c];
                    for (int in = 0; in < bw; in++) {
                        i += (double) x[row + c0 + in] * ig[(c0 + in) * bw + o];
                        r += (double) x[row + c0 + in] * rg[(c0 + in) * bw + o];
                    }
                    i = 1 / (1 + Math.exp(-i));
                    double logA = -8 * lambda[c] / (1 + Math.exp(-r)), at = Math.exp(logA);
                    double factor = position + t == 0 ? i : i * Math.sqrt(1 - at * at);
                    h[c] = (position + t == 0 ? 0 : at * h[c]) + factor * x[row + c];
                    ey[t * W + c] = h[c];
                    ea[t * W + c] = at;
                    eb[t * W + c] = factor;
                }
            }
            assertClose(read(y, T * W), ey, 1e-5);
            assertClose(read(a, T * W), ea, 1e-6);
            assertClose(read(b, T * W), eb, 1e-6);
            assertClose(read(state, W), h, 1e-5);
            position += T;
        }
    }

    @Test
    void rgLruWithoutAStateStartsFromZerosAndKeepsNothing() {
        int T = 2, W = 4, blocks = 4;
        RgLruWeights weights = new RgLruWeights(cpu.constant(randoms(W)), cpu.constant(randoms(W)), cpu.constant(randoms(W)),
                cpu.constant(randoms(W)), cpu.constant(new float[]{1, 1, 1, 1}));
        float[] x = randoms(T * W);
        Buffer withState = view(new float[T * W]), without = view(new float[T * W]);
        cpu.rgLru(withState, view(x), W, weights, cpu.allocate(W), null, null, T, W, blocks, 0);
        cpu.rgLru(without, view(x), W, weights, null, null, null, T, W, blocks, 0);
        assertThat(read(without, T * W)).containsExactly(read(withState, T * W));
    }

    @Test
    void softCapBoundsEveryValue() {
        float[] x = {-1000f, -3f, 0f, 0.5f, 29f, 1e6f, 7f};
        Buffer b = view(x);
        cpu.softCap(b, 30f, 5);
        double[] expected = new double[7];
        for (int i = 0; i < 7; i++) expected[i] = i < 5 ? 30 * Math.tanh(x[i] / 30.0) : x[i];
        assertClose(read(b, 7), expected, 1e-4);
    }
}
