package org.mambalens.cli;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.weights.Convert;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "convert", mixinStandardHelpOptions = true,
        description = {"Convert a PyTorch .pth/.pt checkpoint (torch.save zip) to model.safetensors, without Python and "
                + "without running its pickle; also writes config.json when the key names identify the model (Vision Mamba).",
                "A state dict nested under \"model\" or \"state_dict\" is taken from there."})
final class ConvertCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "IN.pth")
    Path in;

    @Parameters(index = "1", paramLabel = "OUT_DIR")
    Path out;

    @Option(names = "--force", description = "Replace model.safetensors and config.json in OUT_DIR when they exist.")
    boolean force;

    @Override
    public Integer call() {
        for (String name : new String[]{Checkpoint.SINGLE, "config.json"}) {
            Path existing = out.resolve(name);
            if (Files.exists(existing) && !force) throw new IllegalArgumentException(existing + " exists; give --force to replace it");
        }
        Convert.Result r = Convert.pthToSafetensors(in, out);
        System.out.printf("wrote %s: %d tensors, %,d parameters%n", r.weights(), r.tensors(), r.parameters());
        r.config().ifPresent(c -> System.out.println("wrote " + c + " (inferred from the key names)"));
        return 0;
    }
}
