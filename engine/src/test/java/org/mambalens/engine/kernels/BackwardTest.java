package org.mambalens.engine.kernels;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.tensor.Tensor;

import java.util.Random;
import java.util.function.UnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every reverse kernel against central finite differences of its forward kernel: for a fixed upstream
 * gradient dy and random directions v, ⟨dx, v⟩ must equal (⟨dy, f(x + hv)⟩ − ⟨dy, f(x − hv)⟩) / 2h.
 */
class BackwardTest {
    final Random random = new Random(5);

    float[] randoms(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (scale * random.nextGaussian());
        return a;
    }

    /** Checks dx (the analytic gradient of ⟨dy, f(x)⟩) along five random directions. */
    void check(UnaryOperator<float[]> f, float[] x, float[] dy, float[] dx) {
        for (int trial = 0; trial < 5; trial++) {
            float[] v = randoms(x.length, 1);
            double h = 1e-2, analytic = 0;
            for (int i = 0; i < x.length; i++) analytic += (double) dx[i] * v[i];
            double numeric = (dot(dy, f.apply(shift(x, v, h))) - dot(dy, f.apply(shift(x, v, -h)))) / (2 * h);
            assertThat(analytic).as("trial " + trial).isCloseTo(numeric, org.assertj.core.data.Offset.offset(2e-3 * Math.max(1, Math.abs(numeric))));
        }
    }

    static float[] shift(float[] x, float[] v, double h) {
        float[] out = x.clone();
        for (int i = 0; i < x.length; i++) out[i] += (float) (h * v[i]);
        return out;
    }

    static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (double) a[i] * b[i];
        return s;
    }

    @Test
    void linear() {
        int rows = 5, in = 19, out = 23;
        Tensor w = Tensor.of("w", randoms(out * in, 0.3), out, in);
        float[] x = randoms(rows * in, 1), dy = randoms(rows * out, 1), dx = new float[rows * in];
        Backward.linear(dx, dy, rows, w);
        check(v -> {
            float[] y = new float[rows * out];
            MatMul.matmul(y, 0, out, v, 0, in, rows, w, null);
            return y;
        }, x, dy, dx);
    }

    @Test
    void norms() {
        int rows = 3, d = 21;
        float[] w = randoms(d, 1), b = randoms(d, 1), x = randoms(rows * d, 2), dy = randoms(rows * d, 1), dx = new float[rows * d];
        Backward.rmsnorm(dx, dy, x, w, 1e-5f, rows, d);
        check(v -> {
            float[] y = new float[rows * d];
            Elementwise.rmsnorm(y, v, w, 1e-5f, rows, d);
            return y;
        }, x, dy, dx);
        Backward.layernorm(dx, dy, x, w, 1e-5f, rows, d);
        check(v -> {
            float[] y = new float[rows * d];
            Elementwise.layernorm(y, v, w, b, 1e-5f, rows, d);
            return y;
        }, x, dy, dx);
    }

    @Test
    void activations() {
        int n = 37;
        float[] x = randoms(n, 3), dy = randoms(n, 1), dx = new float[n];
        x[0] = 25f;                                                         // softplus's linear branch
        Backward.silu(dx, dy, x, n);
        check(v -> {
            float[] y = new float[n];
            Elementwise.silu(y, 0, n, v, 0, n, 1, n);
            return y;
        }, x, dy, dx);
        Backward.softplus(dx, dy, x, n);
        check(v -> {
            float[] y = v.clone();
            Elementwise.softplus(y, 0, n);
            return y;
        }, x, dy, dx);
        Backward.gelu(dx, dy, x, n);
        check(v -> {
            float[] y = v.clone();
            Elementwise.gelu(y, n);
            return y;
        }, x, dy, dx);
        Backward.geluTanh(dx, dy, x, n);
        check(v -> {
            float[] y = v.clone();
            Elementwise.geluTanh(y, n);
            return y;
        }, x, dy, dx);
        float cap = 2.5f;
        UnaryOperator<float[]> softCap = v -> {
            float[] y = new float[n];
            for (int i = 0; i < n; i++) y[i] = cap * (float) Math.tanh(v[i] / cap);
            return y;
        };
        Backward.softCap(dx, dy, softCap.apply(x), cap, n);
        check(softCap, x, dy, dx);
    }

    @Test
    void softmax() {
        int rows = 4, n = 13;
        float[] s = randoms(rows * n, 2), dy = randoms(rows * n, 1);
        float[] p = s.clone();
        Elementwise.softmaxRows(p, 0, rows, n);
        float[] ds = dy.clone();
        Backward.softmaxRows(ds, p, 0, rows, n);
        check(v -> {
            float[] y = v.clone();
            Elementwise.softmaxRows(y, 0, rows, n);
            return y;
        }, s, dy, ds);
    }

    @Test
    void causalConv() {
        int len = 9, e = 11, k = 4;
        float[] w = randoms(k * e, 1), bias = randoms(e, 1), x = randoms(len * e, 1), dy = randoms(len * e, 1), dx = new float[len * e];
        Backward.causalConv(dx, 0, e, dy, w, len, e, k);
        check(v -> {
            float[] s = new float[len * e];
            CausalConv.apply(s, v, 0, e, w, bias, new float[(k - 1) * e], len, e, k);
            return s;
        }, x, dy, dx);
    }

    /** The scan's five differentiable inputs, one at a time: u, Δ, B, C and z. */
    @Test
    void selectiveScan() {
        int len = 7, e = 3 * Vectors.LANES + 3, n = 4, P = 2 * n + 1;
        float[] u = randoms(len * e, 1), delta = new float[len * e], bc = randoms(len * P, 1), z = randoms(len * e, 1);
        for (int i = 0; i < delta.length; i++) delta[i] = 0.05f + 0.5f * random.nextFloat();
        float[] aT = new float[n * e], d = randoms(e, 1), dy = randoms(len * e, 1);
        for (int i = 0; i < aT.length; i++) aT[i] = -0.2f - 2 * random.nextFloat();
        var g = new Backward.ScanGradients(new float[len * e], new float[len * e], new float[len * P], new float[len * e]);
        Backward.scan(g, dy, new SelectiveScan.Inputs(u, delta, bc, P, 1, 1 + n, z, 0, e), aT, d, len, e, n);

        java.util.function.Function<float[][], float[]> f = in -> {
            float[] y = new float[len * e];
            SelectiveScan.scan(y, new SelectiveScan.Inputs(in[0], in[1], in[2], P, 1, 1 + n, in[3], 0, e), aT, d, new float[n * e], len, e, n);
            return y;
        };
        check(v -> f.apply(new float[][]{v, delta, bc, z}), u, dy, g.du());
        check(v -> f.apply(new float[][]{u, v, bc, z}), delta, dy, g.ddelta());
        check(v -> f.apply(new float[][]{u, delta, v, z}), bc, dy, g.dbc());
        check(v -> f.apply(new float[][]{u, delta, bc, v}), z, dy, g.dz());
        for (int t = 0; t < len; t++) assertThat(g.dbc()[t * P]).as("the δr column is left to the caller").isZero();
    }

    /** The RG-LRU's input x through both gates, the reset at position 0 and the √(1 − a²) normaliser, three gate blocks. */
    @Test
    void rgLru() {
        int T = 8, W = 12, bw = 4;
        float[] lambda = new float[W];
        for (int c = 0; c < W; c++) lambda[c] = Scalar.softplus((float) (2 * random.nextGaussian()));
        RgLru.Weights w = new RgLru.Weights(randoms(W * bw, 0.6), randoms(W, 0.5), randoms(W * bw, 0.6), randoms(W, 0.5), lambda);
        float[] x = randoms(T * W, 1), dy = randoms(T * W, 1), dx = new float[T * W];
        Backward.rgLru(dx, dy, x, w, T, W, bw);
        check(v -> {
            float[] h = new float[T * W];
            RgLru.scan(h, 0, v, 0, W, w, new float[W], null, 0, null, 0, T, W, bw, 0);
            return h;
        }, x, dy, dx);
    }

    /** Queries, keys and values at once, grouped key/value heads (two query heads each) and a window shorter than the sequence. */
    @Test
    void slidingWindowAttention() {
        int T = 9, H = 4, KV = 2, dh = 5, window = 4, q = H * dh, kv = KV * dh, ld = q + 2 * kv;
        float scale = (float) (1 / Math.sqrt(dh));
        float[] qkv = randoms(T * ld, 1), dContext = randoms(T * q, 1), probs = new float[H * T * T];
        UnaryOperator<float[]> attention = v -> {
            float[] out = new float[T * q];
            SlidingWindowAttention.apply(out, 0, q, new SlidingWindowAttention.Rows(v, 0, ld, v, q, v, q + kv, ld), null, 0, T, H, KV, dh,
                    window, scale, probs, 0);
            return out;
        };
        attention.apply(qkv);                                               // the probabilities the reverse pass reads
        float[] dqkv = new float[T * ld];
        Backward.attention(dqkv, dContext, qkv, ld, 0, q, q + kv, probs.clone(), T, H, KV, dh, scale);
        check(attention, qkv, dContext, dqkv);
        for (int j = 0; j < q; j++) assertThat(dqkv[j]).as("position 0 sees only itself: its query has no gradient").isZero();
    }
}
