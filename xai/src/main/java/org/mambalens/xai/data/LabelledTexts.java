package org.mambalens.xai.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.io.InputFile;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Labelled texts, one JSON object per line: {@code {"text": "...", "label": k, ...}} (other fields are kept
 * out). The bundled test splits: {@code data/wordnet-glosses/test.jsonl} (WordNet noun glosses by lexicographer
 * category, made by weights-tools/reference/wordnet_glosses.py from Debian's wordnet-base; the default) and
 * {@code data/fortunes-topics/test.jsonl} (Debian's fortunes by topic, made by text_classifiers.py).
 */
public record LabelledTexts(Path file, List<LabelledTexts.Text> texts) {
    public static final String BUNDLED_TEST = "data/wordnet-glosses/test.jsonl";
    public static final String FORTUNES_TEST = "data/fortunes-topics/test.jsonl";

    public record Text(String text, int label) {
    }

    /** Reads {@code file}; a line that is not such an object, or a label outside [0, labels), is refused naming the line. */
    public static LabelledTexts read(Path file, int labels) {
        List<String> lines;
        try {
            lines = Files.readAllLines(InputFile.wholeInMemory(file, InputFile.JSON_EXPANSION), StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new CheckpointException(file, "not UTF-8 text");
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read labelled texts: " + e.getMessage());
        }
        ObjectMapper json = new ObjectMapper();
        List<Text> texts = new ArrayList<>();
        for (int n = 0; n < lines.size(); n++) {
            if (lines.get(n).isBlank()) continue;
            String where = "line " + (n + 1) + ": ";
            JsonNode row;
            try {
                row = json.readTree(lines.get(n));
            } catch (JsonProcessingException e) {
                throw new CheckpointException(file, where + "not JSON (" + e.getOriginalMessage().lines().findFirst().orElse("") + ")");
            }
            if (row == null || !row.path("text").isTextual() || !row.path("label").isIntegralNumber() || !row.path("label").canConvertToInt()) {
                throw new CheckpointException(file, where + "expected {\"text\": string, \"label\": integer}");
            }
            int label = row.get("label").asInt();
            if (label < 0 || label >= labels) throw new CheckpointException(file, where + "label " + label + " is outside the model's labels [0, " + labels + ")");
            texts.add(new Text(row.get("text").asText(), label));
        }
        if (texts.isEmpty()) throw new CheckpointException(file, "no labelled texts");
        return new LabelledTexts(file, List.copyOf(texts));
    }

    public int size() {
        return texts.size();
    }

    public Text get(int i) {
        return texts.get(i);
    }
}
