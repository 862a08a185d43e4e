package org.mambalens.cli;

import org.mambalens.xai.methods.ImageExplainer.Method;

import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;
import java.util.function.UnaryOperator;

/** The arguments {@code evaluate} and {@code evaluate-text} share: --methods and --models. */
final class EvaluationArguments {
    private EvaluationArguments() {
    }

    /** A model named on --models: its key in the results and its directory (a string: specs travel to Spark executors). */
    record NamedModel(String key, String directory) implements Serializable {
        NamedModel(String key, Path dir) {
            this(key, dir.toString());
        }

        Path dir() {
            return Path.of(directory);
        }

    }

    /** The bundled models' names and directories, in the order given: name, directory, name, directory, … */
    static SequencedMap<String, String> bundled(String... namesAndDirectories) {
        SequencedMap<String, String> bundled = new LinkedHashMap<>();
        for (int i = 0; i < namesAndDirectories.length; i += 2) bundled.put(namesAndDirectories[i], namesAndDirectories[i + 1]);
        return bundled;
    }

    /** The bundled text classifiers by name: the WordNet gloss classifiers of every family, then the fortune topic ones. */
    static final SequencedMap<String, String> TEXT_CLASSIFIERS = bundled(
            "mamba", "models/mamba-wordnet", "gptneox", "models/gptneox-wordnet", "mamba2", "models/mamba2-wordnet",
            "rwkv", "models/rwkv-wordnet", "griffin", "models/griffin-wordnet",
            "mamba-fortunes", "models/mamba-fortunes-topics", "gptneox-fortunes", "models/gptneox-fortunes-topics");

    /** A bundled model's directory under {@code home} when {@code name} is one of {@code bundled}'s names, else {@code name} as a path. */
    static Path directory(String name, SequencedMap<String, String> bundled, Path home) {
        return bundled.containsKey(name) ? home.resolve(bundled.get(name)) : Path.of(name);
    }

    /** --methods as methods, each once, in the order given. */
    static List<Method> methods(List<String> names) {
        List<Method> chosen = new ArrayList<>();
        for (String m : names) {
            try {
                Method method = Method.valueOf(m.trim());
                if (!chosen.contains(method)) chosen.add(method);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--methods: " + m + " is not one of raw, rollout, attribution");
            }
        }
        return chosen;
    }

    /**
     * --models as directories: a bundled name (key → directory under {@code home}) keeps its name as key,
     * any other directory is keyed by its file name; a name that is neither, or a key given twice, is refused.
     */
    static List<NamedModel> models(List<String> names, SequencedMap<String, String> bundled, Path home) {
        List<NamedModel> models = new ArrayList<>();
        for (String m : names) {
            String name = m.trim();
            Path dir = directory(name, bundled, home);
            if (!Files.isDirectory(dir)) {
                throw new IllegalArgumentException("--models: " + name + " is neither " + String.join(", ", bundled.sequencedKeySet()) + " nor a model directory");
            }
            String key = bundled.containsKey(name) ? name : dir.getFileName().toString();
            if (models.stream().anyMatch(s -> s.key().equals(key))) throw new IllegalArgumentException("--models names " + key + " twice");
            models.add(new NamedModel(key, dir));
        }
        return models;
    }

    /** What an evaluation reads: its models' directories and its data. */
    static List<Path> inputs(List<NamedModel> models, String data) {
        List<Path> inputs = new ArrayList<>(models.stream().map(NamedModel::dir).toList());
        inputs.add(Path.of(data));
        return inputs;
    }

    static List<NamedModel> relocated(List<NamedModel> models, UnaryOperator<Path> located) {
        return models.stream().map(m -> new NamedModel(m.key(), located.apply(m.dir()))).toList();
    }
}
