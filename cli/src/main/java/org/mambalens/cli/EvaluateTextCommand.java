package org.mambalens.cli;

import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.xai.data.LabelledTexts;
import org.mambalens.xai.eval.TextEvaluation;
import org.mambalens.xai.methods.ImageExplainer.Method;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.UnaryOperator;

@Command(name = "evaluate-text", mixinStandardHelpOptions = true,
        description = {"The seed paper's text tests (Appendix B) on labelled texts (default: the WordNet gloss test split): activation (restore the most relevant tokens first, "
                + "P(true label)) and pruning (remove the least relevant first, ‖Δlogits‖), AUCs per model and method beside a random order.",
                "Writes DIR/results.json, results.md, curve PNGs and report.html."})
final class EvaluateTextCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    @Option(names = "--models", paramLabel = "M,M", split = ",", defaultValue = "mamba,gptneox",
            description = "The WordNet gloss classifiers mamba, gptneox, mamba2, rwkv and griffin (models/NAME-wordnet), the fortune topic "
                    + "classifiers mamba-fortunes and gptneox-fortunes (models/*-fortunes-topics: give them --data " + LabelledTexts.FORTUNES_TEST
                    + "), or text classifier directories (default: mamba,gptneox).")
    List<String> models;

    @Option(names = "--methods", paramLabel = "M,M", split = ",", defaultValue = "raw,rollout,attribution",
            description = "Any of raw, rollout, attribution (default: all three).")
    List<String> methods;

    @Option(names = "--data", paramLabel = "FILE.jsonl", description = "Labelled texts (default: " + LabelledTexts.BUNDLED_TEST + ").")
    Path data;

    @Option(names = "--limit", paramLabel = "N", converter = Counts.Positive.class, defaultValue = "1000000", description = "The first N texts (default: all).")
    int limit;

    @Option(names = "--threads", paramLabel = "T", converter = Counts.Positive.class, description = "Texts evaluated at once, one thread each (default: the cores).")
    Integer threads;

    @Option(names = "--start-layer", paramLabel = "L", converter = Counts.NonNegative.class, description = "First layer the methods use, from 0 (default: 15/24 of the depth).")
    Integer startLayer;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random baseline orders.")
    long seed;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Mixin
    SparkOption spark;

    @Override
    public Integer call() {
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        Job job = new Job(EvaluationArguments.models(models, EvaluationArguments.TEXT_CLASSIFIERS, home), EvaluationArguments.methods(methods), startLayer == null ? -1 : startLayer, seed,
                (data != null ? data : home.resolve(LabelledTexts.BUNDLED_TEST)).toString(), device.device, device.precision);
        if (spark.enabled()) return spark.run(job, limit, out);
        try (TextEvaluation evaluation = job.open()) {
            int t = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            Path results = evaluation.run(out, limit, t, System.err);
            System.out.println("wrote " + results + " and " + out.resolve("results.md"));
        }
        return 0;
    }

    /** The text evaluation as values: what runs here, or on every Spark executor. */
    record Job(List<EvaluationArguments.NamedModel> models, List<Method> methods, int startLayer, long seed, String data,
               Device device, Precision precision) implements JobSpec {
        @Override
        public List<Path> inputs() {
            return EvaluationArguments.inputs(models, data);
        }

        @Override
        public Job relocated(UnaryOperator<Path> located) {
            return new Job(EvaluationArguments.relocated(models, located), methods, startLayer, seed,
                    located.apply(Path.of(data)).toString(), device, precision);
        }

        @Override
        public TextEvaluation open() {
            List<TextEvaluation.Subject> subjects = new ArrayList<>();
            try {
                for (EvaluationArguments.NamedModel m : models) {
                    Path tokenizer = m.dir().resolve("tokenizer.json");
                    if (!Files.isRegularFile(tokenizer)) throw new IllegalArgumentException("--models: " + m.dir() + " has no tokenizer.json");
                    subjects.add(new TextEvaluation.Subject(m.key(), m.dir(), Models.loadTextClassifier(m.dir(), device, precision),
                            BpeTokenizer.load(tokenizer)));
                }
                List<String> labels = subjects.getFirst().classifier().labels();
                for (TextEvaluation.Subject s : subjects) {
                    if (!s.classifier().labels().equals(labels)) {
                        throw new IllegalArgumentException("--models: " + s.name() + " has labels " + s.classifier().labels() + ", "
                                + subjects.getFirst().name() + " has " + labels);
                    }
                }
                return new TextEvaluation(LabelledTexts.read(Path.of(data), labels.size()), subjects, methods, startLayer, seed);
            } catch (RuntimeException e) {
                subjects.forEach(s -> s.classifier().close());
                throw e;
            }
        }
    }
}
