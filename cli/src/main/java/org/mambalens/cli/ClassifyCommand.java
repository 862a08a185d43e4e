package org.mambalens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Device;
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
import org.mambalens.xai.eval.LocalRun;
import org.mambalens.xai.methods.TopOutputs;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.UnaryOperator;
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
            + "models/vim-fashion and models/vit-fashion the older 28×28 pair); for text, " + BUNDLED_TEXT + ". A bundled text classifier "
            + "can be named instead: the WordNet gloss classifiers mamba, gptneox, mamba2, rwkv, griffin (models/NAME-wordnet), the fortune "
            + "topic classifiers mamba-fortunes, gptneox-fortunes (models/*-fortunes-topics).")
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

    @Option(names = "--top", paramLabel = "K", defaultValue = "5", converter = Counts.Positive.class, description = "Classes to print per image (default ${DEFAULT-VALUE}).")
    int top;

    @Option(names = "--limit", paramLabel = "N", converter = Counts.Positive.class, description = "With --fashion-mnist or --texts: the first N only.")
    Integer limit;

    @Option(names = "--out", paramLabel = "FILE", description = "Also write the logits as float32 NPY [N, classes] (with --fashion-mnist or --texts: of every item classified).")
    Path out;

    @Option(names = "--results", paramLabel = "DIR", description = "With --fashion-mnist or --texts: also write DIR/results.json (the accuracy); "
            + "--spark needs it (DIR/items.parquet and items.csv hold each item's logits).")
    Path results;

    @Mixin
    SparkOption spark;

    @Override
    public Integer call() {
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        if (input.fashionMnist != null || input.texts != null) return accuracy(home);
        if (spark.enabled()) throw new IllegalArgumentException("--spark classifies a dataset: give --fashion-mnist or --texts");
        if (input.isText()) return classifyText(textClassifier(home), home);
        Path dir = model != null ? model : home.resolve(BUNDLED);
        if (Families.forDirectory(dir).kind() == ModelFamily.Kind.LANGUAGE) {
            throw new IllegalArgumentException("--model " + dir + " is a language model: give it --text, --token-ids or --texts");
        }
        try (ImageClassifier classifier = Models.loadImageClassifier(dir, device.device, device.precision)) {
            int c = classifier.channels(), s = classifier.imageSize(), k = classifier.numClasses(), size = c * s * s;
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
                data = Finite.inputs(array.data(), "--pixels " + input.pixels);
                n = array.dim(0);
            }
            JsonNode labels = ConfigFile.in(dir).json().path("id2label");
            float[] logits = new float[n * k];
            long start = System.nanoTime();
            for (int i = 0; i < n; i++) {
                float[] row = Finite.outputs(classifier.classify(Arrays.copyOfRange(data, i * size, (i + 1) * size), null), dir);
                System.arraycopy(row, 0, logits, i * k, k);
                System.out.println("image " + i + ":" + topClasses(row, j -> labels.path(String.valueOf(j)).asText(String.valueOf(j))));
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            System.err.printf("[%d images in %.3f s, %.1f images/s]%n", n, seconds, n / seconds);
            if (out != null) Npy.writeFloat32(out, logits, n, k);
        }
        return 0;
    }

    /** --model for a text: a bundled text classifier's name or a directory; by default the bundled WordNet Mamba. */
    private Path textClassifier(Path home) {
        return model == null ? home.resolve(BUNDLED_TEXT) : EvaluationArguments.directory(model.toString(), EvaluationArguments.TEXT_CLASSIFIERS, home);
    }

    private int classifyText(Path dir, Path home) {
        if (!Models.isTextClassifier(dir)) {
            throw new IllegalArgumentException("--model " + dir + " is not a text classifier (architectures …ForSequenceClassification): --text, --token-ids and --texts need one");
        }
        try (TextClassifier classifier = Models.loadTextClassifier(dir, device.device, device.precision)) {
            int k = classifier.labels().size();
            int[] ids = input.text != null ? tokenizer(dir).encode(input.text) : TokenIds.parse(input.tokenIds);
            if (ids.length == 0) throw new IllegalArgumentException("--text encodes to no tokens");
            float[] logits = Finite.outputs(classifier.logits(ids), dir);
            System.out.println(classifier.labels().get(Sampler.argmax(logits)) + " (" + ids.length + " tokens, read at position "
                    + classifier.readPosition(ids) + "):" + topClasses(logits, classifier.labels()::get));
            if (out != null) Npy.writeFloat32(out, logits, 1, k);
        }
        return 0;
    }

    /** --fashion-mnist or --texts: every item classified, the accuracy printed, here or on Spark. */
    private int accuracy(Path home) {
        if (limit != null && limit < 1) throw new IllegalArgumentException("--limit must be at least 1, not " + limit);
        Job job;
        if (input.texts != null) {
            Path dir = textClassifier(home);
            if (!Models.isTextClassifier(dir)) {
                throw new IllegalArgumentException("--model " + dir + " is not a text classifier (architectures …ForSequenceClassification): --texts needs one");
            }
            Path file = input.texts.isAbsolute() || Files.exists(input.texts) ? input.texts : home.resolve(input.texts);
            job = new Job(dir.toString(), true, file.toString(), null, device.device, device.precision, out == null ? null : out.toString());
        } else {
            Path dir = model != null ? model : home.resolve(BUNDLED);
            if (Families.forDirectory(dir).kind() == ModelFamily.Kind.LANGUAGE) {
                throw new IllegalArgumentException("--model " + dir + " is a language model: give it --text, --token-ids or --texts");
            }
            Path placements = ImageData.placements(ImageData.forSide(ImageData.imageSize(dir)), home);
            job = new Job(dir.toString(), false, input.fashionMnist.toString(), placements == null ? null : placements.toString(), device.device,
                    device.precision, out == null ? null : out.toString());
        }
        int n = limit == null ? Integer.MAX_VALUE : limit;
        if (spark.enabled()) {
            if (results == null) throw new IllegalArgumentException("--spark needs --results DIR for the items' rows");
            return spark.run(job, n, results);
        }
        try (Classification classification = job.open()) {
            LocalRun.run(classification, results, n, Runtime.getRuntime().availableProcessors(), System.err);
        }
        return 0;
    }

    private static BpeTokenizer tokenizer(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("--text needs " + file + "; give --token-ids instead");
        return BpeTokenizer.load(file);
    }

    private String topClasses(float[] row, java.util.function.IntFunction<String> label) {
        StringBuilder line = new StringBuilder();
        for (TopOutputs.Output o : TopOutputs.of(row, top)) line.append(String.format("  %s %.4f", label.apply(o.index()), o.probability()));
        return line.toString();
    }

    /** The accuracy on a labelled dataset as values: what runs here, or on every Spark executor. */
    record Job(String model, boolean texts, String data, String placements, Device device, Precision precision, String npy) implements JobSpec {
        @Override
        public List<Path> inputs() {
            return placements == null ? List.of(Path.of(model), Path.of(data)) : List.of(Path.of(model), Path.of(data), Path.of(placements));
        }

        @Override
        public Job relocated(UnaryOperator<Path> located) {
            return new Job(located.apply(Path.of(model)).toString(), texts, located.apply(Path.of(data)).toString(),
                    placements == null ? null : located.apply(Path.of(placements)).toString(), device, precision, npy);
        }

        @Override
        public Classification open() {
            Path dir = Path.of(model), logits = npy == null ? null : Path.of(npy);
            if (texts) {
                TextClassifier classifier = Models.loadTextClassifier(dir, device, precision);
                try {
                    LabelledTexts data = LabelledTexts.read(Path.of(this.data), classifier.labels().size());
                    BpeTokenizer tokenizer = tokenizer(dir);
                    return new Classification(model, "texts of " + this.data, "texts", data.size(), i -> Finite.outputs(classifier.logits(tokenizer.encode(data.get(i).text())), dir),
                            i -> data.get(i).label(), classifier::close, logits);
                } catch (RuntimeException e) {
                    classifier.close();
                    throw e;
                }
            }
            ImageClassifier classifier = Models.loadImageClassifier(dir, device, precision);
            try {
                ImageDataset test = ImageData.test(Path.of(data), placements == null ? null : Path.of(placements));
                ImagePreprocessor pre = ImagePreprocessor.of(dir, classifier);
                return new Classification(model, test.title() + " test images", "images", test.size(),
                        i -> Finite.outputs(classifier.classify(pre.fromGray(test.pixels(i), test.side(), test.side()), null), dir), test::label, classifier::close, logits);
            } catch (RuntimeException e) {
                classifier.close();
                throw e;
            }
        }
    }
}
