package org.mambalens.xai.data;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.Fixtures;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The bundled fortunes topic split: disjoint, labelled, and — where Debian's fortunes is installed — taken from it verbatim. */
class LabelledTextsTest {
    static final Path FORTUNES = Path.of("/usr/share/games/fortunes");
    static final List<String> LABELS = List.of("computers", "food", "law", "politics", "science");

    @TempDir
    Path tmp;

    @Test
    void theSplitIsDisjointAndComesFromTheFortuneFilesItNames() throws Exception {
        Path data = Fixtures.repository().resolve("data/fortunes-topics");
        LabelledTexts train = LabelledTexts.read(data.resolve("train.jsonl"), LABELS.size());
        LabelledTexts test = LabelledTexts.read(data.resolve("test.jsonl"), LABELS.size());
        assertThat(train.size()).isEqualTo(1914);
        assertThat(test.size()).isEqualTo(480);
        Set<String> seen = new HashSet<>();
        for (LabelledTexts.Text t : train.texts()) seen.add(t.text());
        for (LabelledTexts.Text t : test.texts()) assertThat(seen).as("a test text in the train split").doesNotContain(t.text());

        Assumptions.assumeTrue(Files.isDirectory(FORTUNES), "Debian's fortunes is not installed at " + FORTUNES + " (apt-get install fortunes)");
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        for (String split : new String[]{"train.jsonl", "test.jsonl"}) {
            for (String line : Files.readAllLines(data.resolve(split))) {
                var row = json.readTree(line);
                String file = row.get("file").asText();
                assertThat(LABELS.indexOf(file)).isEqualTo(row.get("label").asInt());
                assertThat(fortunes(file).get(row.get("index").asInt())).isEqualTo(row.get("text").asText());
            }
        }
    }

    @Test
    void badLinesAreRefusedNamingTheLine() throws Exception {
        Path file = tmp.resolve("texts.jsonl");
        Files.writeString(file, "{\"text\": \"a\", \"label\": 1}\n\n{\"text\": \"b\", \"label\": 7}\n");
        assertThatThrownBy(() -> LabelledTexts.read(file, 5)).isInstanceOf(org.mambalens.engine.io.CheckpointException.class).hasMessageContaining("texts.jsonl: line 3: label 7 is outside");
        Files.writeString(file, "not json\n");
        assertThatThrownBy(() -> LabelledTexts.read(file, 5)).hasMessageContaining("line 1: not JSON");
        Files.writeString(file, "\n");
        assertThatThrownBy(() -> LabelledTexts.read(file, 5)).hasMessageContaining("no labelled texts");
    }

    /** A fortune file's fortunes as text_classifiers.py (train_demo_lm.read_fortunes) splits them. */
    private static List<String> fortunes(String name) throws Exception {
        String text = new String(Files.readAllBytes(FORTUNES.resolve(name)), StandardCharsets.UTF_8);
        List<String> out = new ArrayList<>();
        for (String item : text.split("\n%\n", -1)) {
            String stripped = item.replaceAll("^\n+|\n+$", "");
            if (!stripped.isBlank()) out.add(stripped);
        }
        return out;
    }
}
