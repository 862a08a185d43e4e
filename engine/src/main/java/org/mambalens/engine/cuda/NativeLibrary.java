package org.mambalens.engine.cuda;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Stream;

/** A shared library opened with dlopen and its functions as downcall handles: what jextract's generated classes do. */
final class NativeLibrary {
    private static final Linker LINKER = Linker.nativeLinker();

    private final String name;
    private final SymbolLookup symbols;

    private NativeLibrary(String name, SymbolLookup symbols) {
        this.name = name;
        this.symbols = symbols;
    }

    /**
     * Opens the file named by system property {@code property} when it is set (that file only: a wrong path is
     * an error, not a reason to load another library); else the first of {@code names} (newest first) found in
     * {@code directories}, in their order; else the first the loader finds by name on its own path. Fails with
     * one line: {@code need}, where it looked, and the property. {@code companion} names the library's companion
     * (null: none), loaded first from beside it: see {@link #tryOpen(Path, String)}.
     */
    static NativeLibrary open(String need, String property, List<String> names, List<Path> directories, String companion) {
        String explicit = System.getProperty(property);
        if (explicit != null) {
            NativeLibrary lib = tryOpen(Path.of(explicit), companion);
            if (lib == null) throw new CudaException(need + ": cannot load " + explicit + " (-D" + property + ")");
            return lib;
        }
        for (Path file : candidates(names, directories)) {
            NativeLibrary lib = tryOpen(file, companion);
            if (lib != null) return lib;
        }
        for (String n : names) {
            NativeLibrary lib = tryOpen(n);
            if (lib != null) return lib;
        }
        throw new CudaException(notFound(need, property, names, directories));
    }

    /**
     * Opens {@code file} after its companions beside it, when it has any. A library found in a directory the
     * loader does not search (a Python wheel's, a toolkit's missing from ld.so.conf) asks for a companion by name:
     * cuBLAS for cuBLASLt as it loads, NVRTC for its builtins as it compiles. Loaded beforehand, the companion
     * is found by that name, as a library the process has already. Only those of the same major version are
     * loaded: libnvrtc.so.12 brings libnvrtc-builtins.so.12*, libcublas.so.13.1.0 libcublasLt.so.13*.
     */
    private static NativeLibrary tryOpen(Path file, String companion) {
        String name = file.getFileName().toString();
        int so = name.indexOf(".so");
        if (companion != null && file.getParent() != null && so >= 0) {
            String version = name.substring(so);                   // .so, .so.12 or .so.12.4.127
            int minor = version.indexOf('.', ".so.".length());
            String major = minor < 0 ? version : version.substring(0, minor);
            for (Path c : children(file.getParent(), companion + major, Files::isRegularFile)) tryOpen(c.toString());
        }
        return tryOpen(file.toString());
    }

    /** The one-line failure of {@link #open} when nothing was found. */
    private static String notFound(String need, String property, List<String> names, List<Path> directories) {
        String where = directories.isEmpty() ? "" : " in " + String.join(", ", directories.stream().map(Path::toString).toList()) + " and";
        return need + ": looked for " + String.join(", ", names) + where + " on the loader's path; set -D" + property + "=FILE to name it";
    }

    /** The files named {@code names} that exist in {@code directories}: directory by directory, names in their order. */
    static List<Path> candidates(List<String> names, List<Path> directories) {
        List<Path> found = new ArrayList<>();
        for (Path dir : directories) {
            for (String n : names) if (Files.isRegularFile(dir.resolve(n))) found.add(dir.resolve(n));
        }
        return found;
    }

    /**
     * Where CUDA's libraries are installed, in the order searched: $CUDA_HOME, $CUDA_PATH, /usr/local/cuda,
     * /usr/local/cuda-* (newest first), $LD_LIBRARY_PATH, the distribution's directory, then NVIDIA's Python wheels
     * (PyTorch's dependencies): {@code nvidia/<each of wheels>/lib} in the site- and dist-packages of the system's,
     * /usr/local's, the user's and an active virtual environment's Python 3. Only directories that exist.
     */
    static List<Path> cudaDirectories(String... wheels) {
        List<Path> dirs = new ArrayList<>();
        for (String variable : new String[]{"CUDA_HOME", "CUDA_PATH"}) {
            String value = System.getenv(variable);
            if (value != null && !value.isBlank()) dirs.add(Path.of(value, "lib64"));
        }
        dirs.add(Path.of("/usr/local/cuda/lib64"));
        for (Path cuda : newestFirst(children(Path.of("/usr/local"), "cuda-", Files::isDirectory))) dirs.add(cuda.resolve("lib64"));
        String loaderPath = System.getenv("LD_LIBRARY_PATH");
        if (loaderPath != null) for (String d : loaderPath.split(":")) if (!d.isBlank()) dirs.add(Path.of(d));
        dirs.add(Path.of("/usr/lib/x86_64-linux-gnu"));
        List<Path> libs = new ArrayList<>(List.of(Path.of("/usr/lib"), Path.of("/usr/local/lib"),
                Path.of(System.getProperty("user.home"), ".local", "lib")));
        String venv = System.getenv("VIRTUAL_ENV");
        if (venv != null && !venv.isBlank()) libs.add(Path.of(venv, "lib"));
        for (Path lib : libs) {
            for (Path python : newestFirst(children(lib, "python3", Files::isDirectory))) {
                for (String packages : new String[]{"site-packages", "dist-packages"}) {
                    for (String wheel : wheels) dirs.add(python.resolve(packages).resolve("nvidia").resolve(wheel).resolve("lib"));
                }
            }
        }
        return dirs.stream().filter(Files::isDirectory).filter(distinctFiles()).toList();
    }

    /** Passes each directory once, however it is spelled (/usr/local/cuda is usually a link to a /usr/local/cuda-X.Y). */
    private static Predicate<Path> distinctFiles() {
        Set<Path> seen = new HashSet<>();
        return p -> {
            try {
                return seen.add(p.toRealPath());
            } catch (IOException e) {
                return false;
            }
        };
    }

    /** The entries of {@code dir} whose names start with {@code prefix} that pass {@code kind} (none when dir cannot be listed). */
    private static List<Path> children(Path dir, String prefix, Predicate<Path> kind) {
        try (Stream<Path> list = Files.list(dir)) {
            return list.filter(p -> p.getFileName().toString().startsWith(prefix) && kind.test(p)).sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    /** Versioned names (cuda-12.4, python3.12) newest first: by the numbers in them, compared as numbers. */
    static List<Path> newestFirst(List<Path> versioned) {
        Comparator<Path> byVersion = (a, b) -> compareVersions(a.getFileName().toString(), b.getFileName().toString());
        return versioned.stream().sorted(byVersion.reversed()).toList();
    }

    private static int compareVersions(String a, String b) {
        String[] x = a.replaceAll("^\\D+", "").split("\\D+"), y = b.replaceAll("^\\D+", "").split("\\D+");
        for (int i = 0; i < Math.min(x.length, y.length); i++) {
            int c = Integer.compare(number(x[i]), number(y[i]));
            if (c != 0) return c;
        }
        return x.length != y.length ? Integer.compare(x.length, y.length) : a.compareTo(b);
    }

    private static int number(String digits) {
        return digits.isEmpty() ? -1 : digits.length() > 9 ? Integer.MAX_VALUE : Integer.parseInt(digits);
    }

    private static NativeLibrary tryOpen(String file) {
        try {
            return new NativeLibrary(file, SymbolLookup.libraryLookup(file, Arena.global()));
        } catch (IllegalArgumentException notFound) {
            return null;
        }
    }

    /** What a downcall threw, as an unchecked exception (errors pass through). */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new CudaException("native call failed", t);
    }

    /** The first of {@code names} this library exports, as a downcall handle of that signature. */
    MethodHandle function(FunctionDescriptor signature, String... names) {
        return function(signature, new Linker.Option[0], names);
    }

    /** As above with linker options (critical calls may read Java arrays in place). */
    MethodHandle function(FunctionDescriptor signature, Linker.Option[] options, String... names) {
        for (String n : names) {
            var symbol = symbols.find(n);
            if (symbol.isPresent()) return LINKER.downcallHandle(symbol.get(), signature, options);
        }
        throw new CudaException(name + " has no function " + String.join(" or ", names) + " (too old a driver or library?)");
    }
}
