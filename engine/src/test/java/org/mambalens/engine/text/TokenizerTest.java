package org.mambalens.engine.text;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.mambalens.engine.Fixtures;

import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

/** Against the `tokenizers` library's own output (weights-tools/reference/train_demo_lm.py). */
class TokenizerTest {
    static final BpeTokenizer TOKENIZER = BpeTokenizer.load(Fixtures.repository().resolve("models/mamba-fortunes/tokenizer.json"));

    @Test
    void encodesAndDecodesLikeTheReference() {
        JsonNode cases = Fixtures.json(Fixtures.golden().resolve("demo/tokenizer_cases.json"));
        assertThat(cases.size()).isGreaterThan(250);
        int checked = 0;
        for (JsonNode c : cases) {
            String text = c.get("text").asText();
            int[] expected = Fixtures.ints(c.get("ids"));
            assertThat(TOKENIZER.encode(text)).as("encode %s", text).containsExactly(expected);
            assertThat(TOKENIZER.decode(expected)).as("decode %s", text).isEqualTo(c.get("decoded").asText());
            checked++;
        }
        assertThat(checked).isEqualTo(cases.size());
    }

    @Test
    void streamingHoldsBackIncompleteCharacters() {
        String text = "emoji \uD83D\uDE00 and caf\u00e9 \u65e5\u672c";
        int[] ids = TOKENIZER.encode(text);
        StreamingDecoder stream = new StreamingDecoder(TOKENIZER);
        StringBuilder out = new StringBuilder();
        for (int id : ids) {
            String piece = stream.accept(id);
            assertThat(piece).doesNotContain("\uFFFD");
            out.append(piece);
        }
        out.append(stream.flush());
        assertThat(out.toString()).isEqualTo(text);
        assertThat(StreamingDecoder.completePrefix("a\u00e9".getBytes(StandardCharsets.UTF_8))).isEqualTo(3);
        byte[] cut = {'a', (byte) 0xF0, (byte) 0x9F};
        assertThat(StreamingDecoder.completePrefix(cut)).isEqualTo(1);
    }
}
