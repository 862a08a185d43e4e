package org.mambalens.engine.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/** The kernels' CUDA C sources as shipped: indexed, free of headers (NVRTC has none), and compilable. No GPU needed. */
class KernelSourceTest {
    @TempDir
    Path tmp;

    @Test
    void theIndexListsFilesThatExistAsResources() {
        List<String> index = KernelSource.index();
        assertThat(index).contains("mambalens.cu").doesNotHaveDuplicates();
        for (String name : index) {
            assertThat(KernelSource.class.getResource(KernelSource.DIRECTORY + name)).as(name).isNotNull();
            assertThat(name).endsWith(".cu");
        }
        assertThat(KernelSource.all()).extracting(KernelSource::name).isEqualTo(index);
    }

    @Test
    void noSourceIncludesAHeader() {
        for (KernelSource source : KernelSource.all()) {
            assertThat(source.text().lines().filter(l -> l.strip().matches("#\\s*include.*")))
                    .as("%s: NVRTC has no system headers; write what the header gave in the file", source.name()).isEmpty();
        }
    }

    /** nvcc where it is installed (this project's CI has none), else NVRTC; skipped only where neither is. */
    @Test
    void everyIndexedSourceCompiles() throws IOException, InterruptedException {
        Path nvcc = nvcc();
        if (nvcc == null) {
            String noNvrtc = KernelCompilerTest.unavailableReason();
            if (noNvrtc != null) {
                System.err.println("kernel compile test skipped: neither nvcc nor NVRTC here (" + noNvrtc + ")");
                Assumptions.abort("neither nvcc on PATH or in /usr/local/cuda/bin, nor NVRTC: " + noNvrtc);
            }
            var compiler = new KernelCompiler(Nvrtc.get(), 80, tmp);
            assertThat(compiler.images(KernelSource.all())).allSatisfy(image -> assertThat(image.bytes()).isNotEmpty());
            return;
        }
        for (KernelSource source : KernelSource.all()) {
            Path cu = Files.writeString(tmp.resolve(source.name()), source.text());
            Process p = new ProcessBuilder(nvcc.toString(), "--ptx", "-arch=sm_80", "-o", tmp.resolve("out.ptx").toString(), cu.toString())
                    .redirectErrorStream(true).start();
            String output = new String(p.getInputStream().readAllBytes());
            assertThat(p.waitFor(5, TimeUnit.MINUTES)).isTrue();
            assertThat(p.exitValue()).as("nvcc %s:\n%s", source.name(), output).isZero();
        }
    }

    private static Path nvcc() {
        Stream<Path> onPath = Stream.of(System.getenv().getOrDefault("PATH", "").split(":")).filter(d -> !d.isEmpty()).map(Path::of);
        return Stream.concat(onPath, Stream.of(Path.of("/usr/local/cuda/bin"))).map(d -> d.resolve("nvcc"))
                .filter(Files::isExecutable).findFirst().orElse(null);
    }
}
