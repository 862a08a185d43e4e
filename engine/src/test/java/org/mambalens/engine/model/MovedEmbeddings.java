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
import java.util.Map;

/**
 * A language model's checkpoint rewritten in F32 with its input embedding table moved to E + step·R, for finite
 * differences of the input gradient: the explained logit changes by Σ_t ⟨∂logit/∂inputs_embeds_t, R[id_t]⟩. A head
 * tied to the table is written out as its own tensor (and the config untied), so that only the input moves.
 */
public final class MovedEmbeddings {
    /** Per model_type: the input embedding table's key and the output head's key. */
    private static final Map<String, String[]> KEYS = Map.of(
            "mamba", new String[]{"backbone.embeddings.weight", "lm_head.weight"},
            "mamba2", new String[]{"backbone.embeddings.weight", "lm_head.weight"},
            "rwkv", new String[]{"rwkv.embeddings.weight", "head.weight"},
            "recurrent_gemma", new String[]{"model.embed_tokens.weight", "lm_head.weight"},
            "gpt_neox", new String[]{"gpt_neox.embed_in.weight", "embed_out.weight"});

    private MovedEmbeddings() {
    }

    /** The embedding table's shape [V, D] and a random direction R of that many values (0.02·N(0, 1), seeded). */
    public static float[] direction(Path dir, long seed) {
        try (Checkpoint ck = Checkpoint.open(dir)) {
            Tensor e = ck.tensor(keys(dir)[0]);
            java.util.Random random = new java.util.Random(seed);
            float[] r = new float[Math.toIntExact(e.size())];
            for (int k = 0; k < r.length; k++) r[k] = (float) (0.02 * random.nextGaussian());
            return r;
        }
    }

    /** The checkpoint of {@code dir} in F32 in {@code out}, its input embeddings moved by step·direction. */
    public static Path write(Path dir, Path out, float[] direction, double step) {
        String[] keys = keys(dir);
        try {
            Files.createDirectories(out);
            ObjectMapper json = new ObjectMapper();
            ObjectNode config = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
            config.put("tie_word_embeddings", false);
            json.writeValue(out.resolve("config.json").toFile(), config);
            SafetensorsWriter writer = new SafetensorsWriter();
            try (Checkpoint ck = Checkpoint.open(dir)) {
                for (String name : ck.names()) {
                    Tensor t = ck.tensor(name);
                    float[] values = t.toFloatArray();
                    if (name.equals(keys[0])) {
                        if (!ck.has(keys[1])) writer.addFloat32(keys[1], values.clone(), t.shape());
                        for (int k = 0; k < values.length; k++) values[k] += (float) (step * direction[k]);
                    }
                    writer.addFloat32(name, values, t.shape());
                }
            }
            writer.write(out.resolve("model.safetensors"));
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** ⟨g, R[ids]⟩: the directional derivative that an input gradient g [L, D] predicts. */
    public static double predicted(float[] gradient, float[] direction, int[] ids) {
        int width = gradient.length / ids.length;
        double sum = 0;
        for (int t = 0; t < ids.length; t++) for (int j = 0; j < width; j++) sum += (double) gradient[t * width + j] * direction[ids[t] * width + j];
        return sum;
    }

    /** The input embedding table's key and the output head's key of the language model in {@code dir}. */
    static String[] keys(Path dir) {
        String type = Families.forDirectory(dir).modelType();
        String[] keys = KEYS.get(type);
        if (keys == null) throw new IllegalArgumentException("no embedding keys for model_type " + type);
        return keys;
    }
}
