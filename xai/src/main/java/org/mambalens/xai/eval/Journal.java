package org.mambalens.xai.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32;

/**
 * The append-only record of a run's finished items: a line with the run's config, then one JSON object per item, whose
 * index is its field {@code key} ("image", "text"). A run stopped part-way resumes from it (see {@link LocalRun#resume}).
 */
record Journal(Path file, String key, Map<Integer, JsonNode> done) {
    static final String FILE = "journal.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The journal at {@code file}, started with {@code config} when absent or empty; refuses one started with another config. */
    static Journal open(Path file, ObjectNode config, String key) {
        Map<Integer, JsonNode> done = new TreeMap<>();
        Path dir = file.toAbsolutePath().getParent();
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw new IllegalArgumentException("--out " + dir + " is a file, not a directory");
        try {
            Files.createDirectories(dir);
            if (!Files.exists(file) || Files.size(file) == 0) {
                Files.writeString(file, JSON.writeValueAsString(JSON.createObjectNode().set("config", config)) + "\n", StandardCharsets.UTF_8);
                return new Journal(file, key, done);
            }
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            JsonNode head = JSON.readTree(lines.getFirst()).path("config");
            if (!head.equals(JSON.readTree(JSON.writeValueAsString(config)))) {
                throw new IllegalArgumentException(file + " holds a run with other models, methods or settings (" + head
                        + "); give another --out or remove it");
            }
            for (String line : lines.subList(1, lines.size())) {
                try {
                    JsonNode n = JSON.readTree(line);
                    done.put(n.get(key).asInt(), n);
                } catch (IOException | NullPointerException e) {
                    // a line cut short by an interruption: that item is simply done again
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
        return new Journal(file, key, done);
    }

    synchronized void append(ObjectNode line) {
        try {
            Files.writeString(file, JSON.writeValueAsString(line) + "\n", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Removes a journal that holds no item, an earlier run's or this one's (a run that failed before its first item
     * leaves nothing behind), and {@code createdDir} with it when this run created it and it is now empty.
     */
    void discardIfEmpty(Path createdDir) {
        try {
            if (Files.readAllLines(file, StandardCharsets.UTF_8).size() > 1) return;     // the config line, then items
            Files.deleteIfExists(file);
            if (createdDir != null) Files.deleteIfExists(createdDir);
        } catch (IOException e) {
            // something else is in the directory: it stays
        }
    }

    /** CRC-32 of a model directory's config.json and weights: the same model wherever its directory lies. */
    static String fingerprint(Path dir) {
        CRC32 crc = new CRC32();
        try (var files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.getFileName().toString().matches("config\\.json|.*\\.safetensors")).sorted().toList()) {
                try (var in = Files.newInputStream(f)) {
                    byte[] buf = new byte[1 << 16];
                    for (int r; (r = in.read(buf)) > 0; ) crc.update(buf, 0, r);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": " + e.getMessage(), e);
        }
        return Long.toHexString(crc.getValue());
    }
}
