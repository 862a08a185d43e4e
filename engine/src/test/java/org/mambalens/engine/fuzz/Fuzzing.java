package org.mambalens.engine.fuzz;

import org.mambalens.engine.io.CheckpointException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What every fuzz target shares: its input written to a file the loader reads, and the rule that the only
 * exception a loader may throw is the project's one-line file error. Anything else (an
 * IndexOutOfBoundsException, an OutOfMemoryError, a NumberFormatException) escapes to Jazzer as a finding.
 */
public final class Fuzzing {
    private static final Path DIR = temporaryDirectory();

    private Fuzzing() {
    }

    @FunctionalInterface
    public interface Load {
        void run() throws IOException;
    }

    /** Runs {@code load}; a refusal must be a {@link CheckpointException} of one line. */
    public static void loadsOrRefusesInOneLine(Load load) {
        try {
            load.run();
        } catch (CheckpointException refused) {
            if (refused.getMessage().contains("\n")) throw new AssertionError("a refusal of more than one line: " + refused.getMessage());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code bytes} as the file {@code name} in this JVM's fuzzing directory (rewritten each run). */
    public static Path file(String name, byte[] bytes) {
        try {
            return Files.write(DIR.resolve(name), bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A directory of the fuzzing directory, made once. */
    public static Path directory(String name) {
        try {
            return Files.createDirectories(DIR.resolve(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Path temporaryDirectory() {
        try {
            Path dir = Files.createTempDirectory("mambalens-fuzz");
            dir.toFile().deleteOnExit();
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
