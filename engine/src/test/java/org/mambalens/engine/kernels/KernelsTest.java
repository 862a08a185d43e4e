package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.DType;
import org.mambalens.engine.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** Every vector kernel against its scalar twin, on sizes that exercise vector bodies and scalar tails. */
class KernelsTest {
    final Random random = new Random(11);

    float[] randoms(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) random.nextGaussian();
        return a;
    }

    /** A [rows, cols] weight in the given dtype, values rounded to it. */
    Tensor weight(DType type, int rows, int cols) {
        ByteBuffer b = ByteBuffer.allocate(rows * cols * type.bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) {
            float v = (float) random.nextGaussian();
            switch (type) {
                case F32 -> b.putFloat(v);
                case BF16 -> b.putShort((short) (Float.floatToIntBits(v) >>> 16));
                case F16 -> b.putShort(Float.floatToFloat16(v));
                default -> throw new IllegalArgumentException();
            }
        }
        return new Tensor("w", type, new long[]{rows, cols}, MemorySegment.ofArray(b.array()));
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void matmulAndMatvecMatchTheScalarLoop(DType type) {
        int[][] sizes = {{1, 5, 3}, {1, 300, 77}, {7, 37, 33}, {13, 300, 17}, {6, 64, 32}, {20, 513, 70}};
        for (int[] s : sizes) {
            int rows = s[0], in = s[1], out = s[2];
            Tensor w = weight(type, out, in);
            float[] x = randoms(rows * in), bias = randoms(out);
            float[] expected = new float[rows * out], actual = new float[rows * out];
            Scalar.matmul(expected, x, rows, w, bias);
            MatMul.matmul(actual, 0, out, x, 0, in, rows, w, bias);
            assertThat(Fixtures.relativeError(actual, expected)).as("%s %s", type, java.util.Arrays.toString(s)).isLessThan(1e-5);
        }
    }

    /**
     * The GEMM's bits are its documented order, whatever the tile, the padding of the last row group, a partial
     * panel, the row blocks, the threads or whether W was packed beforehand: per output, K blocks of {@code MatMul.KC} each summed as an FMA chain
     * from zero, added in order to the bias (or zero).
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void matmulSumsInItsDocumentedOrder(DType type) {
        int[][] sizes = {{2, 5, 3}, {7, 300, 70}, {13, 129, 65}, {6, 256, 64}, {301, 140, 100}, {20, 513, 200}};
        for (int[] s : sizes) {
            int rows = s[0], in = s[1], out = s[2], ldx = in + 3, ldy = out + 2;
            Tensor w = weight(type, out, in);
            float[] x = randoms(1 + rows * ldx), y = new float[rows * ldy];
            float[] bias = s[0] % 2 == 0 ? null : randoms(out);
            MatMul.matmul(y, 0, ldy, x, 1, ldx, rows, w, bias);
            float[] prepacked = new float[y.length];                    // W packed once beforehand: the same bits
            MatMul.matmul(prepacked, 0, ldy, x, 1, ldx, rows, w, MatMul.panels(w), bias);
            assertThat(prepacked).as("%s %s with W packed once", type, java.util.Arrays.toString(s)).containsExactly(y);
            for (int r = 0; r < rows; r++) {
                for (int o = 0; o < out; o++) {
                    float expected = bias == null ? 0f : bias[o];
                    for (int k0 = 0; k0 < in; k0 += MatMul.KC) {
                        float block = 0f;
                        for (int k = k0; k < Math.min(in, k0 + MatMul.KC); k++) block = Math.fma(x[1 + r * ldx + k], w.getFloat((long) o * in + k), block);
                        expected += block;
                    }
                    assertThat(Float.floatToRawIntBits(y[r * ldy + o])).as("%s %s at %d, %d", type, java.util.Arrays.toString(s), r, o)
                            .isEqualTo(Float.floatToRawIntBits(expected));
                }
            }
        }
    }

    /**
     * A matrix-vector product's bits are its documented order, whatever group of four rows or thread computes an output:
     * vectors of k into two lane-wise FMA chains in turn (a last odd vector into the first), the two added, the lanes
     * summed pairwise by halves, then the k past the last whole vector one by one, then the bias.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void matvecSumsInItsDocumentedOrder(DType type) {
        int L = Vectors.LANES;
        int[][] sizes = {{5, 3}, {2 * L, 4}, {3 * L + 1, 7}, {4 * L - 1, 9}, {300, 70}, {768, 4099}};
        for (int[] s : sizes) {
            int in = s[0], out = s[1];
            Tensor w = weight(type, out, in);
            float[] x = randoms(2 + in), y = new float[out + 1], bias = out % 2 == 0 ? null : randoms(out);
            MatMul.matvec(y, 1, x, 2, w, bias);
            for (int o = 0; o < out; o++) {
                float[] a = new float[L], b = new float[L];
                int k = 0;
                for (; k + 2 * L <= in; k += 2 * L) {
                    for (int j = 0; j < L; j++) {
                        a[j] = Math.fma(w.getFloat((long) o * in + k + j), x[2 + k + j], a[j]);
                        b[j] = Math.fma(w.getFloat((long) o * in + k + L + j), x[2 + k + L + j], b[j]);
                    }
                }
                if (k + L <= in) {
                    for (int j = 0; j < L; j++) a[j] = Math.fma(w.getFloat((long) o * in + k + j), x[2 + k + j], a[j]);
                    k += L;
                }
                for (int j = 0; j < L; j++) a[j] += b[j];
                for (int distance = L / 2; distance >= 1; distance /= 2) {
                    float[] halves = a.clone();
                    for (int j = 0; j < L; j++) a[j] = halves[j] + halves[j ^ distance];
                }
                float expected = a[0];
                for (; k < in; k++) expected += w.getFloat((long) o * in + k) * x[2 + k];
                if (bias != null) expected += bias[o];
                assertThat(Float.floatToRawIntBits(y[1 + o])).as("%s %s at %d", type, java.util.Arrays.toString(s), o)
                        .isEqualTo(Float.floatToRawIntBits(expected));
            }
        }
    }

    @Test
    void matmulHonoursStridesAndOffsets() {
        int rows = 9, in = 40, out = 24, ldx = 50, ldy = 30;
        Tensor w = weight(DType.F32, out, in);
        float[] x = randoms(3 + rows * ldx), y = new float[5 + rows * ldy];
        MatMul.matmul(y, 5, ldy, x, 3, ldx, rows, w, null);
        float[] packed = new float[rows * in], expected = new float[rows * out];
        for (int r = 0; r < rows; r++) System.arraycopy(x, 3 + r * ldx, packed, r * in, in);
        Scalar.matmul(expected, packed, rows, w, null);
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) assertThat(y[5 + r * ldy + o]).isCloseTo(expected[r * out + o], org.assertj.core.data.Offset.offset(1e-4f));
            for (int o = out; o < ldy && 5 + r * ldy + o < y.length; o++) assertThat(y[5 + r * ldy + o]).isZero();
        }
    }

    @Test
    void halfPrecisionWideningIsExactForEveryBitPattern() {
        ByteBuffer b = ByteBuffer.allocate(65536 * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int h = 0; h < 65536; h++) b.putShort((short) h);
        MemorySegment seg = MemorySegment.ofArray(b.array());
        float[] lanes = new float[Vectors.LANES];
        for (int h = 0; h < 65536; h += Vectors.LANES) {
            for (DType type : new DType[]{DType.F16, DType.BF16}) {
                FloatVector v = Vectors.load(type, seg, h);
                v.intoArray(lanes, 0);
                for (int j = 0; j < Vectors.LANES; j++) {
                    float expected = Scalar.weight(type, seg, h + j);
                    if (Float.isNaN(expected)) assertThat(lanes[j]).as("%s %04x", type, h + j).isNaN();
                    else assertThat(Float.floatToIntBits(lanes[j])).as("%s %04x", type, h + j).isEqualTo(Float.floatToIntBits(expected));
                }
            }
        }
    }

    @Test
    void elementwiseKernelsMatchTheirTwins() {
        int n = 3 * Vectors.LANES + 5;
        float[] x = randoms(n);
        x[0] = 25f;                  // softplus threshold
        x[1] = -30f;
        x[2] = 19.5f;
        float[] silu = new float[n], soft = x.clone();
        Elementwise.silu(silu, 0, n, x, 0, n, 1, n);
        Elementwise.softplus(soft, 0, n);
        for (int i = 0; i < n; i++) {
            assertThat(silu[i]).isCloseTo(Scalar.silu(x[i]), org.assertj.core.data.Offset.offset(1e-6f));
            assertThat(soft[i]).isCloseTo(Scalar.softplus(x[i]), org.assertj.core.data.Offset.offset(2e-6f * Math.max(1, Math.abs(x[i]))));
        }
        int rows = 3, d = 2 * Vectors.LANES + 3;
        float[] v = randoms(rows * d), w = randoms(d), expected = new float[rows * d], actual = new float[rows * d];
        Scalar.rmsnorm(expected, v, w, 1e-5f, rows, d);
        Elementwise.rmsnorm(actual, v, w, 1e-5f, rows, d);
        assertThat(Fixtures.relativeError(actual, expected)).isLessThan(1e-6);
        float[] b = randoms(d);
        Scalar.layernorm(expected, v, w, b, 1e-12f, rows, d);
        Elementwise.layernorm(actual, v, w, b, 1e-12f, rows, d);
        assertThat(Fixtures.relativeError(actual, expected)).isLessThan(1e-6);
        float[] probs = v.clone(), softTwin = v.clone();
        Scalar.softmaxRows(softTwin, rows, d);
        Elementwise.softmaxRows(probs, 0, rows, d);
        assertThat(Fixtures.relativeError(probs, softTwin)).isLessThan(1e-6);
    }

    @Test
    void offsetElementwiseKernelsMatchTheirTwins() {
        int n = 3 * Vectors.LANES + 5, xOff = 3, outOff = 7;
        float[] x = randoms(xOff + n), y = randoms(outOff + n + 1);
        float[] sum = y.clone(), sumTwin = y.clone();
        Elementwise.addInPlace(sum, outOff, x, xOff, n);
        Scalar.addInPlace(sumTwin, outOff, x, xOff, n);
        assertThat(sum).containsExactly(sumTwin);
        float[] scaled = y.clone(), scaledTwin = y.clone();
        Elementwise.scale(scaled, outOff, x, xOff, -1.7f, n);
        Scalar.scale(scaledTwin, outOff, x, xOff, -1.7f, n);
        assertThat(scaled).containsExactly(scaledTwin);
        float[] factors = randoms(n + 1);
        float[] rowProducts = y.clone(), rowProductsTwin = y.clone();
        Elementwise.multiplyRows(rowProducts, outOff, x, xOff, factors, 1, 3, n / 3);
        Scalar.multiplyRows(rowProductsTwin, outOff, x, xOff, factors, 1, 3, n / 3);
        assertThat(rowProducts).containsExactly(rowProductsTwin);
        float[] floored = y.clone(), flooredTwin = y.clone();
        Elementwise.zeroBelow(floored, outOff, 0.3f, n);
        Scalar.zeroBelow(flooredTwin, outOff, 0.3f, n);
        assertThat(floored).containsExactly(flooredTwin);
        for (int zeros : new int[]{0, 1, Vectors.LANES, Vectors.LANES + 2, n}) {
            float[] ending = x.clone();
            java.util.Arrays.fill(ending, xOff + n - zeros, xOff + n, 0f);
            assertThat(Elementwise.endOfNonZeros(ending, xOff, n)).as("%d zeros", zeros).isEqualTo(Scalar.endOfNonZeros(ending, xOff, n)).isEqualTo(n - zeros);
        }
        float[] exps = y.clone(), expsTwin = y.clone();
        Elementwise.expOfScaled(exps, outOff, x, xOff, -0.6f, n);
        Scalar.expOfScaled(expsTwin, outOff, x, xOff, -0.6f, n);
        assertThat(Fixtures.relativeError(exps, expsTwin)).isLessThan(1e-6);
        assertThat(exps[outOff - 1]).isEqualTo(y[outOff - 1]);
        assertThat(exps[outOff + n]).isEqualTo(y[outOff + n]);
        float[] scales = {-0.6f, -0.1f, -1.3f}, rowFactors = randoms(3 * n + 1), rowsOut = new float[3 * n + 2], rowsTwin = rowsOut.clone();
        Elementwise.expOfScaledRowsTimes(rowsOut, 1, x, xOff, scales, 0, rowFactors, 1, 3, n);
        for (int r = 0; r < 3; r++) Scalar.expOfScaledTimes(rowsTwin, 1 + r * n, x, xOff, scales[r], rowFactors, 1 + r * n, n);
        assertThat(Fixtures.relativeError(rowsOut, rowsTwin)).isLessThan(1e-6);
        assertThat(rowsOut[0]).isZero();
        assertThat(rowsOut[3 * n + 1]).isZero();
        float[] thrice = y.clone(), thriceTwin = y.clone(), more = randoms(n + 2);
        Elementwise.expOfScaledTimes(thrice, outOff, x, xOff, -0.6f, factors, 1, more, 2, n);
        Scalar.expOfScaledTimes(thriceTwin, outOff, x, xOff, -0.6f, factors, 1, more, 2, n);
        assertThat(Fixtures.relativeError(thrice, thriceTwin)).isLessThan(1e-6);
        assertThat(thrice[outOff - 1]).isEqualTo(y[outOff - 1]);
        assertThat(thrice[outOff + n]).isEqualTo(y[outOff + n]);
    }

    @Test
    void geluUsesAnAccurateErf() {
        // erf at points with known values (Abramowitz & Stegun table 7.1)
        assertThat(Scalar.erf(0.5)).isCloseTo(0.5204998778, org.assertj.core.data.Offset.offset(2e-7));
        assertThat(Scalar.erf(1.0)).isCloseTo(0.8427007929, org.assertj.core.data.Offset.offset(2e-7));
        assertThat(Scalar.erf(-2.0)).isCloseTo(-0.9953222650, org.assertj.core.data.Offset.offset(2e-7));
        assertThat(Scalar.gelu(1f)).isCloseTo(0.8413447f, org.assertj.core.data.Offset.offset(1e-6f));
        assertThat(Scalar.gelu(-3f)).isCloseTo(-0.0040496f, org.assertj.core.data.Offset.offset(1e-6f));
        float[] x = randoms(3 * Vectors.LANES + 5);
        x[1] = -12f;
        x[2] = 9f;
        float[] y = x.clone();
        Elementwise.gelu(y, 1, y.length - 2);                               // all but the first and the last
        for (int i = 1; i < x.length - 1; i++) assertThat(y[i]).isCloseTo(Scalar.gelu(x[i]), org.assertj.core.data.Offset.offset(1e-6f));
        assertThat(y[0]).isEqualTo(x[0]);
        assertThat(y[x.length - 1]).isEqualTo(x[x.length - 1]);
    }

    @Test
    void causalConvMatchesItsTwinAndCarriesTheWindow() {
        int len = 11, e = 2 * Vectors.LANES + 3, taps = 4, ld = 2 * e;
        float[] x = randoms(len * ld), w = randoms(taps * e), bias = randoms(e);
        float[] packed = new float[len * e];
        for (int t = 0; t < len; t++) System.arraycopy(x, t * ld, packed, t * e, e);
        float[] expected = new float[len * e];
        Scalar.causalConv(expected, packed, w, bias, len, e, taps);
        // All at once, then the same input split 4 + 1 + 6 with the window carried between the parts.
        float[] whole = new float[len * e], window = new float[(taps - 1) * e];
        CausalConv.apply(whole, x, 0, ld, w, bias, window, 0, len, e, taps);
        assertThat(Fixtures.relativeError(whole, expected)).isLessThan(1e-6);
        float[] parts = new float[len * e], window2 = new float[(taps - 1) * e];
        int[][] splits = {{0, 4}, {4, 1}, {5, 6}};
        for (int[] p : splits) {
            float[] s = new float[p[1] * e];
            CausalConv.apply(s, x, p[0] * ld, ld, w, bias, window2, 0, p[1], e, taps);
            System.arraycopy(s, 0, parts, p[0] * e, s.length);
        }
        assertThat(Fixtures.relativeError(parts, expected)).isLessThan(1e-6);
        assertThat(window2).containsExactly(window);
    }

    @Test
    void selectiveScanMatchesItsTwinAcrossChunks() {
        int len = 23, e = 3 * Vectors.LANES + 2, n = 5;
        float[] u = randoms(len * e), z = randoms(len * e), bc = randoms(len * 2 * n), d = randoms(e);
        float[] delta = randoms(len * e), a = new float[e * n], aT = new float[n * e];
        Elementwise.softplus(delta, 0, delta.length);
        for (int c = 0; c < e; c++) for (int i = 0; i < n; i++) aT[i * e + c] = a[c * n + i] = -(i + 1) * (0.5f + random.nextFloat());
        float[] b = new float[len * n], cc = new float[len * n];
        for (int t = 0; t < len; t++) {
            System.arraycopy(bc, t * 2 * n, b, t * n, n);
            System.arraycopy(bc, t * 2 * n + n, cc, t * n, n);
        }
        float[] expected = new float[len * e];
        Scalar.selectiveScan(expected, u, delta, b, cc, z, a, d, len, e, n);
        float[] y = new float[len * e], h = new float[n * e];
        SelectiveScan.scan(y, new SelectiveScan.Inputs(u, delta, bc, 2 * n, 0, n, z, 0, e), aT, d, h, len, e, n);
        assertThat(Fixtures.relativeError(y, expected)).isLessThan(1e-5);
        // Token by token with the state carried: the decode path.
        float[] h2 = new float[n * e], y2 = new float[len * e];
        for (int t = 0; t < len; t++) {
            float[] yt = new float[e];
            SelectiveScan.scan(yt, new SelectiveScan.Inputs(java.util.Arrays.copyOfRange(u, t * e, t * e + e),
                    java.util.Arrays.copyOfRange(delta, t * e, t * e + e), java.util.Arrays.copyOfRange(bc, t * 2 * n, t * 2 * n + 2 * n),
                    2 * n, 0, n, java.util.Arrays.copyOfRange(z, t * e, t * e + e), 0, e), aT, d, h2, 1, e, n);
            System.arraycopy(yt, 0, y2, t * e, e);
        }
        assertThat(Fixtures.relativeError(y2, y)).isLessThan(1e-6);
        assertThat(h2).containsExactly(h);
    }

    @Test
    void vectorTimesMatrixEqualsTheLoop() {
        for (int cols : new int[]{1, Vectors.LANES, 2 * Vectors.LANES + 3}) {
            int rows = 13;
            float[] x = randoms(rows + 2), m = randoms(rows * cols + 5), y = new float[cols + 1];
            MatMul.vectorTimesMatrix(y, 1, x, 2, rows, m, cols);
            for (int c = 0; c < cols; c++) {
                double expected = 0;
                for (int r = 0; r < rows; r++) expected += (double) x[2 + r] * m[r * cols + c];
                assertThat((double) y[1 + c]).isCloseTo(expected, org.assertj.core.data.Offset.offset(1e-4));
            }
            assertThat(y[0]).isZero();
        }
    }
}
