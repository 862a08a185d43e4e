package org.mambalens.cli;

import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** {@code --model DIR}, defaulting to the demo model bundled with the repository. */
final class ModelOption {
    static final String BUNDLED = "models/mamba-fortunes";

    @Option(names = "--model", paramLabel = "DIR",
            description = "Checkpoint directory (config.json + safetensors). Default: the bundled " + BUNDLED + ".")
    Path model;

    Path resolve() {
        if (model != null) return model;
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        Path bundled = home.resolve(BUNDLED);
        if (!Files.isDirectory(bundled)) throw new IllegalArgumentException("--model not given and the bundled model " + bundled + " is missing");
        return bundled;
    }
}
