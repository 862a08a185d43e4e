package org.mambalens.engine.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * Writes a directory of outputs (a report and its pictures) in a hidden staging sibling that is moved into
 * place only when everything was written: a failed run leaves neither a half report nor an empty directory.
 * Into an existing directory the files are moved one by one, each replacing its namesake; other files stay.
 */
public final class OutputDirectory {
    // Staging directories of writes in progress: removed when the JVM is stopped (Ctrl-C, SIGTERM) before they are published.
    private static final Set<Path> IN_PROGRESS = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> IN_PROGRESS.forEach(DirectoryTree::deleteQuietly), "mambalens-staging-cleanup"));
    }

    private OutputDirectory() {
    }

    /** Runs {@code build} on the staging directory; returns what it returned, with the staging directory replaced by {@code dir}. */
    public static Path write(Path dir, Function<Path, Path> build) {
        Path absolute = dir.toAbsolutePath().normalize();
        if (Files.exists(absolute) && !Files.isDirectory(absolute)) throw new CheckpointException(dir, "exists and is not a directory");
        Path parent = absolute.getParent();
        if (parent == null) throw new CheckpointException(dir, "cannot write into the root directory");
        Path staging = parent.resolve("." + absolute.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".part");
        try {
            Files.createDirectories(parent);
            Files.createDirectory(staging);
            IN_PROGRESS.add(staging);
        } catch (IOException e) {
            throw new CheckpointException(dir, "cannot create the output directory: " + AtomicWrite.reason(e));
        }
        try {
            Path result = build.apply(staging);
            publish(staging, absolute);
            return absolute.resolve(staging.relativize(result.toAbsolutePath().normalize()));
        } catch (IOException e) {
            throw new CheckpointException(dir, "cannot write: " + AtomicWrite.reason(e));
        } finally {
            DirectoryTree.deleteQuietly(staging);   // after the outcome: a leftover hidden staging directory is all that can remain
            IN_PROGRESS.remove(staging);
        }
    }

    private static void publish(Path staging, Path dir) throws IOException {
        if (!Files.exists(dir)) {
            Files.move(staging, dir, StandardCopyOption.ATOMIC_MOVE);
            return;
        }
        List<Path> files;
        try (Stream<Path> walk = Files.walk(staging)) {
            files = walk.filter(Files::isRegularFile).toList();
        }
        for (Path f : files) {
            Path to = dir.resolve(staging.relativize(f));
            Files.createDirectories(to.getParent());
            Files.move(f, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
    }
}
