package org.mambalens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;

@Command(name = "classify", mixinStandardHelpOptions = true,
        description = "Classify preprocessed images with an image classifier (model_type \"vit\"); prints the top classes.")
final class ClassifyCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Checkpoint directory (config.json + safetensors).")
    Path model;

    @Option(names = "--pixels", required = true, paramLabel = "FILE.npy",
            description = "float32 NPY [N, C, H, W], already preprocessed (resized and normalised as the model expects).")
    Path pixels;

    @Option(names = "--top", paramLabel = "K", defaultValue = "5", description = "Classes to print per image (default ${DEFAULT-VALUE}).")
    int top;

    @Option(names = "--out", paramLabel = "FILE", description = "Also write the logits as float32 NPY [N, classes].")
    Path out;

    @Override
    public Integer call() {
        Npy.Array input = Npy.readFloat32(pixels);
        try (ImageClassifier classifier = Models.loadImageClassifier(model)) {
            int c = classifier.channels(), s = classifier.imageSize(), k = classifier.numClasses();
            if (input.shape().length != 4 || input.dim(1) != c || input.dim(2) != s || input.dim(3) != s) {
                throw new IllegalArgumentException("--pixels " + pixels + " has shape " + Arrays.toString(input.shape())
                        + ", the model takes [N, " + c + ", " + s + ", " + s + "]");
            }
            int n = input.dim(0), size = c * s * s;
            JsonNode labels = ConfigFile.in(model).json().path("id2label");
            float[] logits = new float[n * k];
            for (int i = 0; i < n; i++) {
                float[] row = classifier.classify(Arrays.copyOfRange(input.data(), i * size, (i + 1) * size), null);
                System.arraycopy(row, 0, logits, i * k, k);
                double max = IntStream.range(0, k).mapToDouble(j -> row[j]).max().orElse(0), sum = 0;
                for (float v : row) sum += Math.exp(v - max);
                double total = sum;
                StringBuilder line = new StringBuilder("image " + i + ":");
                IntStream.range(0, k).boxed().sorted(Comparator.comparingDouble(j -> -row[j])).limit(Math.max(1, top)).forEach(j ->
                        line.append(String.format("  %s %.4f", labels.path(String.valueOf(j)).asText(String.valueOf(j)), Math.exp(row[j] - max) / total)));
                System.out.println(line);
            }
            if (out != null) Npy.writeFloat32(out, logits, n, k);
        }
        return 0;
    }
}
