package org.mambalens.cli;

import org.mambalens.engine.model.Device;
import picocli.CommandLine.Option;

/** {@code --device cpu|cuda|auto} for every command that runs a model. */
final class DeviceOption {
    @Option(names = "--device", paramLabel = "cpu|cuda|auto", defaultValue = "cpu",
            description = "Where the model runs: cpu (default), cuda (an NVIDIA GPU through the CUDA driver; fails without one), "
                    + "or auto (cuda when a GPU and a CUDA implementation of the model exist, else cpu, said once).")
    Device device;
}
