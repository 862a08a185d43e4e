package org.mambalens.engine.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every kernel keeps its arrays in registers: its PTX (NVRTC, no GPU needed) reads and writes no local memory. A loop
 * the compiler leaves rolled over an array indexed by its counter puts that array there, with a branch per access:
 * gemm_rows' epilogue did (warp_sum_rows as a loop over h /= 2), costing more instructions than its products and a
 * third of a 64-sequence decode step (benchmarks/RESULTS.md). Skipped, saying why, where there is no NVRTC.
 */
class KernelLocalMemoryTest {
    /** Kernels whose local memory is the double-precision math library's scratch (tanh, sincos), not an array of ours. */
    private static final Set<String> MATH_LIBRARY_SCRATCH = Set.of("soft_cap", "rotary_rows");

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\(");

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
