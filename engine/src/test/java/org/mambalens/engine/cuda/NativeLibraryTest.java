package org.mambalens.engine.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Finding CUDA's libraries (NVRTC, cuBLAS, the driver), and the one line that says where it looked when it finds none. */
class NativeLibraryTest {
    @TempDir
    Path tmp;

    @Test
    void anExplicitFileIsTheOnlyOneTriedAndNamedWhenItFails() {
        String before = System.getProperty(Nvrtc.PROPERTY);
        System.setProperty(Nvrtc.PROPERTY, "/nonexistent");
        try {
            assertThatThrownBy(() -> NativeLibrary.open(Nvrtc.NEED, Nvrtc.PROPERTY, Nvrtc.NAMES, List.of(tmp), null))
                    .isInstanceOf(CudaException.class)
                    .hasMessage("NVRTC (the CUDA run-time compiler) is needed to compile the kernels: cannot load /nonexistent (-Dmambalens.cuda.nvrtc)");
        } finally {
            restore(before);
        }
    }

    @Test
    void nothingFoundSaysInOneLineWhereItLookedAndHowToNameTheFile() throws IOException {
        String before = System.getProperty(Nvrtc.PROPERTY);
        System.clearProperty(Nvrtc.PROPERTY);
        Path a = Files.createDirectory(tmp.resolve("a")), b = Files.createDirectory(tmp.resolve("b"));
        try {
            assertThatThrownBy(() -> NativeLibrary.open(Nvrtc.NEED, Nvrtc.PROPERTY, List.of("libnvrtc.so.99", "libnvrtc-none.so"), List.of(a, b), null))
                    .isInstanceOf(CudaException.class)
                    .hasMessage("NVRTC (the CUDA run-time compiler) is needed to compile the kernels: looked for libnvrtc.so.99, "
                            + "libnvrtc-none.so in " + a + ", " + b + " and on the loader's path; set -Dmambalens.cuda.nvrtc=FILE to name it");
        } finally {
            restore(before);
        }
    }

    @Test
    void candidatesGoDirectoryByDirectoryNewestNameFirst() throws IOException {
        Path a = Files.createDirectory(tmp.resolve("a")), b = Files.createDirectory(tmp.resolve("b"));
        Files.createFile(a.resolve("libnvrtc.so"));
        Files.createFile(b.resolve("libnvrtc.so.13"));
        Files.createFile(b.resolve("libnvrtc.so.12"));
        assertThat(NativeLibrary.candidates(Nvrtc.NAMES, List.of(tmp.resolve("missing"), a, b)))
                .containsExactly(a.resolve("libnvrtc.so"), b.resolve("libnvrtc.so.13"), b.resolve("libnvrtc.so.12"));
    }

    @Test
    void versionedDirectoriesAreSortedNewestFirstByNumber() {
        List<Path> dirs = List.of(Path.of("/usr/local/cuda-12.4"), Path.of("/usr/local/cuda-12.10"), Path.of("/usr/local/cuda-11.8"),
                Path.of("/usr/local/cuda-13.0"), Path.of("/usr/local/cuda-12"));
        assertThat(NativeLibrary.newestFirst(dirs)).extracting(p -> p.getFileName().toString())
                .containsExactly("cuda-13.0", "cuda-12.10", "cuda-12.4", "cuda-12", "cuda-11.8");
    }

    @Test
    void theCudaDirectoriesAreThoseThatExist() {
        assertThat(NativeLibrary.cudaDirectories("cuda_nvrtc", "cu13")).allSatisfy(d -> assertThat(d).isDirectory()).doesNotHaveDuplicates();
    }

    private static void restore(String value) {
        if (value == null) System.clearProperty(Nvrtc.PROPERTY);
        else System.setProperty(Nvrtc.PROPERTY, value);
    }
}
