package org.mambalens.benchmarks;

import org.mambalens.engine.kernels.SelectiveScan;
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

import java.util.Random;
import java.util.concurrent.TimeUnit;

/** The gated selective scan of one mamba-130m layer: L tokens, E = 1536 channels, N = 16. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class ScanBenchmark {
    @Param({"512"})
    int length;
    static final int E = 1536, N = 16, R = 48;

    float[] y, u, delta, dbc, xz, aT, d, h;

    @Setup
    public void setup() {
        Random r = new Random(2);
        y = new float[length * E];
        u = gaussian(r, length * E);
        delta = new float[length * E];
        for (int i = 0; i < delta.length; i++) delta[i] = 0.001f + 0.1f * r.nextFloat();
        dbc = gaussian(r, length * (R + 2 * N));
        xz = gaussian(r, length * 2 * E);
        aT = new float[N * E];
        for (int n = 0; n < N; n++) for (int c = 0; c < E; c++) aT[n * E + c] = -(n + 1);
        d = gaussian(r, E);
        h = new float[N * E];
    }

    static float[] gaussian(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    @Benchmark
    public float[] scan() {
        java.util.Arrays.fill(h, 0f);
        SelectiveScan.scan(y, new SelectiveScan.Inputs(u, delta, dbc, R + 2 * N, R, R + N, xz, E, 2 * E), aT, d, h, length, E, N);
        return y;
    }
}
