package org.mambalens.engine.io;

import java.nio.file.Files;
import java.nio.file.Path;

/** The check every reader makes before it opens its file. */
public final class InputFile {
    private InputFile() {
    }

    /**
     * {@code file}, when it is a regular file (or a link to one); refused in one line otherwise. Opening a FIFO
     * to read it would wait for a writer forever, and a directory or device is never what was meant.
     */
    public static Path regular(Path file) {
        if (Files.isRegularFile(file)) return file;
        if (Files.isDirectory(file)) throw new CheckpointException(file, "is a directory, not a file");
        throw new CheckpointException(file, Files.exists(file) ? "is not a regular file (a FIFO, socket or device)" : "no such file");
    }
}
