package org.mambalens.engine.model;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.cuda.CudaException;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.model.mamba.MambaModel;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** --device: cuda refuses what it cannot run in one line; auto falls back to the CPU; both ways on any machine. */
class DeviceTest {
    static final Path MAMBA = Fixtures.golden().resolve("mamba/tied_f32");

    @Test
    void cudaRunsOnAGpuAndFailsInOneLineWithout() {
        String noGpu = Gpu.unavailableReason();
        if (noGpu == null) {
            try (LanguageModel lm = Models.loadLanguageModel(MAMBA, Device.CUDA, Precision.F32)) {
                assertThat(lm.onGpu()).isTrue();
            }
        } else {
            assertThat(noGpu).containsAnyOf("no CUDA", "NVRTC").doesNotContain("\n");     // no driver or device, or no compiler
            assertThatThrownBy(() -> Models.loadLanguageModel(MAMBA, Device.CUDA, Precision.F32)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("--device cuda: " + noGpu + " (use --device cpu or auto)").hasCauseInstanceOf(CudaException.class);
            try (LanguageModel lm = Models.loadLanguageModel(MAMBA, Device.AUTO, Precision.F32)) {
                assertThat(lm).isInstanceOf(MambaModel.class);
            }
        }
    }

    /** Device.open itself, with a family made up for the test, so that this holds whichever families have a GPU port. */
    @Test
    void cudaRefusesAFamilyWithoutAGpuImplementation() {
        ModelFamily cpuOnly = new ModelFamily("cpu_only", "CPU-only", new ModelFamily.Loader.Language((dir, backend) -> null), java.util.Set.of());
        assertThatThrownBy(() -> Device.CUDA.open(cpuOnly, Precision.F32))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no CUDA implementation").hasMessageContaining("--device cpu");
        assertThat(Device.AUTO.open(cpuOnly, Precision.F32)).isNull();
    }

    @Test
    void bf16GemmsAreRefusedOnTheCpuInOneLine() {
        assertThatThrownBy(() -> Models.loadLanguageModel(MAMBA, Device.CPU, Precision.BF16)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--precision bf16").hasMessageContaining("CPU").hasMessageNotContaining("\n");
        assertThatThrownBy(() -> Models.loadImageClassifier(Fixtures.golden().resolve("vit/vit_small"), Device.CPU, Precision.BF16))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--precision bf16");
    }
}
