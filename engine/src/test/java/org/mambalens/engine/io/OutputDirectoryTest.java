package org.mambalens.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A report directory appears whole or not at all. */
class OutputDirectoryTest {
    @TempDir
    Path tmp;

    @Test
    void aFailedReportLeavesNoDirectoryAndNoFile() throws IOException {
        Path out = tmp.resolve("report");
        assertThatThrownBy(() -> OutputDirectory.write(out, dir -> {
            AtomicWrite.write(dir.resolve("input.png"), o -> o.write(1));
            throw new IllegalArgumentException("the image is refused");
        })).hasMessage("the image is refused");
        try (Stream<Path> left = Files.list(tmp)) {
            assertThat(left).isEmpty();
        }
    }

    @Test
    void aReportIsMovedIntoPlaceAndReplacesOnlyItsOwnFiles() throws IOException {
        Path out = tmp.resolve("report");
        Path report = OutputDirectory.write(out, dir -> {
            AtomicWrite.write(dir.resolve("sub/a.txt"), o -> o.write('a'));
            AtomicWrite.write(dir.resolve("report.html"), o -> o.write('r'));
            return dir.resolve("report.html");
        });
        assertThat(report).isEqualTo(out.toAbsolutePath().resolve("report.html"));
        assertThat(Files.readString(out.resolve("sub/a.txt"))).isEqualTo("a");
        Files.writeString(out.resolve("mine.txt"), "kept");
        OutputDirectory.write(out, dir -> {
            AtomicWrite.write(dir.resolve("report.html"), o -> o.write('2'));
            return dir.resolve("report.html");
        });
        assertThat(Files.readString(out.resolve("report.html"))).isEqualTo("2");
        assertThat(Files.readString(out.resolve("mine.txt"))).isEqualTo("kept");
        try (Stream<Path> siblings = Files.list(tmp)) {
            assertThat(siblings).containsExactly(out);
        }
    }
}
