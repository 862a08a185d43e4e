package org.mambalens.engine.cuda;

import org.junit.jupiter.api.Assumptions;

import static org.assertj.core.api.Assertions.fail;

/**
 * The GPU tests' gate: where no CUDA device can be opened they are skipped, with the reason printed and
 * reported; under -Dmambalens.cuda.required=true (scripts/device-cuda.sh on the GPU machine) they fail instead.
 */
public final class GpuRequired {
    private GpuRequired() {
    }

    public static void check() {
        String reason = Gpu.unavailableReason();
        if (reason == null) return;
        if (Boolean.getBoolean("mambalens.cuda.required")) fail("a GPU is required here (-Dmambalens.cuda.required) but: " + reason);
        System.err.println("GPU tests skipped: " + reason);
        Assumptions.abort("no GPU: " + reason);
    }
}
