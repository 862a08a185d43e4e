package org.mambalens.engine.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.SafetensorsWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A sequence classifier made from a language-model checkpoint: its config.json with {@code architectures}, {@code id2label}
 * and {@code pad_token_id} added, its weights as they are (same file, same dtypes), and a {@code score.weight} [labels, D]
 * in a second shard, so that the backbone is bit for bit the language model's.
 */
public final class ClassifierCheckpoint {
    private ClassifierCheckpoint() {
    }

    /** Writes into {@code out} the LM of {@code dir} as a classifier {@code architecture} scoring with {@code score} [labels, D]. */
    public static Path write(Path dir, Path out, String architecture, float[] score, int labels, int padTokenId) {
        try {
            Files.createDirectories(out);
            ObjectMapper json = new ObjectMapper();
            ObjectNode config = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
            config.putArray("architectures").add(architecture);
            ObjectNode names = config.putObject("id2label");
            for (int k = 0; k < labels; k++) names.put(Integer.toString(k), "label" + k);
            config.put("pad_token_id", padTokenId);
            json.writeValue(out.resolve("config.json").toFile(), config);
            Files.copy(dir.resolve(Checkpoint.SINGLE), out.resolve(Checkpoint.SINGLE));
            new SafetensorsWriter().addFloat32("score.weight", score, labels, score.length / labels).write(out.resolve("score.safetensors"));
            ObjectNode index = json.createObjectNode(), map = index.putObject("weight_map");
            try (Checkpoint ck = Checkpoint.open(dir)) {
                for (String name : ck.names()) map.put(name, Checkpoint.SINGLE);
            }
            map.put("score.weight", "score.safetensors");
            json.writeValue(out.resolve(Checkpoint.INDEX).toFile(), index);
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Rows {@code tokens} of the LM head of {@code dir} (its embeddings where the head is tied), [tokens, D] in F32. */
    public static float[] headRows(Path dir, int... tokens) {
        String[] keys = MovedEmbeddings.keys(dir);
        try (Checkpoint ck = Checkpoint.open(dir)) {
            float[] head = ck.tensor(ck.has(keys[1]) ? keys[1] : keys[0]).toFloatArray();
            int D = ck.tensor(keys[0]).dim(1);
            float[] rows = new float[tokens.length * D];
            for (int k = 0; k < tokens.length; k++) System.arraycopy(head, tokens[k] * D, rows, k * D, D);
            return rows;
        }
    }
}
