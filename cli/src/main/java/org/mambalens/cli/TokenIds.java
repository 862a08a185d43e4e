package org.mambalens.cli;

import picocli.CommandLine.Option;

import java.util.Arrays;
import java.util.stream.Collectors;

/** Comma-separated token ids, as {@code --token-ids} takes and {@code --print-ids} prints them. */
final class TokenIds {
    private TokenIds() {
    }

    /** A required {@code --token-ids IDS} (forward, gradient). */
    static final class Required {
        @Option(names = "--token-ids", required = true, paramLabel = "IDS", description = "Comma-separated token ids, e.g. 5,17,3.")
        String text;

        int[] parse() {
            return TokenIds.parse(text);
        }
    }

    static int[] parse(String text) {
        if (text == null || text.isBlank()) throw new IllegalArgumentException("--token-ids is empty");
        // -1: an empty item ("1,,2", a trailing comma, a lone comma) is an error, not silently dropped.
        String[] parts = text.split(",", -1);
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i].strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--token-ids: \"" + parts[i].strip().replaceAll("\\p{Cntrl}", "?") + "\" is not an integer");
            }
            if (ids[i] < 0) throw new IllegalArgumentException("--token-ids: " + ids[i] + " is negative");
        }
        return ids;
    }

    static String format(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }
}
