package org.mambalens.engine.cuda;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.mambalens.engine.Fixtures;

import java.util.Arrays;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mambalens.engine.cuda.CudaBatchRowsTest.assertSameBits;

/**
 * The CUDA selective scan (a channel's states on a group of lanes, tokens in rounds: see mambalens.cu) against a
 * double-precision scan written out here from DESIGN §2, for each of its kernels (up to 16, 32 and 64 states), forward
 * and reverse, with partial rounds and channel blocks, strided rows, and every optional part (gate, state, Δ trace,
 * conv window, accumulation). One forward sequence of 128 tokens or more is scanned in chunks: on a 132-SM H200 the
 * (1, 300, 1536, 16) case in 4 chunks, (1, 1000, 64, 16) in 13, (1, 700, 40, 20) in 9, (1, 300, 30, 64) in 4, and
 * (1, 1000, 1536, 16) in 11, where the SMs rather than the tokens set the count. Then a sequence's bits: the same alone,
 * in a batch, and as a longer prompt's prefix (sequences short enough not to be cut into chunks, whose carried states
 * round differently).
 */
class CudaScanTest {
    private static final int KERNEL = 4;

    @BeforeEach
    void gpu() {
        GpuRequired.check();
    }

    @ParameterizedTest
    @CsvSource({"1, 300, 1536, 16, false", "3, 37, 100, 10, false", "3, 37, 100, 10, true", "2, 65, 72, 32, false", "2, 50, 40, 64, true",
                "1, 2, 24, 16, false", "4, 197, 384, 16, true", "1, 33, 20, 20, false", "1, 1000, 64, 16, false", "1, 700, 40, 20, false",
                "1, 300, 30, 64, false", "1, 300, 30, 16, true", "2, 50, 40, 64, false", "1, 1000, 1536, 16, false", "1, 298, 30, 64, false"})
    void matchesTheReference(int batch, int tokens, int channels, int states, boolean reverse) {
        for (boolean everything : new boolean[]{false, true}) {
            Problem p = new Problem(new Random(tokens * 31L + states), batch, tokens, channels, states, everything);
            try (Gpu gpu = Gpu.open(); DeviceArena arena = gpu.newArena()) {
                Result gpuResult = p.onGpu(new CudaKernels(gpu, arena), arena, reverse);
                Result expected = p.reference(reverse);
                String what = (everything ? "gate, state, Δ, window, accumulate" : "plain") + (reverse ? ", reverse" : "");
                assertThat(Fixtures.relativeError(gpuResult.y, expected.y)).as("y, " + what).isLessThan(1e-4);
                if (everything) {
                    assertThat(Fixtures.relativeError(gpuResult.state, expected.state)).as("state, " + what).isLessThan(1e-4);
                    assertThat(Fixtures.relativeError(gpuResult.delta, expected.delta)).as("Δ, " + what).isLessThan(1e-5);
                    assertSameBits("window, " + what, gpuResult.window, expected.window);
                }
            }
        }
    }

    @Test
    void aSequenceGetsItsBitsAloneInABatchAndAsAPrefix() {
        int batch = 3, tokens = 120, channels = 200, states = 16;
        Problem p = new Problem(new Random(3), batch, tokens, channels, states, true);
        try (Gpu gpu = Gpu.open(); DeviceArena arena = gpu.newArena()) {
            CudaKernels kernels = new CudaKernels(gpu, arena);
            Result together = p.onGpu(kernels, arena, false);
            for (int b = 0; b < batch; b++) {
                Result alone = p.sequence(b, tokens).onGpu(kernels, arena, false);
                assertSameBits("y of sequence " + b, rows(together.y, b * tokens, tokens, p.ldy), alone.y);
                assertSameBits("state of sequence " + b, Arrays.copyOfRange(together.state, b * channels * states, (b + 1) * channels * states), alone.state);
            }
            Result prefix = p.sequence(1, 77).onGpu(kernels, arena, false);
            assertSameBits("y of a 77-token prefix", rows(together.y, tokens, 77, p.ldy), prefix.y);
        }
    }

    private static float[] rows(float[] matrix, int first, int count, int ld) {
        return Arrays.copyOfRange(matrix, first * ld, (first + count) * ld);
    }

    private record Result(float[] y, float[] state, float[] delta, float[] window) {
    }

    /** Random inputs, laid out as a Mamba layer holds them: u, z and x with their own row strides, B and C inside x_proj's output. */
    private static final class Problem {
        final int batch, tokens, channels, states, rank = 5, ldu, lddt, ldbc, ldz, ldy, ldx;
        final boolean everything;
        final float[] u, dt, xdbl, z, a, d, bias, state, window, x, y0;

        Problem(Random r, int batch, int tokens, int channels, int states, boolean everything) {
            this(batch, tokens, channels, states, everything, channels + 3, channels, 2 * channels + 1, channels + 1, channels + 5);
            fill(r, u, 1);
            fill(r, dt, 1);
            fill(r, xdbl, 1);
            fill(r, z, 2);
            for (int i = 0; i < a.length; i++) a[i] = -(0.05f + 1.5f * r.nextFloat());
            fill(r, d, 1);
            fill(r, bias, 0.5f);
            fill(r, state, 1);
            fill(r, window, 1);
            fill(r, x, 1);
            fill(r, y0, 1);
        }

        private Problem(int batch, int tokens, int channels, int states, boolean everything, int ldu, int lddt, int ldz, int ldy, int ldx) {
            this.batch = batch;
            this.tokens = tokens;
            this.channels = channels;
            this.states = states;
            this.everything = everything;
            this.ldu = ldu;
            this.lddt = lddt;
            this.ldbc = rank + 2 * states + 1;
            this.ldz = ldz;
            this.ldy = ldy;
            this.ldx = ldx;
            int rows = batch * tokens;
            u = new float[rows * ldu];
            dt = new float[rows * lddt];
            xdbl = new float[rows * ldbc];
            z = new float[rows * ldz];
            a = new float[channels * states];
            d = new float[channels];
            bias = new float[channels];
            state = new float[batch * channels * states];
            window = new float[batch * (KERNEL - 1) * channels];
            x = new float[rows * ldx];
            y0 = new float[rows * ldy];
        }

        private static void fill(Random r, float[] values, float scale) {
            for (int i = 0; i < values.length; i++) values[i] = (float) r.nextGaussian() * scale;
        }

        /** The first `count` tokens of sequence b as a problem of its own. */
        Problem sequence(int b, int count) {
            Problem p = new Problem(1, count, channels, states, everything, ldu, lddt, ldz, ldy, ldx);
            int first = b * tokens;
            System.arraycopy(u, first * ldu, p.u, 0, count * ldu);
            System.arraycopy(dt, first * lddt, p.dt, 0, count * lddt);
            System.arraycopy(xdbl, first * ldbc, p.xdbl, 0, count * ldbc);
            System.arraycopy(z, first * ldz, p.z, 0, count * ldz);
            System.arraycopy(x, first * ldx, p.x, 0, count * ldx);
            System.arraycopy(y0, first * ldy, p.y0, 0, count * ldy);
            System.arraycopy(a, 0, p.a, 0, a.length);
            System.arraycopy(d, 0, p.d, 0, d.length);
            System.arraycopy(bias, 0, p.bias, 0, bias.length);
            System.arraycopy(state, b * channels * states, p.state, 0, channels * states);
            System.arraycopy(window, b * (KERNEL - 1) * channels, p.window, 0, (KERNEL - 1) * channels);
            return p;
        }

        Result onGpu(CudaKernels kernels, DeviceArena arena, boolean reverse) {
            int rows = batch * tokens;
            DeviceBuffer yBuffer = arena.upload(everything ? y0 : new float[y0.length]), uBuffer = arena.upload(u), dtBuffer = arena.upload(dt),
                    bcBuffer = arena.upload(xdbl), zBuffer = arena.upload(z), aBuffer = arena.upload(a), dBuffer = arena.upload(d),
                    biasBuffer = arena.upload(bias), stateBuffer = arena.upload(state), windowBuffer = arena.upload(window), xBuffer = arena.upload(x),
                    deltaBuffer = arena.floats((long) rows * channels);
            kernels.selectiveScan(new CudaKernels.ScanArgs(yBuffer.address(), ldy, uBuffer.address(), ldu, dtBuffer.address(), lddt,
                    biasBuffer.address(), bcBuffer.at(rank), ldbc, everything ? zBuffer.at(channels) : 0, ldz, aBuffer.address(), dBuffer.address(),
                    everything ? stateBuffer.address() : 0, everything ? deltaBuffer.address() : 0, everything ? windowBuffer.address() : 0,
                    xBuffer.address(), ldx, KERNEL), batch, tokens, channels, states, reverse, everything);
            return new Result(yBuffer.download(0, y0.length), stateBuffer.download(0, state.length), deltaBuffer.download(0, rows * channels),
                    windowBuffer.download(0, window.length));
        }

        /** DESIGN §2's scan in doubles; columns of y outside the channels keep their starting values. */
        Result reference(boolean reverse) {
            float[] y = everything ? y0.clone() : new float[y0.length], stateOut = state.clone(), delta = new float[batch * tokens * channels];
            float[] windowOut = window.clone();
            for (int b = 0; b < batch; b++) {
                for (int e = 0; e < channels; e++) {
                    double[] h = new double[states];
                    for (int n = 0; n < states; n++) h[n] = everything ? state[(b * channels + e) * states + n] : 0;
                    for (int k = 0; k < tokens; k++) {
                        int row = b * tokens + (reverse ? tokens - 1 - k : k);
                        double v = dt[row * lddt + e] + (double) bias[e], dl = v > 20 ? v : Math.log1p(Math.exp(v)), uv = u[row * ldu + e], sum = 0;
                        delta[row * channels + e] = (float) dl;
                        for (int n = 0; n < states; n++) {
                            h[n] = Math.exp(dl * a[e * states + n]) * h[n] + dl * uv * xdbl[row * ldbc + rank + n];
                            sum += xdbl[row * ldbc + rank + states + n] * h[n];
                        }
                        double out = sum + d[e] * uv;
                        if (everything) {
                            double g = z[row * ldz + channels + e];
                            out *= g / (1 + Math.exp(-g));
                            out += y0[row * ldy + e];
                        }
                        y[row * ldy + e] = (float) out;
                    }
                    for (int n = 0; n < states; n++) if (everything) stateOut[(b * channels + e) * states + n] = (float) h[n];
                    for (int w = 0; w < KERNEL - 1; w++) {            // the last K−1 conv inputs, reaching into the old window
                        int src = tokens - (KERNEL - 1) + w;
                        windowOut[(b * (KERNEL - 1) + w) * channels + e] = src >= 0 ? x[(b * tokens + src) * ldx + e]
                                : window[(b * (KERNEL - 1) + KERNEL - 1 + src) * channels + e];
                    }
                }
            }
            return new Result(y, stateOut, delta, windowOut);
        }
    }
}
