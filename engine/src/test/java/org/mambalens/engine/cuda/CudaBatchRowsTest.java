package org.mambalens.engine.cuda;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.tensor.Tensor;

import java.util.Random;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * A batch of decode rows gets from each kernel the bits that one row gets alone: the batched kernels (gemm_rows from
 * 16 rows; ssm_step_scan with 4 channels a warp and ssm_step_channels) against the single-row launch of the same
 * product, row by row, at batch sizes that leave partial tiles. Batched generation rests on this (BatchGenerationTest
 * checks it end to end with a few prompts, below the sizes where these kernels take over).
 */
class CudaBatchRowsTest {
    @BeforeEach
    void gpu() {
        GpuRequired.check();
    }

    @ParameterizedTest
    @CsvSource({"F32, 768, 64", "F32, 1540, 37", "F32, 260, 16", "F32, 3072, 40", "BF16, 768, 64", "BF16, 2040, 33", "BF16, 264, 17", "BF16, 2304, 20"})
    void aBatchedLinearGivesEachRowItsBitsAlone(Precision precision, int in, int rows) {
        int out = 300, ldIn = in + 4, ldOut = 301;                  // a partial feature tile; strided rows
        Random r = new Random(rows);
        float[] w = Fixtures.gaussian(r, out * in, 1), x = Fixtures.gaussian(r, rows * ldIn, 3), y0 = Fixtures.gaussian(r, rows * ldOut, 1), b = Fixtures.gaussian(r, out, 1);
        try (Gpu gpu = Gpu.open(); DeviceArena arena = gpu.newArena()) {
            CudaKernels kernels = new CudaKernels(gpu, arena);
            DeviceMatrix weight = DeviceMatrix.upload(arena, Tensor.of("w", w, out, in), out, in, precision);
            DeviceBuffer input = arena.upload(x), together = arena.floats((long) rows * ldOut), alone = arena.floats((long) rows * ldOut),
                    bias = arena.upload(b);
            for (boolean accumulate : new boolean[]{false, true}) {
                together.upload(y0);
                alone.upload(y0);
                kernels.linear(together.address(), ldOut, input.address(), ldIn, rows, weight, bias.address(), 1f, accumulate);
                for (int t = 0; t < rows; t++) {
                    kernels.linear(alone.at((long) t * ldOut), ldOut, input.at((long) t * ldIn), ldIn, 1, weight, bias.address(), 1f, accumulate);
                }
                assertSameBits("accumulate " + accumulate, together.download(0, rows * ldOut), alone.download(0, rows * ldOut));
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"F32, 64", "F32, 19", "BF16, 64"})
    void aBatchedNormAndLinearGivesEachRowItsBitsAlone(Precision precision, int rows) {
        int in = 768, out = 3072;
        Random r = new Random(5);
        float[] w = Fixtures.gaussian(r, out * in, 1), x = Fixtures.gaussian(r, rows * in, 2), norm = Fixtures.gaussian(r, in, 1);
        try (Gpu gpu = Gpu.open(); DeviceArena arena = gpu.newArena()) {
            CudaKernels kernels = new CudaKernels(gpu, arena);
            DeviceMatrix weight = DeviceMatrix.upload(arena, Tensor.of("w", w, out, in), out, in, precision);
            DeviceBuffer input = arena.upload(x), normW = arena.upload(norm), normed = arena.floats((long) rows * in),
                    together = arena.floats((long) rows * out), alone = arena.floats((long) rows * out);
            kernels.rmsnormLinear(together.address(), out, input.address(), normW.address(), 1e-5f, normed.address(), rows, weight, 0);
            for (int t = 0; t < rows; t++) {
                kernels.rmsnormLinear(alone.at((long) t * out), out, input.at((long) t * in), normW.address(), 1e-5f, normed.address(), 1, weight, 0);
            }
            assertSameBits("outputs", together.download(0, rows * out), alone.download(0, rows * out));
        }
    }

    /**
     * Mamba-2's gated norm and out_proj: one row goes through a gemv that normalises as it reads, a batch of 64 through
     * gated_rmsnorm and gemm_rows, 3 rows through the gemv with 3 rows staged. Each row gets the same bits, added into the
     * same residual; z's rows are wider than y's and not 16-byte aligned (in_proj's output in the model).
     */
    @ParameterizedTest
    @CsvSource({"F32, 64", "F32, 3", "BF16, 64"})
    void aBatchedGatedNormAndLinearGivesEachRowItsBitsAlone(Precision precision, int rows) {
        int in = 1536, out = 768, ldz = 3 * in + 37;
        Random r = new Random(7);
        float[] w = Fixtures.gaussian(r, out * in, 1), y = Fixtures.gaussian(r, rows * in, 2), z = Fixtures.gaussian(r, rows * ldz, 2),
                norm = Fixtures.gaussian(r, in, 1), residual = Fixtures.gaussian(r, rows * out, 1), b = Fixtures.gaussian(r, out, 1);
        try (Gpu gpu = Gpu.open(); DeviceArena arena = gpu.newArena()) {
            CudaKernels kernels = new CudaKernels(gpu, arena);
            DeviceMatrix weight = DeviceMatrix.upload(arena, Tensor.of("w", w, out, in), out, in, precision);
            DeviceBuffer input = arena.upload(y), gate = arena.upload(z), normW = arena.upload(norm), bias = arena.upload(b),
                    normed = arena.floats((long) rows * in), together = arena.upload(residual), alone = arena.upload(residual);
            kernels.gatedRmsnormLinearAdd(together.address(), out, input.address(), in, gate.at(1), ldz, normW.address(), 1e-5f,
                    normed.address(), rows, weight, bias.address());
            for (int t = 0; t < rows; t++) {
                kernels.gatedRmsnormLinearAdd(alone.at((long) t * out), out, input.at((long) t * in), in, gate.at(1L + (long) t * ldz), ldz,
                        normW.address(), 1e-5f, normed.address(), 1, weight, bias.address());
            }
            assertSameBits("gated norm and out_proj", together.download(0, rows * out), alone.download(0, rows * out));
        }
    }

    @ParameterizedTest
    @CsvSource({"F32, 64, 16, 48, 4, 4", "F32, 21, 16, 48, 4, 4", "BF16, 64, 16, 48, 4, 4", "F32, 40, 64, 40, 3, 4", "F32, 64, 16, 48, 4, 1",
                "F32, 64, 16, 48, 4, 0", "F32, 21, 16, 48, 4, 0", "F32, 9, 16, 48, 4, 0", "BF16, 64, 16, 48, 4, 0", "F32, 40, 16, 64, 3, 0", "F32, 33, 12, 20, 4, 0",
                "F32, 17, 10, 12, 2, 0", "F32, 12, 16, 48, 4, 0"})
    void aBatchedSsmStepGivesEachSequenceItsBitsAlone(Precision precision, int rows, int states, int rank, int kernel, int channelsPerWarp) {
        int E = 1536 - 72, P = rank + 2 * states, ldxz = 2 * E + 8; // a partial slice and block of channels; strided rows
        Random r = new Random(rows + states);
        float[] xz = Fixtures.gaussian(r, rows * ldxz, 1), window = Fixtures.gaussian(r, rows * (kernel - 1) * E, 1), state = Fixtures.gaussian(r, rows * E * states, 1);
        try (Gpu gpu = Gpu.open(); DeviceArena arena = gpu.newArena()) {
            CudaKernels kernels = new CudaKernels(gpu, arena);
            DeviceMatrix xProj = DeviceMatrix.upload(arena, Tensor.of("x_proj", Fixtures.gaussian(r, P * E, 0.05f), P, E), P, E, precision),
                    dtProj = DeviceMatrix.upload(arena, Tensor.of("dt_proj", Fixtures.gaussian(r, E * rank, 0.2f), E, rank), E, rank, precision);
            DeviceBuffer taps = arena.upload(Fixtures.gaussian(r, kernel * E, 0.5f)), convBias = arena.upload(Fixtures.gaussian(r, E, 0.5f)),
                    dtBias = arena.upload(Fixtures.gaussian(r, E, 0.5f)), d = arena.upload(Fixtures.gaussian(r, E, 1)), xzBuffer = arena.upload(xz),
                    partial = arena.floats(CudaKernels.ssmStepScratch(rows, E, states, rank));
            float[] a = Fixtures.gaussian(r, E * states, 1);
            for (int i = 0; i < a.length; i++) a[i] = -Math.abs(a[i]);
            DeviceBuffer aBuffer = kernels.ssmStepWeights(arena, a, dtProj, E, states, rank);
            DeviceBuffer[] y = new DeviceBuffer[2], windows = new DeviceBuffer[2], stateBuffers = new DeviceBuffer[2];
            for (int run = 0; run < 2; run++) {                      // 0: all rows together, 1: each row alone
                y[run] = arena.floats((long) rows * E);
                y[run].fill(Float.NaN);
                windows[run] = arena.upload(window);
                stateBuffers[run] = arena.upload(state);
            }
            kernels.ssmStep(y[0].address(), E, xzBuffer.address(), ldxz, windows[0].address(), stateBuffers[0].address(), partial.address(),
                    taps.address(), convBias.address(), xProj, dtProj, dtBias.address(), aBuffer.address(), d.address(), rows, E, states, rank, kernel,
                    channelsPerWarp);
            for (int t = 0; t < rows; t++) {
                kernels.ssmStep(y[1].at((long) t * E), E, xzBuffer.at((long) t * ldxz), ldxz, windows[1].at((long) t * (kernel - 1) * E),
                        stateBuffers[1].at((long) t * E * states), partial.address(), taps.address(), convBias.address(), xProj, dtProj,
                        dtBias.address(), aBuffer.address(), d.address(), 1, E, states, rank, kernel, 1);
            }
            float[] written = y[0].download(0, rows * E);
            assertThat(IntStream.range(0, written.length).filter(i -> Float.isNaN(written[i]))).as("outputs left unwritten").isEmpty();
            assertSameBits("y", y[0].download(0, rows * E), y[1].download(0, rows * E));
            assertSameBits("conv window", windows[0].download(0, window.length), windows[1].download(0, window.length));
            assertSameBits("state", stateBuffers[0].download(0, state.length), stateBuffers[1].download(0, state.length));
        }
    }

    /** Equal bits everywhere; else the count of differences and the first (AssertJ's diff of a million values takes hours). */
    static void assertSameBits(String what, float[] together, float[] alone) {
        assertThat(together).as(what).hasSameSizeAs(alone);
        int first = -1, differ = 0;
        for (int i = 0; i < alone.length; i++) {
            if (Float.floatToRawIntBits(together[i]) != Float.floatToRawIntBits(alone[i])) {
                if (first < 0) first = i;
                differ++;
            }
        }
        if (differ > 0) {
            fail("%s: %d of %d values differ, the first at %d: %s together, %s alone", what, differ, alone.length, first, together[first], alone[first]);
        }
    }
}
