package org.mambalens.engine.io;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A request the heap cannot hold is refused naming the file, with advice that can be followed. */
class MemoryBudgetTest {
    private static final Path FILE = Path.of("image.png");

    @Test
    void aRequestLargerThanTheHeapGetsAnXmxThatWouldHoldIt() {
        assertThatCode(() -> MemoryBudget.require(1024, FILE, "the image")).doesNotThrowAnyException();
        long tooMuch = Runtime.getRuntime().maxMemory() * 4;
        assertThatThrownBy(() -> MemoryBudget.require(tooMuch, FILE, "the image"))
                .isInstanceOf(CheckpointException.class)
                .hasMessageStartingWith("image.png: the image needs")
                .hasMessageContaining("MAMBALENS_JAVA_OPTS=-Xmx" + ((tooMuch >> 30) * 3 / 2 + 1) + "g");
    }

    /** A size computed past Long.MAX_VALUE (a hostile header's dimensions) has no -Xmx to suggest: -Xmx0g was. */
    @Test
    void anOverflowedSizeIsRefusedWithoutAnXmx() {
        assertThatThrownBy(() -> MemoryBudget.require(Long.MIN_VALUE + 5, FILE, "the image"))
                .hasMessage("image.png: the image needs more than 2^63 bytes of memory; ask for less");
    }
}
