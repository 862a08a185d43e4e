package org.mambalens.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The one way outputs are written: as a shell's {@code >} would leave them, or not at all. */
class AtomicWriteTest {
    @TempDir
    Path tmp;

    @Test
    void aNewFileGetsTheModeTheUmaskGivesNotOwnerOnly() throws IOException {
        Path probe = Files.createFile(tmp.resolve("probe"));     // created as any program creates a file: 0666 less the umask
        Path written = tmp.resolve("out.bin");
        AtomicWrite.write(written, out -> out.write(1));
        assertThat(Files.getPosixFilePermissions(written)).isEqualTo(Files.getPosixFilePermissions(probe));
    }

    @Test
    void anExistingFileKeepsItsMode() throws IOException {
        Path file = Files.writeString(tmp.resolve("out.bin"), "old");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r-----"));
        AtomicWrite.write(file, out -> out.write('n'));
        assertThat(Files.readString(file)).isEqualTo("n");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-r-----");
    }

    @Test
    void aSymbolicLinkIsFollowedAndStays() throws IOException {
        Path target = Files.writeString(tmp.resolve("target.bin"), "old");
        Path link = Files.createSymbolicLink(tmp.resolve("link.bin"), target.getFileName());
        AtomicWrite.write(link, out -> out.write('n'));
        assertThat(Files.isSymbolicLink(link)).isTrue();
        assertThat(Files.readString(target)).isEqualTo("n");
        Path dangling = Files.createSymbolicLink(tmp.resolve("dangling.bin"), tmp.resolve("missing/file.bin"));
        assertThatThrownBy(() -> AtomicWrite.write(dangling, out -> out.write(1))).isInstanceOf(CheckpointException.class)
                .hasMessageContaining("dangling.bin").hasMessageContaining("symbolic link");
    }

    @Test
    void aDirectoryOrAFailedWriteLeavesNothingBehind() throws IOException {
        assertThatThrownBy(() -> AtomicWrite.write(tmp, out -> out.write(1))).isInstanceOf(CheckpointException.class).hasMessageContaining("is a directory");
        Path deep = tmp.resolve("new/deeper/out.bin");
        assertThatThrownBy(() -> AtomicWrite.write(deep, out -> {
            out.write(1);
            throw new IOException("disk full");
        })).isInstanceOf(CheckpointException.class).hasMessageContaining("out.bin").hasMessageContaining("disk full");
        try (Stream<Path> left = Files.list(tmp)) {
            assertThat(left).isEmpty();
        }
    }

    /** A path under a file: the file is named for what it is, not "already exists" (what creating it as a directory says). */
    @Test
    void aParentThatIsAFileIsNamed() throws IOException {
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        assertThatThrownBy(() -> AtomicWrite.write(file.resolve("sub/out.bin"), out -> out.write(1))).isInstanceOf(CheckpointException.class)
                .hasMessage(file + ": is a file, so nothing can be written under it");
        assertThat(Files.readString(file)).isEqualTo("x");
    }
}
