package org.mambalens.engine.text;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Turns tokens into text as they are generated. A token may end inside a multi-byte UTF-8 character,
 * so bytes are held back until the characters they start are complete.
 */
public final class StreamingDecoder {
    private final BpeTokenizer tokenizer;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    public StreamingDecoder(BpeTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** The text that this token completes (possibly empty); a special token (end of text, padding) adds none, as in transformers' pipelines. */
    public String accept(int id) {
        if (tokenizer.isSpecial(id)) return "";
        pending.writeBytes(tokenizer.tokenBytes(id));
        byte[] b = pending.toByteArray();
        int complete = completePrefix(b);
        pending.reset();
        pending.write(b, complete, b.length - complete);
        return new String(b, 0, complete, StandardCharsets.UTF_8);
    }

    /** Whatever is still held back, decoded with replacement characters. */
    public String flush() {
        String s = pending.toString(StandardCharsets.UTF_8);
        pending.reset();
        return s;
    }

    /** Length of the longest prefix that does not end in an unfinished UTF-8 sequence. */
    static int completePrefix(byte[] b) {
        int n = b.length;
        for (int back = 1; back <= Math.min(3, n); back++) {
            int lead = b[n - back] & 0xFF;
            if ((lead & 0xC0) == 0x80) continue;                 // continuation byte: look further back
            int need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            return need > back ? n - back : n;
        }
        return n;
    }
}
