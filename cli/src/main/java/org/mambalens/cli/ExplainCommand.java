package org.mambalens.cli;

import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.model.TextClassifier;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.xai.data.FashionMnist;
import org.mambalens.xai.data.ImagePreprocessor;
import org.mambalens.xai.methods.ImageExplainer.Method;
import org.mambalens.xai.render.ImageReport;
import org.mambalens.xai.render.TextReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.IntFunction;
import java.util.stream.Collectors;

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

    @Option(names = "--target", paramLabel = "LABEL_OR_TOKEN", description = "With --text: the label (name or index) or the next token "
            + "(its text, one token, or #ID) to explain. Default: the predicted one.")
    String target;

    @Option(names = "--method", paramLabel = "M", defaultValue = "all", description = "raw, rollout, attribution or all (default).")
    String method;

    @Option(names = "--start-layer", paramLabel = "L", defaultValue = "-1", description = "First layer the methods use (default: 15/24 of the depth, as the seed paper's code).")
    int startLayer;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Override
    public Integer call() {
        List<Method> methods = switch (method) {
            case "raw" -> List.of(Method.raw);
            case "rollout" -> List.of(Method.rollout);
            case "attribution" -> List.of(Method.attribution);
            case "all" -> List.of(Method.values());
            default -> throw new IllegalArgumentException("--method must be raw, rollout, attribution or all, not " + method);
        };
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        if (text != null) {
            if (image != null) throw new IllegalArgumentException("--text and --image exclude each other");
            if (models != null && models.size() > 1) throw new IllegalArgumentException("--text explains one language model; give one --model");
            Path dir = models == null || models.isEmpty() ? home.resolve("models/mamba-fortunes") : models.get(0);
            ModelFamily family = Families.forDirectory(dir);
            if (family.kind() != ModelFamily.Kind.LANGUAGE) {
                throw new IllegalArgumentException("--text explains language models; " + dir + " is model_type \"" + family.modelType() + "\"");
            }
            methods = supported(methods, family);
            BpeTokenizer tokenizer = BpeTokenizer.load(dir.resolve("tokenizer.json"));
            int[] ids = tokenizer.encode(text);
            if (ids.length == 0) throw new IllegalArgumentException("--text encodes to no tokens");
            IntFunction<String> decode = id -> tokenizer.decode(new int[]{id});
            if (Models.isTextClassifier(dir)) {
                try (TextClassifier classifier = Models.loadTextClassifier(dir, device.device, device.precision)) {
                    TextReport.Target chosen = TextReport.Target.label(classifier, ids, target == null ? null : classifier.label(target));
                    System.out.println("wrote " + TextReport.write(out, family, classifier.model(), ids, decode, text, methods, startLayer, chosen));
                }
            } else {
                try (var lm = Models.loadLanguageModel(dir, device.device, device.precision)) {
                    TextReport.Target chosen = TextReport.Target.nextToken(ids, target == null ? null : token(tokenizer, target), decode);
                    System.out.println("wrote " + TextReport.write(out, family, lm, ids, decode, text, methods, startLayer, chosen));
                }
            }
            return 0;
        }
        List<Path> dirs = new ArrayList<>();
        if (models == null || models.isEmpty()) for (String m : BUNDLED_MODELS) dirs.add(home.resolve(m));
        else dirs.addAll(models);
        for (Path d : dirs) methods = supported(methods, Families.forDirectory(d));
        List<ImageReport.Subject> subjects = new ArrayList<>();
        try {
            for (Path d : dirs) subjects.add(new ImageReport.Subject(d.getFileName().toString(), d, Models.loadImageClassifier(d, device.device, device.precision)));
            boolean small = subjects.getFirst().model().imageSize() == FashionMnist.SIZE;
            Path file = image != null ? image : home.resolve(small ? BUNDLED_IMAGE_28 : BUNDLED_IMAGE);
            ImagePreprocessor.Decoded img = ImagePreprocessor.decode(file);
            int size = img.width();
            if (img.height() != size) throw new IllegalArgumentException("--image " + file + " is " + img.width() + " × " + img.height() + ", not square");
            int[] gray = img.luma();
            Path report = ImageReport.write(out, gray, size, file.getFileName().toString(), subjects, methods, startLayer);
            System.out.println("wrote " + report);
        } finally {
            subjects.forEach(s -> s.model().close());
        }
        return 0;
    }

    /** The methods of {@code asked} that {@code family} supports: one it lacks is an error when --method names it, a note with --method all. */
    private List<Method> supported(List<Method> asked, ModelFamily family) {
        List<Method> kept = asked.stream().filter(m -> m.supports(family)).toList();
        if (kept.size() == asked.size()) return asked;
        String lacking = "not available for model_type \"" + family.modelType() + "\" (" + family.name() + ") yet";
        if (!method.equals("all")) throw new IllegalArgumentException("--method " + method + " is " + lacking + " (attribution needs a reverse pass)");
        System.err.println("note: " + asked.stream().filter(m -> !kept.contains(m)).map(Method::name).collect(Collectors.joining(", "))
                + " is " + lacking + "; " + kept.stream().map(Method::name).collect(Collectors.joining(", ")) + " only");
        return kept;
    }

    /** --target for a language model: #ID, or a text that is exactly one token. */
    private static int token(BpeTokenizer tokenizer, String target) {
        if (target.startsWith("#")) return TokenIds.parse(target.substring(1))[0];
        int[] ids = tokenizer.encode(target);
        if (ids.length != 1) throw new IllegalArgumentException("--target \"" + target + "\" is " + ids.length + " tokens, not one; give #ID for a token id");
        return ids[0];
    }
}
