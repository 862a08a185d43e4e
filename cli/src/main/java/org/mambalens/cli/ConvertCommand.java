package org.mambalens.cli;

import org.mambalens.weights.Convert;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

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

    @Override
    public Integer call() {
        Convert.Result r = Convert.pthToSafetensors(in, out);
        System.out.printf("wrote %s: %d tensors, %,d parameters%n", r.weights(), r.tensors(), r.parameters());
        r.config().ifPresent(c -> System.out.println("wrote " + c + " (inferred from the key names)"));
        return 0;
    }
}
