package org.mambalens.engine.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes a file through a temporary sibling renamed into place, so a failure never leaves half a file,
 * nor the temporary file, nor the parent directories it had to create. The file gets the mode a shell's
 * {@code >} would give it: an existing file keeps its mode, a new one 0666 less the umask. A symbolic link
 * is followed, as {@code >} follows it: its target is replaced and the link stays.
 */
public final class AtomicWrite {
    /** What goes into the file. */
    @FunctionalInterface
    public interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    private AtomicWrite() {
    }

    public static void write(Path file, Content content) {
        Path target = target(file);
        List<Path> created = new ArrayList<>();
        Path tmp = null;
        try {
            createParents(target.getParent(), created);
            tmp = target.resolveSibling("." + target.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".part");
            // No permission attributes here: the OS applies the umask, which Java cannot read.
            try (OutputStream out = Files.newOutputStream(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                content.writeTo(out);
            }
            if (Files.exists(target)) copyMode(target, tmp);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            undo(tmp, created);
            throw new CheckpointException(file, "cannot write: " + reason(e));
        } catch (RuntimeException | Error e) {
            undo(tmp, created);
            throw e;
        }
    }

    /** The file the bytes go to: {@code file} itself, or the file its symbolic link points at; refused when it cannot be a regular file. */
    private static Path target(Path file) {
        Path target = file.toAbsolutePath();
        if (Files.isSymbolicLink(target)) {
            try {
                target = target.toRealPath();
            } catch (IOException e) {
                throw new CheckpointException(file, "is a symbolic link to a missing file");
            }
        }
        if (Files.isDirectory(target)) throw new CheckpointException(file, "is a directory; give a file name");
        if (Files.exists(target, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(target)) {
            throw new CheckpointException(file, "exists and is not a regular file");
        }
        return target;
    }

    private static void createParents(Path dir, List<Path> created) throws IOException {
        if (dir == null || Files.isDirectory(dir)) return;
        if (Files.exists(dir)) throw new CheckpointException(dir, "is a file, so nothing can be written under it");
        createParents(dir.getParent(), created);
        Files.createDirectory(dir);
        created.add(dir);
    }

    private static void copyMode(Path from, Path to) throws IOException {
        PosixFileAttributeView view = Files.getFileAttributeView(from, PosixFileAttributeView.class);
        if (view != null) Files.setPosixFilePermissions(to, view.readAttributes().permissions());
    }

    /** Removes what a failed write made: the temporary file and the directories created for it, deepest first. */
    private static void undo(Path tmp, List<Path> created) {
        deleteQuietly(tmp);
        for (int i = created.size() - 1; i >= 0; i--) deleteQuietly(created.get(i));
    }

    private static void deleteQuietly(Path path) {
        if (path == null) return;
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // Cleaning up after a failure already reported: the first error is the one the user needs.
        }
    }

    /** An I/O failure in words, without Java's exception class names. */
    public static String reason(IOException e) {
        if (e instanceof FileSystemException fs && fs.getReason() != null) return fs.getReason();
        if (e instanceof java.nio.file.NoSuchFileException) return "no such file or directory";
        if (e instanceof java.nio.file.AccessDeniedException) return "permission denied";
        if (e instanceof java.nio.file.FileAlreadyExistsException) return "already exists";
        return e.getMessage() == null ? "I/O error" : e.getMessage();
    }
}
