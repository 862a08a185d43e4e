package org.mambalens.engine.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.SafetensorsWriter;
import org.mambalens.engine.tensor.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * A language-model checkpoint copied in F32 with rows appended to its embedding table: a token id of its own for
 * any input vector, so a test can move one position's input without touching anything else. The head gets zero
 * rows for the new ids (written out when it was tied), so the old logits are unchanged and the new ones are 0.
 */
public final class ExtendedVocabulary {
    /** model_type → the embedding table's and the head's tensor names. */
    private static final Map<String, String[]> NAMES = Map.of(
            "mamba", new String[]{"backbone.embeddings.weight", "lm_head.weight"},
            "mamba2", new String[]{"backbone.embeddings.weight", "lm_head.weight"},
            "rwkv", new String[]{"rwkv.embeddings.weight", "head.weight"});

    private ExtendedVocabulary() {
    }

    /** The embedding table [V, D] of the checkpoint in {@code dir}, in F32. */
    public static float[] table(Path dir) {
        try (Checkpoint ck = Checkpoint.open(dir)) {
            return ck.tensor(names(dir)[0]).toFloatArray();
        }
    }

    /** Writes into {@code out} the checkpoint of {@code dir} with {@code rows} [n, D] appended to its vocabulary (ids V … V + n − 1). */
    public static Path write(Path dir, Path out, float[] rows) {
        String[] names = names(dir);
        try {
            Files.createDirectories(out);
            ObjectMapper json = new ObjectMapper();
            ObjectNode config = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
            SafetensorsWriter writer = new SafetensorsWriter();
            try (Checkpoint ck = Checkpoint.open(dir)) {
                Tensor table = ck.tensor(names[0]);
                int V = table.dim(0), D = table.dim(1), extra = rows.length / D;
                float[] head = ck.has(names[1]) ? ck.tensor(names[1], V, D).toFloatArray() : table.toFloatArray();
                for (String name : ck.names()) {
                    Tensor t = ck.tensor(name);
                    if (name.equals(names[0])) {
                        float[] values = Arrays.copyOf(t.toFloatArray(), (V + extra) * D);
                        System.arraycopy(rows, 0, values, V * D, extra * D);
                        writer.addFloat32(name, values, V + extra, D);
                    } else if (!name.equals(names[1])) {
                        writer.addFloat32(name, t.toFloatArray(), t.shape());
                    }
                }
                writer.addFloat32(names[1], Arrays.copyOf(head, (V + extra) * D), V + extra, D);
                config.put("vocab_size", V + extra);
                config.put("tie_word_embeddings", false);
            }
            writer.write(out.resolve("model.safetensors"));
            json.writerWithDefaultPrettyPrinter().writeValue(out.resolve("config.json").toFile(), config);
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String[] names(Path dir) {
        String type = Families.forDirectory(dir).modelType();
        String[] names = NAMES.get(type);
        if (names == null) throw new IllegalArgumentException("no embedding names for model_type " + type);
        return names;
    }
}
