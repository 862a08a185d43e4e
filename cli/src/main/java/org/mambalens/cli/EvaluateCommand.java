package org.mambalens.cli;

import org.mambalens.engine.model.Models;
import org.mambalens.xai.data.FashionMnist;
import org.mambalens.xai.eval.Evaluation;
import org.mambalens.xai.methods.ImageExplainer.Method;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "evaluate", mixinStandardHelpOptions = true,
        description = {"Measure how faithful the explanations are (SPEC §8) on the Fashion-MNIST test set: positive and negative "
                + "perturbation AUC and foreground segmentation (pixel accuracy, mIoU, mAP) per model and method, beside a random map.",
                "Writes DIR/results.json, results.md, per_image.csv, curves_<model>.png and report.html. Finished images are kept in "
                        + "DIR/journal.jsonl: run the same command again to resume an interrupted run."})
final class EvaluateCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    @Option(names = "--models", paramLabel = "M,M", split = ",", defaultValue = "vim,vit",
            description = "vim (models/vim-fashion), vit (models/vit-fashion) or model directories; default vim,vit.")
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

    @Option(names = "--data", paramLabel = "DIR", description = "Fashion-MNIST directory (default " + "/usr/share/datasets/fashion-mnist).")
    Path data;

    @Option(names = "--fill", paramLabel = "F", defaultValue = "mean",
            description = "What a removed pixel becomes: mean (the dataset mean, 0 after normalisation: SPEC §8, default) or black (the background).")
    Evaluation.Fill fill;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random baseline maps.")
    long seed;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Override
    public Integer call() {
        if (limit < 1) throw new IllegalArgumentException("--limit must be at least 1, not " + limit);
        if (threads != null && threads < 1) throw new IllegalArgumentException("--threads must be at least 1, not " + threads);
        List<Method> chosen = new ArrayList<>();
        for (String m : methods) {
            try {
                Method method = Method.valueOf(m.trim());
                if (!chosen.contains(method)) chosen.add(method);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--methods: " + m + " is not one of raw, rollout, attribution");
            }
        }
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        FashionMnist test = FashionMnist.test(data != null ? data : FashionMnist.DEBIAN);
        List<Evaluation.Subject> subjects = new ArrayList<>();
        try {
            for (String m : models) {
                String name = m.trim();
                Path dir = switch (name) {
                    case "vim" -> home.resolve("models/vim-fashion");
                    case "vit" -> home.resolve("models/vit-fashion");
                    default -> Path.of(name);
                };
                if (!Files.isDirectory(dir)) throw new IllegalArgumentException("--models: " + name + " is neither vim, vit nor a model directory");
                String key = name.equals("vim") || name.equals("vit") ? name : dir.getFileName().toString();
                if (subjects.stream().anyMatch(s -> s.name().equals(key))) throw new IllegalArgumentException("--models names " + key + " twice");
                subjects.add(new Evaluation.Subject(key, dir, Models.loadImageClassifier(dir, device.device)));
            }
            int t = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            Path results = new Evaluation(test, subjects, chosen, startLayer, fill, seed).run(out, limit, t, System.err);
            System.out.println("wrote " + results + " and " + out.resolve("results.md"));
        } finally {
            subjects.forEach(s -> s.model().close());
        }
        return 0;
    }
}
