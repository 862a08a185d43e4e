package org.mambalens.cli;

import com.code_intelligence.jazzer.junit.FuzzTest;

/** The CLI's id lists under Jazzer: parsed, or refused in one line naming --token-ids; parsed lists print back as they parse. */
class TokenIdsFuzzTest {
    @FuzzTest
    void tokenIds(String text) {
        int[] ids;
        try {
            ids = TokenIds.parse(text);
        } catch (IllegalArgumentException refused) {
            if (refused.getClass() != IllegalArgumentException.class || !refused.getMessage().startsWith("--token-ids") || refused.getMessage().contains("\n")) {
                throw new AssertionError("not a one-line refusal naming --token-ids: " + refused);
            }
            return;
        }
        if (!java.util.Arrays.equals(TokenIds.parse(TokenIds.format(ids)), ids)) throw new AssertionError("ids do not print back: " + text);
    }
}
