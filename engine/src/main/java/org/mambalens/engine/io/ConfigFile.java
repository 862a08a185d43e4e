package org.mambalens.engine.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Files;
import java.nio.file.Path;

/** A checkpoint's config.json, with typed getters whose errors name the file and the key. */
public final class ConfigFile {
    private final Path path;
    private final JsonNode root;

    private ConfigFile(Path path, JsonNode root) {
        this.path = path;
        this.root = root;
    }

    /** config.json in this directory (or beside this file). */
    public static ConfigFile in(Path modelDir) {
        Path dir = Files.isDirectory(modelDir) ? modelDir : modelDir.toAbsolutePath().getParent();
        Path p = dir.resolve("config.json");
        if (!Files.isRegularFile(p)) throw new CheckpointException(p, "no config.json beside the checkpoint");
        return new ConfigFile(p, Checkpoint.readJson(p));
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
        if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() <= 0) throw new CheckpointException(path, "\"" + key + "\" must be a positive integer, got " + n);
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
        if (!n.isNumber() || !(n.asDouble() > 0)) throw new CheckpointException(path, "\"" + key + "\" must be a positive number, got " + n);
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
