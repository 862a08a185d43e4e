package org.mambalens.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class NpyTest {
    @TempDir
    Path tmp;

    @Test
    void roundTripsFloat32WithA64ByteAlignedHeader() throws IOException {
        Path p = tmp.resolve("a.npy");
        float[] data = {1f, -2.5f, 3e-8f, Float.MAX_VALUE, 0f, 7f};
        Npy.writeFloat32(p, data, 2, 3);
        byte[] bytes = Files.readAllBytes(p);
        assertThat((bytes.length - data.length * 4) % 64).isZero();
        assertThat(new String(bytes, 10, 60)).contains("'descr': '<f4'", "'shape': (2, 3)");
        Npy.Array back = Npy.readFloat32(p);
        assertThat(back.shape()).containsExactly(2, 3);
        assertThat(back.data()).containsExactly(data);
        Npy.writeFloat32(p, new float[]{4f}, 1);
        assertThat(new String(Files.readAllBytes(p), 10, 60)).contains("'shape': (1,)");
    }

    @Test
    void leavesNothingBehindWhenTheShapeIsWrong() throws IOException {
        assertThatThrownBy(() -> Npy.writeFloat32(tmp.resolve("b.npy"), new float[3], 2, 2)).hasMessageContaining("does not hold");
        try (var files = Files.list(tmp)) {
            assertThat(files).isEmpty();
        }
    }

    @Test
    void refusesWhatIsNotNpy() throws IOException {
        Path p = tmp.resolve("c.npy");
        Files.writeString(p, "print('hello')");
        assertThatThrownBy(() -> Npy.readFloat32(p)).hasMessageStartingWith(p.toString()).hasMessageContaining("not an .npy file");
    }
}
