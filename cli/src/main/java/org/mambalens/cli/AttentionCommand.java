package org.mambalens.cli;

import org.mambalens.engine.io.MemoryBudget;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionMaps;
import org.mambalens.xai.data.ImagePreprocessor;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "attention", mixinStandardHelpOptions = true,
        description = {"Write one layer's attention as float32 NPY: [E, L, L] per channel for Mamba models (hidden attention, "
                + "or the unified form with --unified), [H, L, L] per head for Mamba-2 (with --unified [E, L, L] per channel), [A, L, L] per channel for RWKV, [W, L, L] per channel for Griffin's recurrent layers (RG-LRU α, or with --unified the operator with conv and gate), [H, T, T] softmax probabilities for ViT, GPT-NeoX and Griffin's local-attention layers.",
                "Vision Mamba: both directions combined (α_fwd + flip(α_bwd)) unless --direction says otherwise. Images: the first one."})
final class AttentionCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Checkpoint directory: a language model or an image classifier.")
    Path model;

    static final class Input {
        @Option(names = "--token-ids", paramLabel = "IDS", description = "Comma-separated token ids (language models).")
        String tokenIds;

        @Option(names = "--pixels", paramLabel = "FILE.npy", description = "float32 NPY [N, C, H, W], preprocessed; the first image is used.")
        Path pixels;

        @Option(names = "--image", paramLabel = "FILE", description = "An image file, preprocessed as the model's preprocessor_config.json says.")
        Path image;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--layer", required = true, paramLabel = "K", converter = Counts.NonNegative.class, description = "Layer index, from 0.")
    int layer;

    @Option(names = "--unified", description = "Mamba: the unified implicit attention (conv, gate and D folded in) instead of α.")
    boolean unified;

    @Option(names = "--direction", paramLabel = "D", defaultValue = "both", description = "Vision Mamba: forward, backward or both (default).")
    String direction;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Output .npy file.")
    Path out;

    @Override
    public Integer call() {
        AttentionMaps.Direction dir = switch (direction.toLowerCase()) {
            case "forward" -> AttentionMaps.Direction.FORWARD;
            case "backward" -> AttentionMaps.Direction.BACKWARD;
            case "both" -> AttentionMaps.Direction.BOTH;
            default -> throw new IllegalArgumentException("--direction must be forward, backward or both, not " + direction);
        };
        TraceRecorder trace = TraceRecorder.layers(Set.of(layer));
        if (Families.forDirectory(model).kind() == ModelFamily.Kind.LANGUAGE) {
            if (input.tokenIds == null) throw new IllegalArgumentException("--token-ids is needed for a language model");
            try (LanguageModel lm = Models.loadLanguageModel(model, device.device, device.precision)) {
                checkLayer(lm.layers());
                lm.forward(TokenIds.parse(input.tokenIds), trace);
            }
        } else {
            if (input.tokenIds != null) throw new IllegalArgumentException("--token-ids is for language models; give --pixels or --image");
            try (ImageClassifier classifier = Models.loadImageClassifier(model, device.device, device.precision)) {
                checkLayer(classifier.layers());
                int size = classifier.channels() * classifier.imageSize() * classifier.imageSize();
                float[] pixels = input.image != null ? ImagePreprocessor.of(model, classifier).fromFile(input.image)
                        : firstImage(Npy.readFloat32(input.pixels), size);
                classifier.classify(pixels, trace);
            }
        }
        AttentionMaps.Units units = AttentionMaps.units(trace.layer(layer), unified, dir);
        String shape = String.format("float32 [%d, %d, %d] (%ss, queries, keys)", units.count(), units.tokens(), units.tokens(), units.unit());
        long bytes = MemoryBudget.product(units.count(), units.tokens(), units.tokens(), Float.BYTES);
        checkDiskSpace(bytes);
        System.err.printf("writing %s: %s, %s%n", out, shape, MemoryBudget.size(bytes));
        units.write(out, System.err);
        System.err.printf("wrote %s: %s%n", out, shape);
        return 0;
    }

    /** The matrices grow with the square of the tokens: a long text is refused before hours of writing fill the disk. */
    private void checkDiskSpace(long bytes) {
        Path dir = out.toAbsolutePath().getParent();
        while (dir != null && !Files.exists(dir)) dir = dir.getParent();
        try {
            long usable = dir == null ? Long.MAX_VALUE : Files.getFileStore(dir).getUsableSpace();
            if (bytes < 0 || bytes > usable) {
                throw new IllegalArgumentException("--out " + out + ": the attention matrices take " + (bytes < 0 ? "more than 2^63 bytes" : MemoryBudget.size(bytes))
                        + ", the disk has " + MemoryBudget.size(usable) + " free; give fewer tokens");
            }
        } catch (IOException e) {
            // The free space is unknown here (some file systems do not say): the write itself reports a full disk.
        }
    }

    private void checkLayer(int layers) {
        if (layer < 0 || layer >= layers) throw new IllegalArgumentException("--layer " + layer + " is outside [0, " + layers + ")");
    }

    private float[] firstImage(Npy.Array a, int size) {
        if (a.shape().length != 4 || a.data().length / Math.max(1, a.dim(0)) != size) {
            throw new IllegalArgumentException("--pixels " + input.pixels + " has shape " + Arrays.toString(a.shape()) + ", not [N, C, H, W] for this model");
        }
        return Arrays.copyOf(a.data(), size);
    }
}
