package org.mambalens.cli;

import org.mambalens.engine.io.OutputDirectory;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.model.TextClassifier;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.xai.data.FashionMnist;
import org.mambalens.xai.data.ImagePreprocessor;
import org.mambalens.xai.eval.LocalRun;
import org.mambalens.xai.methods.ImageExplainer.Method;
import org.mambalens.xai.render.ImageReport;
import org.mambalens.xai.render.TextReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.IntFunction;

@Command(name = "explain", mixinStandardHelpOptions = true,
        description = {"Explain an image classification with attention maps: for each model, raw attention, attention "
                + "rollout and attribution (Mamba-Attribution, or Chefer et al.'s for ViT) over the image, and its layers' "
                + "attention matrices, in DIR/report.html (PNGs, NPY and JSON beside it).",
                "Without --model or --image: the bundled Vision Mamba and ViT on a bundled placed Fashion-MNIST test image (64×64)."})
final class ExplainCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    static final String[] BUNDLED_MODELS = {"models/vim-placed", "models/vit-placed"};
    static final String BUNDLED_IMAGE = "data/fashion-placed/test-0000-ankle-boot.png";
    /** The default image for models that take 28×28 images (models/vim-fashion, models/vit-fashion). */
    static final String BUNDLED_IMAGE_28 = "data/fashion-mnist/test-0000-ankle-boot.png";

    @Option(names = "--model", paramLabel = "DIR", description = "A classifier to explain (repeatable). Default: the bundled ViM and ViT "
            + "(models/vim-placed, models/vit-placed; the older 28×28 pair: --model models/vim-fashion --model models/vit-fashion).")
    List<Path> models;

    @Option(names = "--image", paramLabel = "FILE", description = "A grayscale (or colour, taken as luma) image at the models' size. Default: "
            + BUNDLED_IMAGE + " (for 28×28 models " + BUNDLED_IMAGE_28 + ").")
    Path image;

    @Option(names = "--text", paramLabel = "TEXT", description = "Explain a language model's next-token prediction for this text instead "
            + "(default model: the bundled models/mamba-fortunes), or a text classifier's label (e.g. models/mamba-wordnet).")
    String text;

    @Option(names = "--target", paramLabel = "LABEL_OR_TOKEN", description = "The class (name or index) of an image, or with --text the label "
            + "(name or index) or the next token (its text, one token, or #ID) to explain. Default: the predicted one.")
    String target;

    @Option(names = "--method", paramLabel = "M", defaultValue = "all", description = "raw, rollout, attribution or all (default).")
    String method;

    @Option(names = "--start-layer", paramLabel = "L", converter = Counts.NonNegative.class, description = "First layer the methods use, from 0 (default: 15/24 of the depth, as the seed paper's code).")
    Integer startLayer;

    @Option(names = "--inputs", paramLabel = "LIST", description = "A file naming one image per line: each explained into DIR/NNNN-NAME/report.html, "
            + "DIR/results.json lists them (with --spark, spread over the executors).")
    Path inputs;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Mixin
    SparkOption spark;

    @Override
    public Integer call() {
        List<Method> methods = Method.parse(method);
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        if (text != null) {
            if (inputs != null || spark.enabled()) throw new IllegalArgumentException("--inputs and --spark explain images, not --text");
            if (image != null) throw new IllegalArgumentException("--text and --image exclude each other");
            if (models != null && models.size() > 1) throw new IllegalArgumentException("--text explains one language model; give one --model");
            Path dir = models == null || models.isEmpty() ? home.resolve("models/mamba-fortunes") : models.get(0);
            ModelFamily family = Families.forDirectory(dir);
            if (family.kind() != ModelFamily.Kind.LANGUAGE) {
                throw new IllegalArgumentException("--text explains language models; " + dir + " is model_type \"" + family.modelType() + "\"");
            }
            methods = Method.supported(methods, method, family, ExplainCommand::note);
            BpeTokenizer tokenizer = BpeTokenizer.load(dir.resolve("tokenizer.json"));
            int[] ids = tokenizer.encode(text);
            if (ids.length == 0) throw new IllegalArgumentException("--text encodes to no tokens");
            IntFunction<String> decode = id -> tokenizer.decode(new int[]{id});
            List<Method> chosenMethods = methods;
            if (Models.isTextClassifier(dir)) {
                try (TextClassifier classifier = Models.loadTextClassifier(dir, device.device, device.precision)) {
                    TextReport.Target chosen = TextReport.Target.label(classifier, ids, target == null ? null : classifier.label(target));
                    System.out.println("wrote " + OutputDirectory.write(out, staging ->
                            TextReport.write(staging, family, classifier.model(), ids, decode, text, chosenMethods, start(), chosen)));
                }
            } else {
                try (var lm = Models.loadLanguageModel(dir, device.device, device.precision)) {
                    TextReport.Target chosen = TextReport.Target.nextToken(ids, target == null ? null : TextReport.Target.token(tokenizer, target), decode);
                    System.out.println("wrote " + OutputDirectory.write(out, staging ->
                            TextReport.write(staging, family, lm, ids, decode, text, chosenMethods, start(), chosen)));
                }
            }
            return 0;
        }
        List<Path> dirs = new ArrayList<>();
        if (models == null || models.isEmpty()) for (String m : BUNDLED_MODELS) dirs.add(home.resolve(m));
        else dirs.addAll(models);
        if (inputs != null) return explainAll(dirs, methods);
        if (spark.enabled()) throw new IllegalArgumentException("--spark explains a list of images: give --inputs LIST");
        for (Path d : dirs) methods = Method.supported(methods, method, Families.forDirectory(d), ExplainCommand::note);
        List<ImageReport.Subject> subjects = new ArrayList<>();
        try {
            for (Path d : dirs) subjects.add(new ImageReport.Subject(d.getFileName().toString(), d, Models.loadImageClassifier(d, device.device, device.precision)));
            boolean small = subjects.getFirst().model().imageSize() == FashionMnist.SIZE;
            Path file = image != null ? image : home.resolve(small ? BUNDLED_IMAGE_28 : BUNDLED_IMAGE);
            ImagePreprocessor.Decoded img = ImagePreprocessor.decode(file);
            int size = img.width();
            if (img.height() != size) throw new IllegalArgumentException("--image " + file + " is " + img.width() + " × " + img.height() + ", not square");
            int[] gray = img.luma();
            List<Method> chosenMethods = methods;
            Path report = OutputDirectory.write(out, staging ->
                    ImageReport.write(staging, gray, size, file.getFileName().toString(), subjects, chosenMethods, start(), target));
            System.out.println("wrote " + report);
        } finally {
            subjects.forEach(s -> s.model().close());
        }
        return 0;
    }

    /** --inputs: every listed image explained, here or on Spark. */
    private int explainAll(List<Path> dirs, List<Method> methods) {
        if (image != null) throw new IllegalArgumentException("--image and --inputs exclude each other");
        List<String> images;
        try {
            images = Files.readAllLines(inputs).stream().map(String::strip).filter(l -> !l.isEmpty()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException("--inputs " + inputs + ": " + e.getMessage(), e);
        }
        if (images.isEmpty()) throw new IllegalArgumentException("--inputs " + inputs + " names no image");
        for (Path d : dirs) methods = Method.supported(methods, method, Families.forDirectory(d), ExplainCommand::note);
        Explanations.Job job = new Explanations.Job(dirs.stream().map(Path::toString).toList(), images, methods, start(), target,
                device.device, device.precision, out.toString());
        if (spark.enabled()) return spark.run(job, images.size(), out);
        try (Explanations explanations = job.open()) {
            System.out.println("wrote " + LocalRun.run(explanations, out, images.size(), Runtime.getRuntime().availableProcessors(), System.err));
        }
        return 0;
    }

    /** --start-layer, or -1 for the library's default. */
    private int start() {
        return startLayer == null ? -1 : startLayer;
    }

    private static void note(String message) {
        System.err.println("note: " + message);
    }
}
