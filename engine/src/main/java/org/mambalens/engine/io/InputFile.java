package org.mambalens.engine.io;

import java.nio.file.Files;
import java.nio.file.Path;

/** The check every reader makes before it opens its file. */
public final class InputFile {
    /** What a JSON file becomes as text and a parsed tree: up to about this many times its size. */
    public static final int JSON_EXPANSION = 16;

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

    /**
     * {@code file}, checked as {@link #regular} and against the heap before it is read whole: what it becomes
     * in memory is about {@code expansion} times its size (1 for raw bytes, more for a parsed JSON tree).
     */
    public static Path wholeInMemory(Path file, int expansion) {
        try {
            MemoryBudget.require(MemoryBudget.product(Files.size(regular(file)), expansion), file, "reading it");
        } catch (java.io.IOException e) {
            throw new CheckpointException(file, "cannot read: " + AtomicWrite.reason(e));
        }
        return file;
    }
}
