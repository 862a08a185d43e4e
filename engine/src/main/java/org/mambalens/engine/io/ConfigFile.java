package org.mambalens.engine.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A checkpoint's config.json (or another JSON settings file), with typed getters whose errors name the file
 * and the key. Every positive integer is bounded: configs are read before any weight and their sizes and
 * counts size arrays, so a corrupt or hostile value is refused here, before anything is allocated from it.
 */
public final class ConfigFile {
    /** Layer counts: the deepest published models have a few hundred layers. */
    static final int MAX_LAYERS = 4096;
    /** Any other size or count (widths, vocabularies, positions): 2^24 is far beyond every published model. */
    static final int MAX_SIZE = 1 << 24;
    private static final Map<String, Integer> MAXIMUM = Map.of("num_hidden_layers", MAX_LAYERS, "depth", MAX_LAYERS);

    private final Path path;
    private final JsonNode root;

    private ConfigFile(Path path, JsonNode root) {
        this.path = path;
        this.root = root;
    }

    /** config.json in this directory (or beside this file). */
    public static ConfigFile in(Path modelDir) {
        if (!Files.exists(modelDir)) throw new CheckpointException(modelDir, "no such file or directory");
        Path dir = Files.isDirectory(modelDir) ? modelDir : modelDir.toAbsolutePath().getParent();
        Path p = dir.resolve("config.json");
        if (!Files.isRegularFile(p)) throw new CheckpointException(p, "no config.json beside the checkpoint");
        return new ConfigFile(p, Checkpoint.readJson(p));
    }

    /** Any JSON settings file, such as preprocessor_config.json. */
    public static ConfigFile of(Path file) {
        return new ConfigFile(file, Checkpoint.readJson(file));
    }

    public Path path() {
        return path;
    }

    public JsonNode json() {
        return root;
    }

    public boolean has(String key) {
        return root.hasNonNull(key);
    }

    public int positiveInt(String key) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) throw new CheckpointException(path, "missing \"" + key + "\"");
        int maximum = MAXIMUM.getOrDefault(key, MAX_SIZE);
        if (!n.isIntegralNumber() || !n.canConvertToLong() || n.asLong() <= 0 || n.asLong() > maximum) {
            throw new CheckpointException(path, "\"" + key + "\" must be an integer from 1 to " + maximum + ", got " + n);
        }
        return n.asInt();
    }

    public int positiveInt(String key, int fallback) {
        return has(key) ? positiveInt(key) : fallback;
    }

    public int intOr(String key, int fallback) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) return fallback;
        if (!n.isIntegralNumber() || !n.canConvertToInt()) throw new CheckpointException(path, "\"" + key + "\" must be an integer, got " + n);
        return n.asInt();
    }

    public boolean bool(String key, boolean fallback) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) return fallback;
        if (!n.isBoolean()) throw new CheckpointException(path, "\"" + key + "\" must be true or false, got " + n);
        return n.asBoolean();
    }

    public double positiveNumber(String key, double fallback) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) return fallback;
        if (!n.isNumber() || !(n.asDouble() > 0) || !Double.isFinite(n.asDouble())) throw new CheckpointException(path, "\"" + key + "\" must be a positive number, got " + n);
        return n.asDouble();
    }

    public String text(String key, String fallback) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) return fallback;
        if (!n.isTextual()) throw new CheckpointException(path, "\"" + key + "\" must be a string, got " + n);
        return n.asText();
    }

    public CheckpointException error(String why) {
        return new CheckpointException(path, why);
    }
}
