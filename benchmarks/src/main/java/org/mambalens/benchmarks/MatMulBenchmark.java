package org.mambalens.benchmarks;

import org.mambalens.engine.io.DType;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * SGEMM Y[rows, out] = X[rows, in]·Wᵀ at mamba-130m's prefill shapes (in_proj: 512 × 768 → 3072),
 * and the decode matvec (rows = 1). GFLOP/s = 2·rows·in·out / time.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class MatMulBenchmark {
    @Param({"512"})
    int rows;
    @Param({"768"})
    int in;
    @Param({"3072"})
    int out;
    @Param({"F32", "BF16"})
    String dtype;

    Tensor w;
    float[] x, y;
    Arena arena;

    @Setup
    public void setup() {
        DType type = DType.valueOf(dtype);
        arena = Arena.ofShared();
        MemorySegment seg = arena.allocate((long) out * in * type.bytes, 64);
        Random r = new Random(1);
        for (long i = 0; i < (long) out * in; i++) {
            float v = (float) r.nextGaussian();
            if (type == DType.F32) seg.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
            else seg.setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToIntBits(v) >>> 16));
        }
        w = new Tensor("w", type, new long[]{out, in}, seg);
        x = new float[rows * in];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        y = new float[rows * out];
    }

    @Benchmark
    public float[] gemm() {
        MatMul.matmul(y, 0, out, x, 0, in, rows, w, null);
        return y;
    }

    @Benchmark
    public float[] matvec() {
        MatMul.matvec(y, 0, x, 0, w, null);
        return y;
    }
}
