package org.mambalens.engine.cuda;

import org.mambalens.engine.io.AtomicWrite;
import org.mambalens.engine.io.CheckpointException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BiFunction;
import java.util.stream.Collectors;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The kernel sources compiled by NVRTC for one GPU architecture, through a disk cache ({@link #cacheDirectory}):
 * a CUBIN for the architecture itself ({@code sm_90}), or, where this NVRTC predates the GPU, PTX for the newest
 * architecture it knows ({@code compute_90}), which the driver finishes for the GPU. A cache entry is named by
 * the SHA-256 of everything that makes the image (source, NVRTC version, target, options), so a change of any
 * of them compiles anew and stale entries are simply never read again.
 */
final class KernelCompiler {
    /**
     * NVRTC's options besides the target. Its defaults are nvcc's, which compiled the kernels before
     * ({@code nvcc -arch=compute_80 -ptx -O3}): no fast math (expf, erff, division and square roots keep their
     * precise versions, denormals are kept), FMA contraction on, device code at -O3. -default-device spares
     * the {@code __device__} on helpers.
     */
    static final List<String> OPTIONS = List.of("-default-device", "--std=c++17");
    static final String CACHE_PROPERTY = "mambalens.cuda.cache";
    private static final AtomicBoolean CACHE_UNWRITABLE_SAID = new AtomicBoolean();

    private final Nvrtc nvrtc;
    private final String version;          // NVRTC's CUDA version, as "13.0"
    private final String target;           // sm_XY (a CUBIN) or compute_XY (PTX)
    private final String fallBack;         // why the target is PTX, null when it is the GPU's own CUBIN
    private final Path cache;
    private int compilations;
    private String unwritable;             // why the cache could not be written, said once after the compile line

    /** Compiles for compute capability {@code architecture} (major·10 + minor: 90 for sm_90), caching in {@code cache}. */
    KernelCompiler(Nvrtc nvrtc, int architecture, Path cache) {
        this.nvrtc = nvrtc;
        this.cache = cache;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment major = arena.allocate(JAVA_INT), minor = arena.allocate(JAVA_INT);
            nvrtc.check("nvrtcVersion", nvrtc.nvrtcVersion(major, minor));
            version = major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
            MemorySegment count = arena.allocate(JAVA_INT);
            nvrtc.check("nvrtcGetNumSupportedArchs", nvrtc.nvrtcGetNumSupportedArchs(count));
            MemorySegment archs = arena.allocate(JAVA_INT, Math.max(1, count.get(JAVA_INT, 0)));
            nvrtc.check("nvrtcGetSupportedArchs", nvrtc.nvrtcGetSupportedArchs(archs));
            int[] supported = Arrays.copyOf(archs.toArray(JAVA_INT), count.get(JAVA_INT, 0));
            int best = Arrays.stream(supported).filter(a -> a <= architecture).max().orElse(-1);
            if (best == architecture) {
                target = "sm_" + architecture;
                fallBack = null;
            } else if (best > 0) {
                target = "compute_" + best;
                fallBack = "NVRTC " + version + " predates sm_" + architecture + ": compiling PTX for " + target
                        + " instead, which the driver finishes for the GPU (a newer NVRTC would compile for it directly)";
            } else {
                throw new CudaException("NVRTC " + version + " cannot compile for sm_" + architecture + " (it knows "
                        + Arrays.stream(supported).mapToObj(a -> "sm_" + a).collect(Collectors.joining(", ")) + ")");
            }
        }
    }

    /**
     * The directory of the compiled kernels: -Dmambalens.cuda.cache, else $XDG_CACHE_HOME/mambalens/cuda, else
     * ~/.cache/mambalens/cuda. Deleting it only costs a compile at the next start.
     */
    static Path cacheDirectory() {
        return cacheDirectory(System.getProperty(CACHE_PROPERTY), System.getenv("XDG_CACHE_HOME"), System.getProperty("user.home"));
    }

    static Path cacheDirectory(String property, String xdgCacheHome, String home) {
        if (property != null && !property.isBlank()) return Path.of(property);
        // The XDG spec has relative values ignored.
        Path base = xdgCacheHome != null && Path.of(xdgCacheHome).isAbsolute() ? Path.of(xdgCacheHome) : Path.of(home, ".cache");
        return base.resolve("mambalens").resolve("cuda");
    }

    /** The cache entry's name (without extension) for an image compiled from these four. */
    static String cacheKey(String source, String nvrtcVersion, String target, List<String> options) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            List<String> fields = new ArrayList<>(List.of(source, nvrtcVersion, target));
            fields.addAll(options);
            for (String field : fields) {
                sha.update(field.getBytes(StandardCharsets.UTF_8));
                sha.update((byte) 0);              // no field runs into the next
            }
            return HexFormat.of().formatHex(sha.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }

    String target() {
        return target;
    }

    String version() {
        return version;
    }

    /** How many sources this compiler has compiled (cache misses and refused entries). */
    int compilations() {
        return compilations;
    }

    /** A compiled source: a CUBIN or NUL-terminated PTX, and whether it was read from the cache. */
    record Image(KernelSource source, byte[] bytes, boolean cached) {
    }

    /**
     * The image of every source, in their order: read from the cache, or compiled (and cached) under one
     * stderr line that says what and how long. A cache hit prints nothing.
     */
    List<Image> images(List<KernelSource> sources) {
        List<Image> images = new ArrayList<>();
        List<KernelSource> missing = new ArrayList<>();
        for (KernelSource s : sources) {
            byte[] bytes = cached(s);
            images.add(bytes == null ? null : new Image(s, bytes, true));
            if (bytes == null) missing.add(s);
        }
        if (missing.isEmpty()) return images;
        if (fallBack != null) System.err.println("mambalens: " + fallBack);
        Iterator<Image> compiled = compile(missing, "compiling CUDA kernels for " + target + " with NVRTC " + version + " (first run only)").iterator();
        for (int i = 0; i < images.size(); i++) if (images.get(i) == null) images.set(i, compiled.next());
        return images;
    }

    /** Compiles a cached image again (the driver refused it) and replaces the cache entry. */
    Image recompile(Image refused) {
        return compile(List.of(refused.source()), "the driver refused the cached " + refused.source().name() + "; compiling it again").getFirst();
    }

    /** Compiles {@code sources} into the cache, saying {@code what} on stderr, then how long it took on the same line. */
    private List<Image> compile(List<KernelSource> sources, String what) {
        System.err.print("mambalens: " + what + " … ");
        System.err.flush();
        long start = System.nanoTime();
        List<Image> images = new ArrayList<>();
        try {
            for (KernelSource s : sources) images.add(new Image(s, compile(s), false));
        } catch (RuntimeException e) {
            System.err.println("failed");
            throw e;
        }
        System.err.printf(Locale.ROOT, "%.1f s%n", (System.nanoTime() - start) / 1e9);
        if (unwritable != null && !CACHE_UNWRITABLE_SAID.getAndSet(true)) {
            System.err.println("mambalens: cannot cache the compiled CUDA kernels (" + unwritable + "); they will be compiled again next run");
        }
        return images;
    }

    /** The cached image of {@code source}; null when there is none, or it cannot be read, or it is not a CUBIN/PTX. */
    byte[] cached(KernelSource source) {
        try {
            byte[] image = Files.readAllBytes(cacheFile(source));
            return looksWhole(image) ? image : null;
        } catch (IOException unreadable) {
            return null;
        }
    }

    /** Compiles {@code source} and caches the image, replacing what was cached. */
    private byte[] compile(KernelSource source) {
        byte[] image = nvrtcCompile(source);
        compilations++;
        try {
            AtomicWrite.write(cacheFile(source), out -> out.write(image));
        } catch (CheckpointException e) {
            unwritable = e.getMessage();
        }
        return image;
    }

    Path cacheFile(KernelSource source) {
        return cache.resolve(cacheKey(source.text(), version, target, OPTIONS) + (cubin() ? ".cubin" : ".ptx"));
    }

    private boolean cubin() {
        return target.startsWith("sm_");
    }

    /** A CUBIN is an ELF file; PTX as NVRTC gives it is text ending in a NUL (what cuModuleLoadData reads up to). */
    private boolean looksWhole(byte[] image) {
        if (image.length < 4) return false;
        if (cubin()) return image[0] == 0x7f && image[1] == 'E' && image[2] == 'L' && image[3] == 'F';
        return image[image.length - 1] == 0;
    }

    private byte[] nvrtcCompile(KernelSource source) {
        return compiled(source, List.of(), (arena, p) -> {
            MemorySegment size = arena.allocate(JAVA_LONG);
            String kind = cubin() ? "CUBIN" : "PTX";
            nvrtc.check("nvrtcGet" + kind + "Size", cubin() ? nvrtc.nvrtcGetCUBINSize(p, size) : nvrtc.nvrtcGetPTXSize(p, size));
            MemorySegment image = arena.allocate(size.get(JAVA_LONG, 0));
            nvrtc.check("nvrtcGet" + kind, cubin() ? nvrtc.nvrtcGetCUBIN(p, image) : nvrtc.nvrtcGetPTX(p, image));
            return image.toArray(JAVA_BYTE);
        });
    }

    /** NVRTC's log of compiling {@code source} for this target with {@code extra} options (with --ptxas-options=-v, ptxas' report). */
    String compileLog(KernelSource source, String... extra) {
        return compiled(source, List.of(extra), this::log);
    }

    /** {@code source} compiled for this target with NVRTC's options and {@code extra}, then {@code read} from the program. */
    private <T> T compiled(KernelSource source, List<String> extra, BiFunction<Arena, MemorySegment, T> read) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment program = arena.allocate(ADDRESS);
            nvrtc.check("nvrtcCreateProgram(" + source.name() + ")", nvrtc.nvrtcCreateProgram(program, arena.allocateFrom(source.text()),
                    arena.allocateFrom(source.name()), 0, MemorySegment.NULL, MemorySegment.NULL));
            MemorySegment p = program.get(ADDRESS, 0);
            try {
                List<String> options = new ArrayList<>(List.of("--gpu-architecture=" + target));
                options.addAll(OPTIONS);
                options.addAll(extra);
                MemorySegment array = arena.allocate(ADDRESS, options.size());
                for (int i = 0; i < options.size(); i++) array.setAtIndex(ADDRESS, i, arena.allocateFrom(options.get(i)));
                int status = nvrtc.nvrtcCompileProgram(p, options.size(), array);
                if (status != 0) {
                    throw new CudaException(nvrtc.error(source.name() + ": nvrtcCompileProgram", status) + " for " + target + ":\n" + log(arena, p));
                }
                return read.apply(arena, p);
            } finally {
                nvrtc.nvrtcDestroyProgram(program);
            }
        }
    }

    private String log(Arena arena, MemorySegment program) {
        MemorySegment size = arena.allocate(JAVA_LONG);
        if (nvrtc.nvrtcGetProgramLogSize(program, size) != 0) return "(no log)";
        MemorySegment log = arena.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
        return nvrtc.nvrtcGetProgramLog(program, log) == 0 ? log.getString(0).strip() : "(no log)";
    }
}
