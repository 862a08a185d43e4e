package org.mambalens.engine.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The kernels' compile cache. The key and the cache's place need nothing; the rest needs NVRTC (no GPU: NVRTC
 * only compiles) and is skipped, saying why, where there is none.
 */
class KernelCompilerTest {
    static final String SOURCE = "extern \"C\" __global__ void f(float* x) { x[0] = 1.f; }";

    @TempDir
    Path tmp;

    @Test
    void theCacheKeyChangesWithSourceVersionTargetAndOptionsAndWithNothingElse() {
        List<String> options = KernelCompiler.OPTIONS;
        String key = KernelCompiler.cacheKey(SOURCE, "13.0", "sm_90", options);
        assertThat(KernelCompiler.cacheKey(SOURCE, "13.0", "sm_90", List.copyOf(options))).isEqualTo(key).hasSize(64);
        assertThat(List.of(
                KernelCompiler.cacheKey(SOURCE + " ", "13.0", "sm_90", options),
                KernelCompiler.cacheKey(SOURCE, "12.8", "sm_90", options),
                KernelCompiler.cacheKey(SOURCE, "13.0", "sm_89", options),
                KernelCompiler.cacheKey(SOURCE, "13.0", "compute_90", options),
                KernelCompiler.cacheKey(SOURCE, "13.0", "sm_90", List.of("--std=c++17")),
                KernelCompiler.cacheKey(SOURCE, "13.0", "sm_90", List.of(String.join("", options))))).doesNotContain(key).doesNotHaveDuplicates();
        assertThat(KernelCompiler.cacheKey("a", "b", "c", List.of())).as("fields do not run into each other")
                .isNotEqualTo(KernelCompiler.cacheKey("ab", "", "c", List.of()));
    }

    @Test
    void theCacheIsThePropertyElseXdgCacheHomeElseTheHomeCache() {
        assertThat(KernelCompiler.cacheDirectory("/d", "/xdg", "/home/u")).isEqualTo(Path.of("/d"));
        assertThat(KernelCompiler.cacheDirectory(null, "/xdg", "/home/u")).isEqualTo(Path.of("/xdg/mambalens/cuda"));
        assertThat(KernelCompiler.cacheDirectory(null, null, "/home/u")).isEqualTo(Path.of("/home/u/.cache/mambalens/cuda"));
        assertThat(KernelCompiler.cacheDirectory(null, "relative", "/home/u")).as("a relative XDG_CACHE_HOME is ignored")
                .isEqualTo(Path.of("/home/u/.cache/mambalens/cuda"));
    }

    @Test
    void eachSourceIsCompiledOnceThenReadFromTheCache() throws IOException {
        Nvrtc nvrtc = nvrtc();
        List<KernelSource> sources = KernelSource.all();
        KernelCompiler first = new KernelCompiler(nvrtc, 80, tmp);
        assertThat(first.target()).isEqualTo("sm_80");
        List<List<KernelCompiler.Image>> images = new ArrayList<>();
        assertThat(stderrOf(() -> images.add(first.images(sources))))
                .matches("mambalens: compiling CUDA kernels for sm_80 with NVRTC \\d+\\.\\d+ \\(first run only\\) … \\d+\\.\\d s\n");
        List<KernelCompiler.Image> compiled = images.getFirst();
        assertThat(first.compilations()).isEqualTo(sources.size());
        assertThat(compiled).allSatisfy(image -> {
            assertThat(image.cached()).isFalse();
            assertThat(new String(image.bytes(), 1, 3, StandardCharsets.US_ASCII)).as("a CUBIN is an ELF file").isEqualTo("ELF");
        });
        for (KernelSource s : sources) assertThat(first.cacheFile(s)).exists();

        KernelCompiler second = new KernelCompiler(nvrtc, 80, tmp);
        assertThat(stderrOf(() -> images.add(second.images(sources)))).as("a cache hit prints nothing").isEmpty();
        List<KernelCompiler.Image> cached = images.getLast();
        assertThat(second.compilations()).isZero();
        for (int i = 0; i < sources.size(); i++) {
            assertThat(cached.get(i).cached()).isTrue();
            assertThat(cached.get(i).bytes()).isEqualTo(compiled.get(i).bytes());
        }
        try (var files = Files.list(tmp)) {
            assertThat(files.map(f -> f.getFileName().toString())).as("no temporary file is left").allMatch(n -> n.matches("[0-9a-f]{64}\\.cubin"));
        }
    }

    @Test
    void aCorruptEntryIsCompiledAgainAndReplaced() throws IOException {
        Nvrtc nvrtc = nvrtc();
        KernelSource source = new KernelSource("tiny.cu", SOURCE);
        KernelCompiler compiler = new KernelCompiler(nvrtc, 80, tmp);
        byte[] good = compiler.images(List.of(source)).getFirst().bytes();
        Files.write(compiler.cacheFile(source), new byte[]{1, 2, 3, 4, 5});
        KernelCompiler again = new KernelCompiler(nvrtc, 80, tmp);
        assertThat(again.images(List.of(source)).getFirst().bytes()).isEqualTo(good);
        assertThat(again.compilations()).isOne();
        assertThat(compiler.cacheFile(source)).hasBinaryContent(good);
    }

    @Test
    void anUnwritableCacheOnlyCostsACompileNextTime() throws IOException {
        Nvrtc nvrtc = nvrtc();
        Path notADirectory = Files.writeString(tmp.resolve("file"), "");    // root writes anywhere, but not under a file
        KernelSource source = new KernelSource("tiny.cu", SOURCE);
        for (int run = 0; run < 2; run++) {
            KernelCompiler compiler = new KernelCompiler(nvrtc, 80, notADirectory.resolve("cuda"));
            assertThat(compiler.images(List.of(source)).getFirst().bytes()).isNotEmpty();
            assertThat(compiler.compilations()).isOne();
        }
    }

    @Test
    void aGpuNewerThanNvrtcGetsPtxForTheNewestArchitectureNvrtcKnows() {
        Nvrtc nvrtc = nvrtc();
        KernelCompiler compiler = new KernelCompiler(nvrtc, 990, tmp);
        assertThat(compiler.target()).startsWith("compute_");
        byte[] ptx = compiler.images(List.of(new KernelSource("tiny.cu", SOURCE))).getFirst().bytes();
        assertThat(ptx[ptx.length - 1]).as("NUL-terminated, as cuModuleLoadData reads it").isZero();
        assertThat(new String(ptx, StandardCharsets.US_ASCII)).contains(".entry f(");
        assertThat(compiler.cacheFile(new KernelSource("tiny.cu", SOURCE)).getFileName().toString()).endsWith(".ptx");
    }

    @Test
    void aCompileErrorCarriesNvrtcsLog() {
        Nvrtc nvrtc = nvrtc();
        KernelCompiler compiler = new KernelCompiler(nvrtc, 80, tmp);
        assertThatThrownBy(() -> compiler.images(List.of(new KernelSource("broken.cu", "extern \"C\" __global__ void f(float* x) { x[0] = y; }"))))
                .isInstanceOf(CudaException.class)
                .hasMessageStartingWith("broken.cu: nvrtcCompileProgram failed: NVRTC_ERROR_COMPILATION (6) for sm_80:")
                .hasMessageContaining("broken.cu(1): error").hasMessageContaining("\"y\" is undefined");
    }

    private static String stderrOf(Runnable work) {
        PrintStream err = System.err;
        ByteArrayOutputStream said = new ByteArrayOutputStream();
        System.setErr(new PrintStream(said, true, StandardCharsets.UTF_8));
        try {
            work.run();
        } finally {
            System.setErr(err);
        }
        return said.toString(StandardCharsets.UTF_8);
    }

    /** Null when NVRTC can be opened here, else why not. */
    static String unavailableReason() {
        try {
            Nvrtc.get();
            return null;
        } catch (CudaException e) {
            return e.getMessage();
        }
    }

    static Nvrtc nvrtc() {
        String reason = unavailableReason();
        if (reason != null) {
            System.err.println("NVRTC test skipped: " + reason);
            Assumptions.abort("no NVRTC: " + reason);
        }
        return Nvrtc.get();
    }
}
