package org.mambalens.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * What makes a checkpoint a sequence classifier rather than a causal LM: config.json's {@code architectures}
 * names a {@code …ForSequenceClassification}, its head is {@code score.weight} [num_labels, hidden] (no bias),
 * read at the last token that is not {@code pad_token_id}; {@code id2label} names the labels.
 */
public record SequenceClassification(List<String> labels, int padTokenId) {

    /** The classifier described by config.json, or null when it describes a causal LM. */
    public static SequenceClassification from(ConfigFile f) {
        JsonNode architectures = f.json().path("architectures");
        boolean classifier = false;
        for (JsonNode a : architectures) classifier |= a.asText().endsWith("ForSequenceClassification");
        if (!classifier) return null;
        JsonNode names = f.json().path("id2label");
        int n = f.json().has("num_labels") ? f.positiveInt("num_labels") : names.size();
        if (n <= 0) throw f.error("a sequence classifier needs \"id2label\" or \"num_labels\"");
        if (names.size() > 0 && names.size() != n) throw f.error("\"id2label\" has " + names.size() + " labels, \"num_labels\" says " + n);
        List<String> labels = new ArrayList<>(n);
        for (int k = 0; k < n; k++) {
            JsonNode name = names.get(Integer.toString(k));
            if (names.size() > 0 && (name == null || !name.isTextual())) throw f.error("\"id2label\" has no name for label " + k);
            labels.add(name == null ? "LABEL_" + k : name.asText());
        }
        if (!f.has("pad_token_id")) throw f.error("a sequence classifier needs \"pad_token_id\" (it reads the last token that is not a pad)");
        return new SequenceClassification(List.copyOf(labels), f.intOr("pad_token_id", 0));
    }

    /** The head in place of the LM's: {@code score.weight} [labels, hidden], no bias. */
    public Tensor score(Checkpoint checkpoint, int hidden) {
        return checkpoint.tensor("score.weight", labels.size(), hidden);
    }

    /** The position a classifier reads: the right-most id that is not the pad token (0 when all are pads), as transformers does. */
    public int readPosition(int[] ids) {
        for (int t = ids.length - 1; t >= 0; t--) {
            if (ids[t] != padTokenId) return t;
        }
        return 0;
    }
}
