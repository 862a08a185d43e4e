package org.mambalens.cli;

import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "forward", mixinStandardHelpOptions = true,
        description = "Run a language model over token ids and write the logits of every position as float32 NPY [L, vocab].")
final class ForwardCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    @Mixin
    ModelOption model;

    @Mixin
    TokenIds.Required tokenIds;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Output .npy file (float32 [L, vocab]).")
    Path out;

    @Override
    public Integer call() {
        int[] ids = tokenIds.parse();
        try (LanguageModel lm = Models.loadLanguageModel(model.resolve(), device.device, device.precision)) {
            float[] logits = lm.forward(ids, null);
            Npy.writeFloat32(out, logits, ids.length, lm.vocabSize());
            System.err.printf("wrote %s: float32 [%d, %d]%n", out, ids.length, lm.vocabSize());
        }
        return 0;
    }
}
