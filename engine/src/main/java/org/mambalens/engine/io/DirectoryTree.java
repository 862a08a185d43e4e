package org.mambalens.engine.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Deleting a directory and everything under it, deepest first. Links are deleted, never followed (Files.walk does not
 * follow them), so a link inside the tree cannot take files outside it along.
 */
public final class DirectoryTree {
    private DirectoryTree() {
    }

    /** Deletes {@code root} and everything under it; nothing when it does not exist. The first failure is thrown. */
    public static void delete(Path root) throws IOException {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (UncheckedIOException e) {             // from the walk itself
            throw e.getCause();
        }
    }

    /**
     * {@link #delete}, for cleaning up once the outcome is decided (a run's staging directory, a job's temporary files):
     * a failure leaves files behind and is not a reason to fail. Returns whether everything went.
     */
    public static boolean deleteQuietly(Path root) {
        try {
            delete(root);
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
