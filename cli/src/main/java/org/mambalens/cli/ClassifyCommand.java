package org.mambalens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.model.TextClassifier;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.engine.text.Sampler;
import org.mambalens.xai.data.ImageDataset;
import org.mambalens.xai.data.ImagePreprocessor;
import org.mambalens.xai.data.LabelledTexts;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;

@Command(name = "classify", mixinStandardHelpOptions = true,
        description = {"Classify images with an image classifier, or text with a text classifier (architectures",
                "…ForSequenceClassification): prints the top classes.",
                "With --fashion-mnist or --texts, classifies a labelled test set and prints the accuracy."})
final class ClassifyCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    static final String BUNDLED = "models/vim-placed", BUNDLED_TEXT = "models/mamba-wordnet";

    @Option(names = "--model", paramLabel = "DIR", description = "Checkpoint directory. Default: the bundled " + BUNDLED + " (models/vit-placed is the ViT; "
            + "models/vim-fashion and models/vit-fashion the older 28×28 pair); for text, " + BUNDLED_TEXT
            + " (models/gptneox-wordnet is the GPT-NeoX; models/*-fortunes-topics the fortune topic classifiers).")
    Path model;

    static final class Input {
        @Option(names = "--image", paramLabel = "FILE", description = "An image file (PNG, JPEG, BMP, GIF), preprocessed as the model's preprocessor_config.json says.")
        Path image;

        @Option(names = "--pixels", paramLabel = "FILE.npy", description = "float32 NPY [N, C, H, W], already preprocessed.")
        Path pixels;

        @Option(names = "--fashion-mnist", paramLabel = "DIR", arity = "0..1", fallbackValue = ImageData.DEBIAN,
                description = "Classify the test split of the set the model takes — placed Fashion-MNIST for 64×64 models, Fashion-MNIST for 28×28 — "
                        + "made from the Fashion-MNIST files in DIR (default: Debian's dataset-fashion-mnist), and report accuracy.")
        Path fashionMnist;

        @Option(names = "--text", paramLabel = "TEXT", description = "A text, tokenized with the model's tokenizer.json.")
        String text;

        @Option(names = "--token-ids", paramLabel = "IDS", description = "Comma-separated token ids.")
        String tokenIds;

        @Option(names = "--texts", paramLabel = "FILE.jsonl", arity = "0..1", fallbackValue = LabelledTexts.BUNDLED_TEST,
                description = "Labelled texts, one {\"text\", \"label\"} per line (default: the bundled WordNet gloss test split); reports accuracy.")
        Path texts;

        boolean isText() {
            return text != null || tokenIds != null || texts != null;
        }
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--top", paramLabel = "K", defaultValue = "5", description = "Classes to print per image (default ${DEFAULT-VALUE}).")
    int top;

    @Option(names = "--limit", paramLabel = "N", description = "With --fashion-mnist or --texts: the first N only.")
    Integer limit;

    @Option(names = "--out", paramLabel = "FILE", description = "Also write the logits as float32 NPY [N, classes].")
    Path out;

    @Override
    public Integer call() {
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        if (input.isText()) return classifyText(model != null ? model : home.resolve(BUNDLED_TEXT), home);
        Path dir = model != null ? model : home.resolve(BUNDLED);
        if (Families.forDirectory(dir).kind() == ModelFamily.Kind.LANGUAGE) {
            throw new IllegalArgumentException("--model " + dir + " is a language model: give it --text, --token-ids or --texts");
        }
        try (ImageClassifier classifier = Models.loadImageClassifier(dir, device.device, device.precision)) {
            int c = classifier.channels(), s = classifier.imageSize(), k = classifier.numClasses(), size = c * s * s;
            if (input.fashionMnist != null) return accuracy(dir, classifier, home);
            float[] data;
            int n;
            if (input.image != null) {
                data = ImagePreprocessor.of(dir, classifier).fromFile(input.image);
                n = 1;
            } else {
                Npy.Array array = Npy.readFloat32(input.pixels);
                if (array.shape().length != 4 || array.dim(1) != c || array.dim(2) != s || array.dim(3) != s) {
                    throw new IllegalArgumentException("--pixels " + input.pixels + " has shape " + Arrays.toString(array.shape())
                            + ", the model takes [N, " + c + ", " + s + ", " + s + "]");
                }
                data = array.data();
                n = array.dim(0);
            }
            JsonNode labels = ConfigFile.in(dir).json().path("id2label");
            float[] logits = new float[n * k];
            long start = System.nanoTime();
            for (int i = 0; i < n; i++) {
                float[] row = classifier.classify(Arrays.copyOfRange(data, i * size, (i + 1) * size), null);
                System.arraycopy(row, 0, logits, i * k, k);
                System.out.println("image " + i + ":" + topClasses(row, j -> labels.path(String.valueOf(j)).asText(String.valueOf(j))));
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            System.err.printf("[%d images in %.3f s, %.1f images/s]%n", n, seconds, n / seconds);
            if (out != null) Npy.writeFloat32(out, logits, n, k);
        }
        return 0;
    }

    private int classifyText(Path dir, Path home) {
        if (!Models.isTextClassifier(dir)) {
            throw new IllegalArgumentException("--model " + dir + " is not a text classifier (architectures …ForSequenceClassification): --text, --token-ids and --texts need one");
        }
        try (TextClassifier classifier = Models.loadTextClassifier(dir, device.device, device.precision)) {
            int k = classifier.labels().size();
            if (input.texts != null) return textAccuracy(dir, classifier, input.texts.isAbsolute() || Files.exists(input.texts) ? input.texts : home.resolve(input.texts));
            int[] ids = input.text != null ? tokenizer(dir).encode(input.text) : TokenIds.parse(input.tokenIds);
            if (ids.length == 0) throw new IllegalArgumentException("--text encodes to no tokens");
            float[] logits = classifier.logits(ids);
            System.out.println(classifier.labels().get(Sampler.argmax(logits)) + " (" + ids.length + " tokens, read at position "
                    + classifier.readPosition(ids) + "):" + topClasses(logits, classifier.labels()::get));
            if (out != null) Npy.writeFloat32(out, logits, 1, k);
        }
        return 0;
    }

    private static BpeTokenizer tokenizer(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("--text needs " + file + "; give --token-ids instead");
        return BpeTokenizer.load(file);
    }

    /** Accuracy on labelled texts, with progress on stderr; --out gets the logits [N, labels]. */
    private int textAccuracy(Path dir, TextClassifier classifier, Path file) {
        LabelledTexts data = LabelledTexts.read(file, classifier.labels().size());
        BpeTokenizer tokenizer = tokenizer(dir);
        int n = limit == null ? data.size() : Math.min(limit, data.size()), k = classifier.labels().size();
        float[] logits = new float[n * k];
        java.util.concurrent.atomic.AtomicInteger done = new java.util.concurrent.atomic.AtomicInteger();
        long start = System.nanoTime();
        IntStream.range(0, n).parallel().forEach(i -> {
            System.arraycopy(classifier.logits(tokenizer.encode(data.get(i).text())), 0, logits, i * k, k);
            int d = done.incrementAndGet();
            if (d % 50 == 0 || d == n) System.err.printf("\r%d/%d texts, %.1f texts/s ", d, n, d / ((System.nanoTime() - start) / 1e9));
        });
        System.err.println();
        int correct = 0;
        for (int i = 0; i < n; i++) if (Sampler.argmax(Arrays.copyOfRange(logits, i * k, (i + 1) * k)) == data.get(i).label()) correct++;
        System.out.printf("%s: accuracy %.4f on %d texts of %s%n", dir, correct / (double) n, n, file);
        if (out != null) Npy.writeFloat32(out, logits, n, k);
        return 0;
    }

    private String topClasses(float[] row, java.util.function.IntFunction<String> label) {
        int k = row.length;
        double max = IntStream.range(0, k).mapToDouble(j -> row[j]).max().orElse(0), sum = 0;
        for (float v : row) sum += Math.exp(v - max);
        double total = sum;
        StringBuilder line = new StringBuilder();
        IntStream.range(0, k).boxed().sorted(Comparator.comparingDouble(j -> -row[j])).limit(Math.max(1, top)).forEach(j ->
                line.append(String.format("  %s %.4f", label.apply(j), Math.exp(row[j] - max) / total)));
        return line.toString();
    }

    /** Top-1 accuracy on the test split of the image set the model takes, with progress on stderr. */
    private int accuracy(Path dir, ImageClassifier classifier, Path home) {
        ImageDataset test = ImageData.test(ImageData.forSide(classifier.imageSize()), input.fashionMnist, home);
        ImagePreprocessor pre = ImagePreprocessor.of(dir, classifier);
        int n = limit == null ? test.size() : Math.min(limit, test.size()), correct = 0;
        long start = System.nanoTime();
        for (int i = 0; i < n; i++) {
            float[] logits = classifier.classify(pre.fromGray(test.pixels(i), test.side(), test.side()), null);
            if (Sampler.argmax(logits) == test.label(i)) correct++;
            if ((i + 1) % 500 == 0 || i + 1 == n) {
                double secs = (System.nanoTime() - start) / 1e9;
                System.err.printf("\r%d/%d images, accuracy %.4f, %.1f images/s, ETA %.0f s ", i + 1, n, correct / (double) (i + 1),
                        (i + 1) / secs, (n - i - 1) / ((i + 1) / secs));
            }
        }
        System.err.println();
        System.out.printf("%s: top-1 accuracy %.4f on %d %s test images%n", dir, correct / (double) n, n, test.title());
        return 0;
    }
}
