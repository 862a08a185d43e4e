package org.mambalens.cli;

import org.mambalens.engine.io.MemoryBudget;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "forward", mixinStandardHelpOptions = true,
        description = "Run a language model over token ids and write the logits of every position as float32 NPY [L, vocab] "
                + "([L, labels] for a text classifier: its scores at every position).")
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
        Path dir = model.resolve();
        try (LanguageModel lm = Models.loadLanguageModel(dir, device.device, device.precision)) {
            // The logits, and their bytes as they are written.
            MemoryBudget.require(MemoryBudget.product(2, ids.length, lm.outputs(), Float.BYTES),
                    "--token-ids (" + ids.length + " tokens × " + lm.outputs() + " logits)");
            float[] logits = Finite.outputs(lm.forward(ids, null), dir);
            Npy.writeFloat32(out, logits, ids.length, lm.outputs());
            System.err.printf("wrote %s: float32 [%d, %d]%n", out, ids.length, lm.outputs());
        }
        return 0;
    }
}
