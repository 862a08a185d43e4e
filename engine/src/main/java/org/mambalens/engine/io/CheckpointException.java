package org.mambalens.engine.io;

import java.nio.file.Path;

/**
 * A checkpoint, config or data file that cannot be used; the message names the file and says why in one
 * line. The reason often quotes the file itself (a header, a JSON value), so it is kept to one printable line
 * of bounded length whatever the file holds.
 */
public class CheckpointException extends RuntimeException {
    private static final int MAX_REASON = 400;

    public CheckpointException(Path file, String why) {
        super(file + ": " + printable(why));
    }

    public CheckpointException(Path file, String why, Throwable cause) {
        super(file + ": " + printable(why), cause);
    }

    /** Control characters escaped, runs of blanks squeezed, and cut at {@link #MAX_REASON} characters. */
    private static String printable(String why) {
        StringBuilder out = new StringBuilder(Math.min(why.length(), MAX_REASON + 1));
        for (int i = 0; i < why.length() && out.length() <= MAX_REASON; i++) {
            char c = why.charAt(i);
            if (c == ' ' && !out.isEmpty() && out.charAt(out.length() - 1) == ' ') continue;
            if (Character.isISOControl(c) || Character.getType(c) == Character.LINE_SEPARATOR || Character.getType(c) == Character.PARAGRAPH_SEPARATOR) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        if (out.length() > MAX_REASON) {
            out.setLength(MAX_REASON);
            out.append('…');
        }
        return out.toString();
    }
}
