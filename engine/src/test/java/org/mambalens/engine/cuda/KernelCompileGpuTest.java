package org.mambalens.engine.cuda;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The kernels compiled by NVRTC for the GPU present and loaded by the driver: the first run's compile time and
 * the cached second run's load time are printed on stdout for benchmarks/RESULTS.md (scripts/device-cuda.sh).
 */
class KernelCompileGpuTest {
    @TempDir
    Path cache;

    @BeforeEach
    void gpu() {
        GpuRequired.check();
    }

    @Test
    void aFirstRunCompilesForThisGpuAndASecondLoadsFromTheCache(@TempDir Path elsewhere) throws IOException {
        List<KernelSource> sources = KernelSource.all();
        try (Gpu gpu = Gpu.open()) {
            KernelCompiler first = new KernelCompiler(Nvrtc.get(), gpu.architecture(), cache);
            long start = System.nanoTime();
            List<Gpu.Module> modules = gpu.loadModules(first, sources);
            System.out.printf("first-run NVRTC compile: %d ms (%s, NVRTC %s, %s, %d files)%n", (System.nanoTime() - start) / 1_000_000,
                    first.target(), first.version(), gpu.name(), sources.size());
            gpu.unloadModules(modules);
            assertThat(first.compilations()).isEqualTo(sources.size());
            assertThat(first.target()).as("this NVRTC knows the GPU").isEqualTo("sm_" + gpu.architecture());

            KernelCompiler second = new KernelCompiler(Nvrtc.get(), gpu.architecture(), cache);
            start = System.nanoTime();
            modules = gpu.loadModules(second, sources);
            System.out.printf("second run, from the cache: %d ms%n", (System.nanoTime() - start) / 1_000_000);
            gpu.unloadModules(modules);
            assertThat(second.compilations()).as("the second run compiled nothing").isZero();

            // An entry the driver refuses (a well-formed CUBIN of another major architecture, which this GPU cannot
            // run) is compiled again, once, and replaced.
            int foreign = gpu.architecture() >= 80 ? 75 : 80;
            byte[] refused = new KernelCompiler(Nvrtc.get(), foreign, elsewhere).images(List.of(sources.getFirst())).getFirst().bytes();
            Path entry = second.cacheFile(sources.getFirst());
            Files.write(entry, refused);
            KernelCompiler third = new KernelCompiler(Nvrtc.get(), gpu.architecture(), cache);
            gpu.unloadModules(gpu.loadModules(third, sources));
            assertThat(third.compilations()).isOne();
            assertThat(Files.readAllBytes(entry)).isNotEqualTo(refused);
        }
    }

    @Test
    void kernelsAreFoundByNameAndAnUnknownNameIsAClearError() {
        try (Gpu gpu = Gpu.open()) {
            assertThat(gpu.function("gather_rows")).isNotNull().isEqualTo(gpu.function("gather_rows"));
            assertThatThrownBy(() -> gpu.function("no_such_kernel")).isInstanceOf(CudaException.class)
                    .hasMessage("no CUDA kernel named no_such_kernel in " + String.join(", ", KernelSource.index()));
        }
    }
}
