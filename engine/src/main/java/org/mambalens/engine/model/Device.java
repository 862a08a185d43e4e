package org.mambalens.engine.model;

import org.mambalens.engine.cuda.CudaException;
import org.mambalens.engine.cuda.Gpu;

import java.util.concurrent.atomic.AtomicBoolean;

/** Where a model runs: {@code cpu}, {@code cuda} (fails when it cannot), or {@code auto} (CUDA when it can, else the CPU). */
public enum Device {
    CPU, CUDA, AUTO;

    private static final AtomicBoolean FELL_BACK = new AtomicBoolean();

    /**
     * The GPU to load a model of {@code family} onto, or null for the CPU. {@code cuda} refuses a family
     * without a CUDA implementation and a machine without a usable device, in one line; {@code auto} falls
     * back to the CPU and says so once per process, on standard error.
     */
    Gpu open(String family, java.util.Set<String> familiesOnGpu) {
        boolean familyOnGpu = familiesOnGpu.contains(family);
        return switch (this) {
            case CPU -> null;
            case CUDA -> {
                if (!familyOnGpu) {
                    throw new IllegalArgumentException("--device cuda: \"" + family + "\" models have no CUDA implementation yet (CUDA: "
                            + String.join(", ", familiesOnGpu) + "); use --device cpu");
                }
                yield Gpu.open();
            }
            case AUTO -> {
                if (!familyOnGpu) {
                    fallBack("\"" + family + "\" models have no CUDA implementation yet");
                    yield null;
                }
                try {
                    yield Gpu.open();
                } catch (CudaException e) {
                    fallBack(e.getMessage());
                    yield null;
                }
            }
        };
    }

    private static void fallBack(String why) {
        if (FELL_BACK.compareAndSet(false, true)) System.err.println("mambalens: --device auto: " + why + "; running on the CPU");
    }
}
