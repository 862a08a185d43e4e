package org.mambalens.engine.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * One CUDA C file of the kernels, shipped as a resource in {@link #DIRECTORY} and listed in its index.txt;
 * each is compiled into a module of its own. {@code name} is the file name (NVRTC's messages cite it).
 */
record KernelSource(String name, String text) {
    static final String DIRECTORY = "/org/mambalens/engine/cuda/kernels/";

    /** The file names index.txt lists, in its order (blank lines and # comments skipped). */
    static List<String> index() {
        return resource("index.txt").lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#")).toList();
    }

    /** Every file of the index, read, each after the prelude (prelude.cuh) and a #line that gives it its own line numbers. */
    static List<KernelSource> all() {
        String prelude = resource(PRELUDE);
        return index().stream().map(name -> new KernelSource(name, prelude + "\n#line 1 \"" + name + "\"\n" + resource(name))).toList();
    }

    /** What every kernel file needs first (programmatic-launch helpers); not a file of its own in the index. */
    static final String PRELUDE = "prelude.cuh";

    private static String resource(String name) {
        try (InputStream in = KernelSource.class.getResourceAsStream(DIRECTORY + name)) {
            if (in == null) throw new CudaException("the kernel source " + DIRECTORY + name + " is missing from the jar");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new CudaException("cannot read " + DIRECTORY + name + ": " + e.getMessage(), e);
        }
    }
}
