package org.mambalens.engine.model;

import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.CudaException;
import org.mambalens.engine.cuda.Gpu;

import java.util.concurrent.atomic.AtomicBoolean;

/** Where a model runs: {@code cpu}, {@code cuda} (fails when it cannot), or {@code auto} (CUDA when it can, else the CPU). */
public enum Device {
    CPU, CUDA, AUTO;

    private static final AtomicBoolean FELL_BACK = new AtomicBoolean();

    /**
     * The GPU to load a model of {@code family} onto, or null
     * for the CPU. {@code cuda} refuses a family without a CUDA implementation and a machine without a usable
     * device, in one line; {@code auto} falls back to the CPU and says so once per process, on standard error.
     * BF16 GEMMs exist only on the GPU: {@code cpu} refuses them, and {@code auto}'s fall-back says that it
     * computes in F32.
     */
    Gpu open(ModelFamily family, Precision precision) {
        boolean onGpu = family.onGpu();
        String models = "\"" + family.modelType() + "\" models";
        String inF32 = precision == Precision.F32 ? "" : " in F32";
        return switch (this) {
            case CPU -> {
                if (precision != Precision.F32) {
                    throw new IllegalArgumentException("--precision " + precision.name().toLowerCase(java.util.Locale.ROOT)
                            + " applies to the GPU's GEMMs; the CPU engine computes in F32 (use --device cuda, or --precision f32)");
                }
                yield null;
            }
            case CUDA -> {
                if (!onGpu) {
                    throw new IllegalArgumentException("--device cuda: " + models + " have no CUDA implementation yet (CUDA: "
                            + Families.names(ModelFamily::onGpu) + "); use --device cpu");
                }
                try {
                    yield Gpu.open();
                } catch (CudaException e) {          // no driver, no device, no cuBLAS: the machine's, not ours
                    throw new IllegalArgumentException("--device cuda: " + e.getMessage() + " (use --device cpu or auto)", e);
                }
            }
            case AUTO -> {
                if (!onGpu) {
                    fallBack(models + " have no CUDA implementation yet", inF32);
                    yield null;
                }
                try {
                    yield Gpu.open();
                } catch (CudaException e) {
                    fallBack(e.getMessage(), inF32);
                    yield null;
                }
            }
        };
    }

    private static void fallBack(String why, String inF32) {
        if (FELL_BACK.compareAndSet(false, true)) System.err.println("mambalens: --device auto: " + why + "; running on the CPU" + inF32);
    }
}
