package org.mambalens.engine.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every kernel keeps its values in registers: its PTX (NVRTC, no GPU needed) reads and writes no local memory, and
 * ptxas, compiling it for sm_90, spills none there. A loop the compiler leaves rolled over an array indexed by its
 * counter puts that array in local memory, with a branch per access: gemm_rows' epilogue did (warp_sum_rows as a loop
 * over h /= 2), costing more instructions than its products and a quarter of a 64-sequence decode step
 * (benchmarks/RESULTS.md). Skipped, saying why, where there is no NVRTC.
 */
class KernelLocalMemoryTest {
    /** Kernels whose local memory is the double-precision math library's scratch (tanh, sincos), not an array of ours. */
    private static final Set<String> MATH_LIBRARY_SCRATCH = Set.of("soft_cap", "rotary_rows");

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\(");
    private static final Pattern PROPERTIES = Pattern.compile(
            "Function properties for (\\w+)\\s+ptxas\\s+\\.\\s+(\\d+) bytes stack frame, (\\d+) bytes spill stores, (\\d+) bytes spill loads");

    @TempDir
    Path cache;

    @Test
    void noKernelUsesLocalMemory() {
        KernelCompiler compiler = new KernelCompiler(KernelCompilerTest.nvrtc(), 990, cache);   // newer than any NVRTC: PTX
        Map<String, String> kernels = new LinkedHashMap<>();
        for (KernelCompiler.Image image : compiler.images(KernelSource.all())) {
            kernels.putAll(entries(new String(image.bytes(), StandardCharsets.US_ASCII)));
        }
        assertThat(kernels.keySet()).as("kernels found in the PTX").contains("gemm_rows_f32", "gemv_f32_v8", "ssm_step_scan_c1", "causal_attention");
        List<String> local = kernels.entrySet().stream()
                .filter(k -> !MATH_LIBRARY_SCRATCH.contains(k.getKey()) && k.getValue().contains(".local"))
                .map(Map.Entry::getKey).toList();
        assertThat(local).as("kernels whose PTX uses local memory").isEmpty();
    }

    @Test
    void noKernelSpillsOnSm90() {
        KernelCompiler compiler = new KernelCompiler(KernelCompilerTest.nvrtc(), 90, cache);
        assertThat(compiler.target()).isEqualTo("sm_90");
        List<String> spilling = new ArrayList<>();
        int kernels = 0;
        for (KernelSource source : KernelSource.all()) {
            Matcher m = PROPERTIES.matcher(compiler.compileLog(source, "--ptxas-options=-v"));   // ptxas' report on each function
            while (m.find()) {
                kernels++;
                boolean spills = Long.parseLong(m.group(3)) + Long.parseLong(m.group(4)) > 0;
                boolean frame = Long.parseLong(m.group(2)) > 0 && !MATH_LIBRARY_SCRATCH.contains(m.group(1));
                if (spills || frame) spilling.add(m.group(0).replaceAll("\\s+", " "));
            }
        }
        assertThat(kernels).as("functions ptxas reported on").isGreaterThan(40);
        assertThat(spilling).as("kernels with a stack frame or spills on sm_90").isEmpty();
    }

    /** Each .entry's name and text, up to the next entry. */
    static Map<String, String> entries(String ptx) {
        Map<String, String> entries = new LinkedHashMap<>();
        Matcher m = ENTRY.matcher(ptx);
        int start = -1;
        String name = null;
        while (m.find()) {
            if (name != null) entries.put(name, ptx.substring(start, m.start()));
            name = m.group(1);
            start = m.start();
        }
        if (name != null) entries.put(name, ptx.substring(start));
        return entries;
    }
}
