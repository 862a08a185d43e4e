package org.mambalens.cli;

import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.model.Device;
import picocli.CommandLine.Option;

/** {@code --device cpu|cuda|auto} and {@code --precision f32|bf16} for every command that runs a model. */
final class DeviceOption {
    @Option(names = "--device", paramLabel = "cpu|cuda|auto", defaultValue = "cpu",
            description = "Where the model runs: cpu (default), cuda (an NVIDIA GPU through the CUDA driver; fails without one), "
                    + "or auto (cuda when a GPU and a CUDA implementation of the model exist, else cpu, said once).")
    Device device;

    @Option(names = "--precision", paramLabel = "f32|bf16", defaultValue = "f32",
            description = "The GPU's weight GEMMs: f32 (default; matches the reference to 1e-4) or bf16 (bfloat16 weights and GEMM "
                    + "inputs, F32 accumulation through cublasGemmEx: half the weight memory, results within BF16 rounding of f32). "
                    + "Scan, conv, norms and attention stay F32. The CPU computes in F32 only.")
    Precision precision;
}
