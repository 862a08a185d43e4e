package org.mambalens.cli;

import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.model.Device;
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
import java.util.function.UnaryOperator;

@Command(name = "evaluate", mixinStandardHelpOptions = true,
        description = {"Measure how faithful the explanations are (DESIGN §8) on a labelled test set (default: placed Fashion-MNIST, "
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

    @Option(names = "--limit", paramLabel = "N", converter = Counts.Positive.class, defaultValue = "10000", description = "The first N test images (default all 10,000).")
    int limit;

    @Option(names = "--threads", paramLabel = "T", converter = Counts.Positive.class, description = "Images evaluated at once, one thread each (default: the cores).")
    Integer threads;

    @Option(names = "--start-layer", paramLabel = "L", converter = Counts.NonNegative.class, description = "First layer the methods use, from 0 (default: 15/24 of the depth).")
    Integer startLayer;

    @Option(names = "--data", paramLabel = "SET", description = "placed (placed Fashion-MNIST, 64×64, data/fashion-placed) or fashion-mnist "
            + "(28×28); default: the one the first model's input size calls for.")
    String data;

    @Option(names = "--fashion-mnist", paramLabel = "DIR", defaultValue = ImageData.DEBIAN,
            description = "Debian's Fashion-MNIST files: the images, or the sources of the placed ones (default ${DEFAULT-VALUE}).")
    Path fashionMnist;

    @Option(names = "--fill", paramLabel = "F", defaultValue = "mean",
            description = "What a removed pixel becomes: mean (the dataset mean, 0 after normalisation: DESIGN §8, default) or black (the background).")
    Evaluation.Fill fill;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random baseline maps.")
    long seed;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Mixin
    SparkOption spark;

    @Override
    public Integer call() {
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        List<EvaluationArguments.NamedModel> named = EvaluationArguments.models(models, BUNDLED, home);
        Path placements = ImageData.placements(data != null ? data : ImageData.forSide(ImageData.imageSize(named.getFirst().dir())), home);
        Job job = new Job(named, EvaluationArguments.methods(methods), startLayer == null ? -1 : startLayer, fill, seed,
                fashionMnist.toString(), placements == null ? null : placements.toString(), device.device, device.precision);
        if (spark.enabled()) return spark.run(job, limit, out);
        try (Evaluation evaluation = job.open()) {
            int t = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            Path results = evaluation.run(out, limit, t, System.err);
            System.out.println("wrote " + results + " and " + out.resolve("results.md"));
        }
        return 0;
    }

    /** The evaluation as values: what runs here, or on every Spark executor. */
    record Job(List<EvaluationArguments.NamedModel> models, List<Method> methods, int startLayer, Evaluation.Fill fill, long seed,
               String fashionMnist, String placements, Device device, Precision precision) implements JobSpec {
        @Override
        public List<Path> inputs() {
            List<Path> inputs = EvaluationArguments.inputs(models, fashionMnist);
            if (placements != null) inputs.add(Path.of(placements));
            return inputs;
        }

        @Override
        public Job relocated(UnaryOperator<Path> located) {
            return new Job(EvaluationArguments.relocated(models, located), methods, startLayer, fill, seed, located.apply(Path.of(fashionMnist)).toString(),
                    placements == null ? null : located.apply(Path.of(placements)).toString(), device, precision);
        }

        @Override
        public Evaluation open() {
            ImageDataset test = ImageData.test(Path.of(fashionMnist), placements == null ? null : Path.of(placements));
            List<Evaluation.Subject> subjects = new ArrayList<>();
            try {
                for (EvaluationArguments.NamedModel m : models) {
                    subjects.add(new Evaluation.Subject(m.key(), m.dir(), Models.loadImageClassifier(m.dir(), device, precision)));
                }
                return new Evaluation(test, subjects, methods, startLayer, fill, seed);
            } catch (RuntimeException e) {
                subjects.forEach(s -> s.model().close());
                throw e;
            }
        }
    }
}
