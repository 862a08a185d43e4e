package org.mambalens.cli;

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
import java.util.SequencedMap;
import java.util.concurrent.Callable;

@Command(name = "evaluate-text", mixinStandardHelpOptions = true,
        description = {"The seed paper's text tests (Appendix B) on labelled texts (default: the WordNet gloss test split): activation (restore the most relevant tokens first, "
                + "P(true label)) and pruning (remove the least relevant first, ‖Δlogits‖), AUCs per model and method beside a random order.",
                "Writes DIR/results.json, results.md, curve PNGs and report.html."})
final class EvaluateTextCommand implements Callable<Integer> {
    private static final SequencedMap<String, String> BUNDLED = EvaluationArguments.bundled(
            "mamba", "models/mamba-wordnet", "gptneox", "models/gptneox-wordnet",
            "mamba-fortunes", "models/mamba-fortunes-topics", "gptneox-fortunes", "models/gptneox-fortunes-topics");
    @Mixin
    DeviceOption device;

    @Option(names = "--models", paramLabel = "M,M", split = ",", defaultValue = "mamba,gptneox",
            description = "mamba (models/mamba-wordnet), gptneox (models/gptneox-wordnet), the fortune topic classifiers mamba-fortunes and "
                    + "gptneox-fortunes (models/*-fortunes-topics: give them --data " + LabelledTexts.FORTUNES_TEST + "), or text classifier "
                    + "directories (default: mamba,gptneox).")
    List<String> models;

    @Option(names = "--methods", paramLabel = "M,M", split = ",", defaultValue = "raw,rollout,attribution",
            description = "Any of raw, rollout, attribution (default: all three).")
    List<String> methods;

    @Option(names = "--data", paramLabel = "FILE.jsonl", description = "Labelled texts (default: " + LabelledTexts.BUNDLED_TEST + ").")
    Path data;

    @Option(names = "--limit", paramLabel = "N", defaultValue = "1000000", description = "The first N texts (default: all).")
    int limit;

    @Option(names = "--threads", paramLabel = "T", description = "Texts evaluated at once, one thread each (default: the cores).")
    Integer threads;

    @Option(names = "--start-layer", paramLabel = "L", defaultValue = "-1", description = "First layer the methods use (default: 15/24 of the depth).")
    int startLayer;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random baseline orders.")
    long seed;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Override
    public Integer call() {
        EvaluationArguments.checkLimitAndThreads(limit, threads);
        List<Method> chosen = EvaluationArguments.methods(methods);
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        List<TextEvaluation.Subject> subjects = new ArrayList<>();
        try {
            for (EvaluationArguments.NamedModel m : EvaluationArguments.models(models, BUNDLED, home)) {
                Path tokenizer = m.dir().resolve("tokenizer.json");
                if (!Files.isRegularFile(tokenizer)) throw new IllegalArgumentException("--models: " + m.dir() + " has no tokenizer.json");
                subjects.add(new TextEvaluation.Subject(m.key(), Models.loadTextClassifier(m.dir(), device.device, device.precision), BpeTokenizer.load(tokenizer)));
            }
            int labels = subjects.getFirst().classifier().labels().size();
            for (TextEvaluation.Subject s : subjects) {
                if (!s.classifier().labels().equals(subjects.getFirst().classifier().labels())) {
                    throw new IllegalArgumentException("--models: " + s.name() + " has labels " + s.classifier().labels() + ", "
                            + subjects.getFirst().name() + " has " + subjects.getFirst().classifier().labels());
                }
            }
            LabelledTexts texts = LabelledTexts.read(data != null ? data : home.resolve(LabelledTexts.BUNDLED_TEST), labels);
            int t = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            Path results = new TextEvaluation(texts, subjects, chosen, startLayer, seed).run(out, limit, t, System.err);
            System.out.println("wrote " + results + " and " + out.resolve("results.md"));
        } finally {
            subjects.forEach(s -> s.classifier().close());
        }
        return 0;
    }
}
