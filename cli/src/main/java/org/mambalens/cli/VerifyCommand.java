package org.mambalens.cli;

import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.io.ReferenceDump;
import org.mambalens.engine.verify.Verification;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "verify", mixinStandardHelpOptions = true,
        description = {"Run a checkpoint on a reference dump's input (weights-tools/reference/dump_reference.py) and compare every "
                + "hidden state and the logits with the reference's, in order: one row per tensor (max absolute error, and that error "
                + "relative to the reference tensor's largest magnitude), the first one past the tolerance named with its layer.",
                "Exit status 0 when every tensor is within the tolerance, 1 otherwise."})
final class VerifyCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Checkpoint directory (config.json + safetensors).")
    Path model;

    @Option(names = "--reference", required = true, paramLabel = "DUMP", description = "The reference dump (.safetensors) to compare with.")
    Path reference;

    @Option(names = "--tolerance", defaultValue = "1e-4", paramLabel = "T",
            description = "Largest relative error allowed per tensor (default ${DEFAULT-VALUE}).")
    double tolerance;

    @Option(names = "--out", paramLabel = "FILE", description = "Also write the report as JSON.")
    Path out;

    @Override
    public Integer call() {
        Verification.Report report = Verification.run(model, ReferenceDump.read(reference), device.device, device.precision, tolerance);
        report.lines().forEach(System.out::println);
        if (out != null) AtomicWrite.write(out, o -> o.write(report.toJson().getBytes(StandardCharsets.UTF_8)));
        return report.ok() ? 0 : 1;
    }
}
