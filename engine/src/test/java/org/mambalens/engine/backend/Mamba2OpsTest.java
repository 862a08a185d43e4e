package org.mambalens.engine.backend;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/** The CPU backend's Mamba-2 operations against plain scalar loops, on odd sizes and strided rows. */
class Mamba2OpsTest {
    private static final CpuBackend CPU = CpuBackend.INSTANCE;
    private final Random random = new Random(17);

    private float[] values(int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (random.nextGaussian() * scale);
        return v;
    }

    private static double silu(double v) {
        return v / (1 + Math.exp(-v));
    }

    private static void assertClose(float[] actual, double[] expected, double tolerance) {
        assertThat(actual).hasSize(expected.length);
        for (int i = 0; i < expected.length; i++) {
            assertThat((double) actual[i]).as("element %d", i).isCloseTo(expected[i], org.assertj.core.data.Offset.offset(tolerance * (1 + Math.abs(expected[i]))));
        }
    }

    /** T tokens through the scan from {@code state0}: y [T, H·P], Δ [T, H], the final state [H, P, N]. */
    private record Expected(double[] y, double[] delta, double[] state) {
    }

    private static Expected scalarScan(float[] xbc, int ld, int bOff, int cOff, float[] dt, int lddt, int dtOff, float[] dtBias, float lo,
                                       float hi, float[] a, float[] d, float[] state0, int T, int H, int P, int G, int N) {
        double[] y = new double[T * H * P], delta = new double[T * H], s = new double[H * P * N];
        for (int i = 0; i < s.length; i++) s[i] = state0[i];
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < H; h++) {
                double v = dt[dtOff + t * lddt + h] + dtBias[h];
                double dl = Math.min(hi, Math.max(lo, v > 20 ? v : Math.log1p(Math.exp(v))));
                delta[t * H + h] = dl;
                int g = h / (H / G);
                for (int p = 0; p < P; p++) {
                    double x = xbc[t * ld + h * P + p], acc = 0;
                    for (int n = 0; n < N; n++) {
                        int k = (h * P + p) * N + n;
                        s[k] = Math.exp(dl * a[h]) * s[k] + dl * x * xbc[t * ld + bOff + g * N + n];
                        acc += s[k] * xbc[t * ld + cOff + g * N + n];
                    }
                    y[t * H * P + h * P + p] = acc + d[h] * x;
                }
            }
        }
        return new Expected(y, delta, s);
    }

    @Test
    void ssdScanMatchesAScalarLoop() {
        int T = 5, H = 6, P = 3, G = 3, N = 7, E = H * P, GN = G * N, ld = E + 2 * GN + 4;   // x, B, C then 4 more columns
        float[] xbc = values(T * ld, 1f), dt = values(T * (H + 3), 1.5f), dtBias = values(H, 0.5f), d = values(H, 1f);
        float[] a = new float[H], state0 = values(H * P * N, 0.3f);
        for (int h = 0; h < H; h++) a[h] = (float) -Math.exp(random.nextGaussian());
        dt[2 * (H + 3) + 1 + 4] = 30f;                                    // above the softplus threshold, clamped at 2
        float lo = 0.05f, hi = 2f;
        Expected expected = scalarScan(xbc, ld, E, E + GN, dt, H + 3, 1, dtBias, lo, hi, a, d, state0, T, H, P, G, N);

        // x, B and C as columns of one matrix, y strided, the state kept.
        float[] y = new float[T * (E + 2)], delta = new float[T * H], state = state0.clone();
        Buffer in = wrap(xbc);
        CPU.ssdScan(new Backend.Ssd(wrap(y), E + 2, in, ld, in.at(E), in.at(E + GN), ld, wrap(dt).at(1), H + 3, wrap(dtBias), lo, hi,
                wrap(a), wrap(d), wrap(state), wrap(delta)), T, H, P, G, N);
        float[] packedY = new float[T * E];
        for (int t = 0; t < T; t++) System.arraycopy(y, t * (E + 2), packedY, t * E, E);
        assertClose(packedY, expected.y(), 1e-4);
        assertClose(delta, expected.delta(), 1e-5);
        assertClose(state, expected.state(), 1e-4);
        assertThat(delta[2 * H + 4]).isEqualTo(hi);

        // x, B and C in separate buffers, no state (zeros, not kept), no Δ out.
        float[] x = new float[T * E], b = new float[T * GN], c = new float[T * GN];
        for (int t = 0; t < T; t++) {
            System.arraycopy(xbc, t * ld, x, t * E, E);
            System.arraycopy(xbc, t * ld + E, b, t * GN, GN);
            System.arraycopy(xbc, t * ld + E + GN, c, t * GN, GN);
        }
        Expected fromZero = scalarScan(xbc, ld, E, E + GN, dt, H + 3, 1, dtBias, lo, hi, a, d, new float[H * P * N], T, H, P, G, N);
        float[] y2 = new float[T * E];
        CPU.ssdScan(new Backend.Ssd(wrap(y2), E, wrap(x), E, wrap(b), wrap(c), GN, wrap(dt).at(1), H + 3, wrap(dtBias), lo, hi,
                wrap(a), wrap(d), null, null), T, H, P, G, N);
        assertClose(y2, fromZero.y(), 1e-4);
    }

    @Test
    void gatedRmsnormMatchesAScalarLoop() {
        int rows = 3, dim = 13, ldy = 15, ldz = 20, ldOut = 17;
        float[] y = values(rows * ldy, 1f), z = values(rows * ldz, 2f), w = values(dim, 1f), out = new float[rows * ldOut];
        float eps = 1e-5f;
        CPU.gatedRmsnorm(wrap(out).at(2), ldOut, wrap(y).at(1), ldy, wrap(z).at(5), ldz, wrap(w), rows, dim, eps);
        double[] expected = new double[rows * dim];
        float[] actual = new float[rows * dim];
        for (int r = 0; r < rows; r++) {
            double squares = 0;
            double[] g = new double[dim];
            for (int i = 0; i < dim; i++) {
                g[i] = y[1 + r * ldy + i] * silu(z[5 + r * ldz + i]);
                squares += g[i] * g[i];
            }
            double inv = 1 / Math.sqrt(squares / dim + eps);
            for (int i = 0; i < dim; i++) {
                expected[r * dim + i] = g[i] * inv * w[i];
                actual[r * dim + i] = out[2 + r * ldOut + i];
            }
        }
        assertClose(actual, expected, 1e-5);
        assertThat(out[0]).isZero();                                       // nothing written outside the rows
        assertThat(out[2 + dim]).isZero();
    }
}
