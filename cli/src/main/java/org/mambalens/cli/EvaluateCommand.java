package org.mambalens.cli;

import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.Models;
import org.mambalens.xai.data.FashionMnist;
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
        description = {"Measure how faithful the explanations are (DESIGN §8) on the Fashion-MNIST test set: positive and negative "
                + "perturbation AUC and foreground segmentation (pixel accuracy, mIoU, mAP) per model and method, beside a random map.",
                "Writes DIR/results.json, results.md, per_image.csv, curves_<model>.png and report.html. Finished images are kept in "
                        + "DIR/journal.jsonl: run the same command again to resume an interrupted run."})
final class EvaluateCommand implements Callable<Integer> {
    private static final SequencedMap<String, String> BUNDLED = EvaluationArguments.bundled("vim", "models/vim-fashion", "vit", "models/vit-fashion");
    @Mixin
    DeviceOption device;

    @Option(names = "--models", paramLabel = "M,M", split = ",", defaultValue = "vim,vit",
            description = "vim (models/vim-fashion), vit (models/vit-fashion) or model directories; default vim,vit.")
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

    @Option(names = "--data", paramLabel = "DIR", description = "Fashion-MNIST directory (default " + "/usr/share/datasets/fashion-mnist).")
    Path data;

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
        Job job = new Job(EvaluationArguments.models(models, BUNDLED, home), EvaluationArguments.methods(methods), startLayer == null ? -1 : startLayer, fill, seed,
                (data != null ? data : FashionMnist.DEBIAN).toString(), device.device, device.precision);
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
               String data, Device device, Precision precision) implements JobSpec {
        @Override
        public List<Path> inputs() {
            return EvaluationArguments.inputs(models, data);
        }

        @Override
        public Job relocated(UnaryOperator<Path> located) {
            return new Job(EvaluationArguments.relocated(models, located), methods, startLayer, fill, seed,
                    located.apply(Path.of(data)).toString(), device, precision);
        }

        @Override
        public Evaluation open() {
            FashionMnist test = FashionMnist.test(Path.of(data));
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
