package org.mambalens.cli;

import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "gradient", mixinStandardHelpOptions = true,
        description = {"Write the gradient of one logit, logits[P, T], with respect to the input embeddings exactly as transformers takes "
                + "them (model(inputs_embeds=...): Griffin's before its √D normaliser, RWKV's before blocks.0.pre_ln) as float32 NPY [L, D].",
                "For the language-model families with a reverse pass; the reverse pass runs on the CPU (--device moves the forward)."})
final class GradientCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    @Mixin
    ModelOption model;

    @Mixin
    TokenIds.Required tokenIds;

    @Option(names = "--position", required = true, paramLabel = "P", description = "The position whose logit is differentiated, 0 ≤ P < L.")
    int position;

    @Option(names = "--target", required = true, paramLabel = "T", description = "The token whose logit is differentiated, 0 ≤ T < vocab.")
    int target;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Output .npy file (float32 [L, D]); written only on success.")
    Path out;

    @Override
    public Integer call() {
        int[] ids = tokenIds.parse();
        if (position < 0 || position >= ids.length) throw new IllegalArgumentException("--position " + position + " is outside the " + ids.length + " tokens [0, " + ids.length + ")");
        Path dir = model.resolve();
        ModelFamily family = Families.forDirectory(dir);
        if (family.kind() != ModelFamily.Kind.LANGUAGE || !family.has(ModelFamily.Capability.REVERSE_PASS)) {
            throw new IllegalArgumentException("model_type \"" + family.modelType() + "\" (" + family.name() + ") has no "
                    + (family.kind() != ModelFamily.Kind.LANGUAGE ? "language-model logits" : "reverse pass yet") + "; gradient needs a language model with a reverse pass");
        }
        try (LanguageModel lm = Models.loadLanguageModel(dir, device.device, device.precision)) {
            if (target < 0 || target >= lm.outputs()) throw new IllegalArgumentException("--target " + target + " is outside the vocabulary [0, " + lm.outputs() + ")");
            float[] gradient = lm.inputGradient(ids, position, target);
            int width = gradient.length / ids.length;
            Npy.writeFloat32(out, gradient, ids.length, width);
            System.err.printf("wrote %s: float32 [%d, %d], ∂logits[%d, %d]/∂inputs_embeds%n", out, ids.length, width, position, target);
        }
        return 0;
    }
}
