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
            Elementwise.gelu(y, 0, n);
            return y;
        }, x, dy, dx);
        Backward.geluTanh(dx, dy, x, n);
        check(v -> {
            float[] y = v.clone();
            Elementwise.geluTanh(y, 0, n);
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
            CausalConv.apply(s, v, 0, e, w, bias, new float[(k - 1) * e], 0, len, e, k);
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

    @Test
    void rwkvAndMamba2Elementwise() {
        int rows = 5, dim = 13, n = rows * dim;
        float[] x = randoms(n, 2), dy = randoms(n, 1), dx = new float[n], mix = new float[dim];
        for (int j = 0; j < dim; j++) mix[j] = random.nextFloat();
        Backward.tokenShift(dx, dy, mix, rows, dim);
        check(v -> {
            float[] y = new float[n];
            Wkv.tokenShift(y, 0, v, 0, mix, 0, new float[dim], 0, rows, dim);
            return y;
        }, x, dy, dx);
        float[] sig = new float[n];
        for (int i = 0; i < n; i++) sig[i] = Scalar.sigmoid(x[i]);
        Backward.sigmoid(dx, dy, sig, n);
        check(v -> {
            float[] y = new float[n];
            for (int i = 0; i < n; i++) y[i] = Scalar.sigmoid(v[i]);
            return y;
        }, x, dy, dx);
        Backward.reluSquared(dx, dy, x, n);
        check(v -> {
            float[] y = new float[n];
            for (int i = 0; i < n; i++) y[i] = v[i] > 0 ? v[i] * v[i] : 0f;
            return y;
        }, x, dy, dx);
        Backward.clamp(dx, dy, x, -1, 1.5, n);
        for (int i = 0; i < n; i++) assertThat(dx[i]).isEqualTo(x[i] >= -1 && x[i] <= 1.5 ? dy[i] : 0f);

        float[] y = randoms(n, 1), z = randoms(n, 2), w = randoms(dim, 1), dOut = randoms(n, 1), dz = new float[n];
        Backward.gatedRmsnorm(dx, dz, dOut, y, z, w, 1e-5f, rows, dim);
        java.util.function.BinaryOperator<float[]> gated = (yy, zz) -> {
            float[] out = new float[n];
            org.mambalens.engine.backend.CpuBackend.INSTANCE.gatedRmsnorm(org.mambalens.engine.backend.CpuBackend.wrap(out), dim,
                    org.mambalens.engine.backend.CpuBackend.wrap(yy), dim, org.mambalens.engine.backend.CpuBackend.wrap(zz), dim,
                    org.mambalens.engine.backend.CpuBackend.wrap(w), rows, dim, 1e-5f);
            return out;
        };
        check(v -> gated.apply(v, z), y, dOut, dx);
        check(v -> gated.apply(y, v), z, dOut, dz);
    }

    /** The gated WKV's three inputs, one at a time; then its numerical safety: shifting every k by 200 changes nothing. */
    @Test
    void wkv() {
        int T = 9, A = 7;
        float[] gate = randoms(T * A, 1), k = randoms(T * A, 1.5), v = randoms(T * A, 1), decay = new float[A], bonus = randoms(A, 1);
        for (int a = 0; a < A; a++) decay[a] = (float) -Math.exp(random.nextGaussian());
        float[] dOut = randoms(T * A, 1);
        var g = new Backward.WkvGradients(new float[T * A], new float[T * A], new float[T * A]);
        Backward.wkv(g, dOut, gate, k, v, decay, bonus, T, A);
        java.util.function.Function<float[][], float[]> f = in -> {
            float[] out = new float[T * A], state = new float[3 * A];
            java.util.Arrays.fill(state, 2 * A, 3 * A, -1e38f);
            Wkv.recurrence(out, 0, in[0], 0, in[1], 0, in[2], 0, decay, bonus, state, 0, T, A);
            return out;
        };
        check(x -> f.apply(new float[][]{x, k, v}), gate, dOut, g.dGate());
        check(x -> f.apply(new float[][]{gate, x, v}), k, dOut, g.dk());
        check(x -> f.apply(new float[][]{gate, k, x}), v, dOut, g.dv());

        float[] shifted = k.clone();
        for (int i = 0; i < shifted.length; i++) shifted[i] += 200f;                  // e^200 overflows a float: only the safe state survives
        var s = new Backward.WkvGradients(new float[T * A], new float[T * A], new float[T * A]);
        Backward.wkv(s, dOut, gate, shifted, v, decay, bonus, T, A);
        assertThat(org.mambalens.engine.Fixtures.relativeError(s.dv(), g.dv())).isLessThan(1e-5);
        assertThat(org.mambalens.engine.Fixtures.relativeError(s.dk(), g.dk())).isLessThan(1e-4);
        assertThat(org.mambalens.engine.Fixtures.relativeError(s.dGate(), g.dGate())).isLessThan(1e-5);
    }

    /**
     * The SSD scan's inputs x, B, C (columns of one wider matrix, as the model holds them, with a column the scan
     * does not read) and Δ; two groups of two heads; the state size a vector and a scalar tail. The scalar twin
     * agrees with the vectorised kernel.
     */
    @Test
    void ssdScan() {
        int len = 7, heads = 4, headDim = 3, groups = 2, n = Vectors.LANES + 3, E = heads * headDim, GN = groups * n, ld = 1 + E + 2 * GN;
        float[] xbc = randoms(len * ld, 1), delta = new float[len * heads], a = new float[heads], d = randoms(heads, 1), dy = randoms(len * E, 1);
        for (int i = 0; i < delta.length; i++) delta[i] = 0.05f + 0.5f * random.nextFloat();
        for (int h = 0; h < heads; h++) a[h] = -0.2f - 2 * random.nextFloat();
        var g = new Backward.SsdGradients(new float[len * ld], new float[len * heads]);
        Backward.ssd(g, dy, new SsdScan.Inputs(xbc, ld, 1, 1 + E, 1 + E + GN, delta), a, d, len, heads, headDim, groups, n);
        java.util.function.BiFunction<float[], float[], float[]> f = (in, dt) -> {
            float[] y = new float[len * E];
            SsdScan.scan(y, new SsdScan.Inputs(in, ld, 1, 1 + E, 1 + E + GN, dt), a, d, new float[E * n], len, heads, headDim, groups, n);
            return y;
        };
        check(v -> f.apply(v, delta), xbc, dy, g.dxbc());
        check(v -> f.apply(xbc, v), delta, dy, g.ddelta());
        for (int t = 0; t < len; t++) assertThat(g.dxbc()[t * ld]).as("a column the scan does not read").isZero();

        var scalar = new Backward.SsdGradients(new float[len * ld], new float[len * heads]);
        Backward.ssd(scalar, dy, new SsdScan.Inputs(xbc, ld, 1, 1 + E, 1 + E + GN, delta), a, d, len, heads, headDim, groups, n, false);
        assertThat(org.mambalens.engine.Fixtures.relativeError(scalar.dxbc(), g.dxbc())).isLessThan(1e-6);
        assertThat(org.mambalens.engine.Fixtures.relativeError(scalar.ddelta(), g.ddelta())).isLessThan(1e-6);
    }

    /**
     * The threaded reverse kernels give bit-identical results with every kernel on the calling thread
     * ({@link Parallel#inline}, what -Dmambalens.threads=1 does): sizes large enough for each to split its work.
     */
    @Test
    void reverseKernelsDoNotDependOnTheThreads() {
        int len = 64, heads = 16, headDim = 4, groups = 2, n = Vectors.LANES + 3, E = heads * headDim, W = E + 2 * groups * n;
        float[] xbc = randoms(len * W, 1), delta = new float[len * heads], a = new float[heads], d = randoms(heads, 1), dy = randoms(len * E, 1);
        for (int i = 0; i < delta.length; i++) delta[i] = 0.05f + 0.5f * random.nextFloat();
        for (int h = 0; h < heads; h++) a[h] = -0.2f - 2 * random.nextFloat();
        var in = new SsdScan.Inputs(xbc, W, 0, E, E + groups * n, delta);
        var threaded = new Backward.SsdGradients(new float[len * W], new float[len * heads]);
        var inline = new Backward.SsdGradients(new float[len * W], new float[len * heads]);
        Backward.ssd(threaded, dy, in, a, d, len, heads, headDim, groups, n);
        Parallel.inline(() -> Backward.ssd(inline, dy, in, a, d, len, heads, headDim, groups, n));
        assertThat(inline.dxbc()).isEqualTo(threaded.dxbc());
        assertThat(inline.ddelta()).isEqualTo(threaded.ddelta());

        int A = 256;
        float[] gate = randoms(len * A, 1), k = randoms(len * A, 1), v = randoms(len * A, 1), decay = new float[A], bonus = randoms(A, 1), dOut = randoms(len * A, 1);
        for (int c = 0; c < A; c++) decay[c] = (float) -Math.exp(random.nextGaussian());
        var wkvThreaded = new Backward.WkvGradients(new float[len * A], new float[len * A], new float[len * A]);
        var wkvInline = new Backward.WkvGradients(new float[len * A], new float[len * A], new float[len * A]);
        Backward.wkv(wkvThreaded, dOut, gate, k, v, decay, bonus, len, A);
        Parallel.inline(() -> Backward.wkv(wkvInline, dOut, gate, k, v, decay, bonus, len, A));
        assertThat(wkvInline.dk()).isEqualTo(wkvThreaded.dk());
        assertThat(wkvInline.dv()).isEqualTo(wkvThreaded.dv());
    }
}
