package org.mambalens.xai.attention;

import org.mambalens.engine.cuda.CudaKernels;
import org.mambalens.engine.cuda.DeviceArena;
import org.mambalens.engine.cuda.DeviceBuffer;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.trace.MixerTrace;

import java.lang.foreign.MemorySegment;

/**
 * Layer summaries of Mamba's hidden attention (SPEC §3, §7) on a CUDA GPU: every (i, j) pair summed over
 * the channels in one kernel, the [E, T, T] tensor never built. What {@link AttentionMaps#summary()} gives
 * on the CPU, for models run with --device cuda, where long sequences make the CPU the bound.
 */
public final class HiddenAttentionCuda {
    private static Gpu gpu;

    private HiddenAttentionCuda() {
    }

    /** The device, opened on first use and kept for the life of the process. */
    private static Gpu gpu() {
        if (gpu == null) gpu = Gpu.open();
        gpu.bind();
        return gpu;
    }

    /** The summary of a one-way layer (backward null) or of both directions, α_fwd + flip(α_bwd). */
    public static synchronized AttentionSummary summary(MixerTrace forward, MixerTrace backward) {
        int T = forward.length(), E = forward.channels(), N = forward.stateSize(), blocks = CudaKernels.summaryBlocks(T);
        try (DeviceArena arena = gpu().newArena()) {
            CudaKernels kernels = new CudaKernels(gpu, arena);
            Direction f = Direction.upload(arena, forward), b = backward == null ? null : Direction.upload(arena, backward);
            DeviceBuffer sum = arena.floats((long) T * T), positive = arena.floats((long) T * T);
            DeviceBuffer blockMin = arena.floats((long) T * blocks), blockMax = arena.floats((long) T * blocks);
            kernels.hiddenAttentionSummary(sum.address(), positive.address(), blockMin.address(), blockMax.address(),
                    f.deltaT, f.sumT, f.b, f.c, f.a, b == null ? 0 : b.deltaT, b == null ? 0 : b.sumT, b == null ? 0 : b.b,
                    b == null ? 0 : b.c, b == null ? 0 : b.a, T, E, N);
            float[] mean = sum.download(0, T * T), positiveMean = positive.download(0, T * T);
            for (int k = 0; k < mean.length; k++) {
                mean[k] /= E;
                positiveMean[k] /= E;
            }
            float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
            for (float v : blockMin.download(0, T * blocks)) min = Math.min(min, v);
            for (float v : blockMax.download(0, T * blocks)) max = Math.max(max, v);
            return new AttentionSummary(E, T, mean, positiveMean, min, max);
        }
    }

    /** One direction's inputs on the device: Δ and its running sums channel-major [E, T], B and C [T, N], A [E, N]. */
    private record Direction(long deltaT, long sumT, long b, long c, long a) {
        static Direction upload(DeviceArena arena, MixerTrace t) {
            int T = t.length(), E = t.channels();
            float[] deltaT = new float[E * T];
            double[] sumT = new double[E * T];
            for (int e = 0; e < E; e++) {
                double running = 0;
                for (int i = 0; i < T; i++) {
                    float d = t.delta(i, e);
                    deltaT[e * T + i] = d;
                    running += d;
                    sumT[e * T + i] = running;
                }
            }
            DeviceBuffer sums = arena.floats(2L * E * T);
            sums.upload(MemorySegment.ofArray(sumT), 0);
            return new Direction(arena.upload(deltaT).address(), sums.address(), arena.upload(t.b()).address(), arena.upload(t.c()).address(),
                    arena.upload(t.a()).address());
        }
    }
}
