package org.mambalens.cli;

import org.mambalens.engine.model.Models;
import org.mambalens.xai.data.ImageDataset;
import org.mambalens.xai.eval.Evaluation;
import org.mambalens.xai.methods.ImageExplainer.Method;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SequencedMap;
import java.util.concurrent.Callable;

@Command(name = "evaluate", mixinStandardHelpOptions = true,
        description = {"Measure how faithful the explanations are (SPEC §8) on a labelled test set (default: placed Fashion-MNIST, "
                + "64×64, for the bundled models): positive and negative "
                + "perturbation AUC and foreground segmentation (pixel accuracy, mIoU, mAP) per model and method, beside a random map.",
                "Writes DIR/results.json, results.md, per_image.csv, curves_<model>.png and report.html. Finished images are kept in "
                        + "DIR/journal.jsonl: run the same command again to resume an interrupted run."})
final class EvaluateCommand implements Callable<Integer> {
    private static final SequencedMap<String, String> BUNDLED = EvaluationArguments.bundled("vim", "models/vim-placed", "vit", "models/vit-placed",
            "vim-fashion", "models/vim-fashion", "vit-fashion", "models/vit-fashion");
    @Mixin
    DeviceOption device;

    @Option(names = "--models", paramLabel = "M,M", split = ",", defaultValue = "vim,vit",
            description = "vim (models/vim-placed), vit (models/vit-placed), the older 28×28 demo models vim-fashion and vit-fashion "
                    + "(models/vim-fashion, models/vit-fashion), or model directories; default vim,vit.")
    List<String> models;

    @Option(names = "--methods", paramLabel = "M,M", split = ",", defaultValue = "raw,rollout,attribution",
            description = "raw, rollout, attribution; default all three (a random map is always added as the chance level).")
    List<String> methods;

    @Option(names = "--limit", paramLabel = "N", defaultValue = "10000", description = "The first N test images (default all 10,000).")
    int limit;

    @Option(names = "--threads", paramLabel = "T", description = "Images evaluated at once, one thread each (default: the cores).")
    Integer threads;

    @Option(names = "--start-layer", paramLabel = "L", defaultValue = "-1", description = "First layer the methods use (default: 15/24 of the depth).")
    int startLayer;

    @Option(names = "--data", paramLabel = "SET", description = "placed (placed Fashion-MNIST, 64×64, data/fashion-placed) or fashion-mnist "
            + "(28×28); default: the one the first model's input size calls for.")
    String data;

    @Option(names = "--fashion-mnist", paramLabel = "DIR", defaultValue = ImageData.DEBIAN,
            description = "Debian's Fashion-MNIST files: the images, or the sources of the placed ones (default ${DEFAULT-VALUE}).")
    Path fashionMnist;

    @Option(names = "--fill", paramLabel = "F", defaultValue = "mean",
            description = "What a removed pixel becomes: mean (the dataset mean, 0 after normalisation: SPEC §8, default) or black (the background).")
    Evaluation.Fill fill;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random baseline maps.")
    long seed;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Override
    public Integer call() {
        EvaluationArguments.checkLimitAndThreads(limit, threads);
        List<Method> chosen = EvaluationArguments.methods(methods);
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        List<Evaluation.Subject> subjects = new ArrayList<>();
        try {
            for (EvaluationArguments.NamedModel m : EvaluationArguments.models(models, BUNDLED, home)) {
                subjects.add(new Evaluation.Subject(m.key(), m.dir(), Models.loadImageClassifier(m.dir(), device.device, device.precision)));
            }
            int side = subjects.getFirst().model().imageSize();
            ImageDataset test = ImageData.test(data != null ? data : ImageData.forSide(side), fashionMnist, home);
            int t = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            Path results = new Evaluation(test, subjects, chosen, startLayer, fill, seed).run(out, limit, t, System.err);
            System.out.println("wrote " + results + " and " + out.resolve("results.md"));
        } finally {
            subjects.forEach(s -> s.model().close());
        }
        return 0;
    }
}
