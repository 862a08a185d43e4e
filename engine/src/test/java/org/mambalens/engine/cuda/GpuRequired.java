package org.mambalens.engine.cuda;

import org.junit.jupiter.api.Assumptions;

import static org.assertj.core.api.Assertions.fail;

/**
 * The GPU tests' gate, called before each test (so that every one is reported as skipped, not only its class):
 * where no CUDA device can be opened they are skipped, with the reason printed and
 * reported; under -Dmambalens.cuda.required=true (scripts/device-cuda.sh on the GPU machine) they fail instead.
 */
public final class GpuRequired {
    private static String reason;      // why no GPU can be used here, null when one can; probed once
    private static boolean probed;

    private GpuRequired() {
    }

    public static synchronized void check() {
        if (!probed) {
            reason = Gpu.unavailableReason();
            probed = true;
        }
        if (reason == null) return;
        if (Boolean.getBoolean("mambalens.cuda.required")) fail("a GPU is required here (-Dmambalens.cuda.required) but: " + reason);
        System.err.println("GPU test skipped: " + reason);
        Assumptions.abort("no GPU: " + reason);
    }

    /** A CUDA backend on the test GPU (F32), after {@link #check}. */
    public static org.mambalens.engine.backend.Backend backend() {
        check();
        return new CudaBackend(Gpu.open(), org.mambalens.engine.backend.Precision.F32);
    }
}
