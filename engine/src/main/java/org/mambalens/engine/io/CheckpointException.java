package org.mambalens.engine.io;

import java.nio.file.Path;

/** A checkpoint, config or data file that cannot be used; the message names the file and says why in one line. */
public class CheckpointException extends RuntimeException {
    public CheckpointException(Path file, String why) {
        super(file + ": " + why);
    }

    public CheckpointException(Path file, String why, Throwable cause) {
        super(file + ": " + why, cause);
    }
}
