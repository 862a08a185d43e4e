package org.mambalens.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

class DirectoryTreeTest {
    @TempDir
    Path tmp;

    @Test
    void aTreeGoesWithEverythingUnderItButNotWhatItsLinksPointAt() throws IOException {
        Path outside = Files.writeString(tmp.resolve("outside.txt"), "keep");
        Path root = Files.createDirectories(tmp.resolve("root/a/b"));
        Files.writeString(root.resolve("file.txt"), "x");
        Files.createSymbolicLink(tmp.resolve("root/a/link"), outside);
        Files.createSymbolicLink(tmp.resolve("root/dirlink"), tmp);
        DirectoryTree.delete(tmp.resolve("root"));
        assertThat(tmp.resolve("root")).doesNotExist();
        assertThat(outside).hasContent("keep");
    }

    @Test
    void aMissingTreeIsNothingToDo() throws IOException {
        DirectoryTree.delete(tmp.resolve("missing"));
        assertThat(DirectoryTree.deleteQuietly(tmp.resolve("missing"))).isTrue();
    }

    @Test
    void quietlyReportsWhatItCouldNotDelete() throws IOException {
        Path root = Files.createDirectories(tmp.resolve("locked/inner"));
        Files.writeString(root.resolve("file.txt"), "x");
        root.toFile().setWritable(false);
        try {
            boolean deleted = DirectoryTree.deleteQuietly(tmp.resolve("locked"));
            // root may ignore permissions; otherwise the file cannot go and the call says so
            assertThat(deleted).isEqualTo(!Files.exists(tmp.resolve("locked")));
        } finally {
            root.toFile().setWritable(true);
        }
    }
}
