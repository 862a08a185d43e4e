package org.mambalens.engine.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

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
     * Opens the first of {@code candidates} the loader finds (after the file named by system property
     * {@code pathProperty}, when set); fails with one line naming the library and what was tried.
     */
    static NativeLibrary open(String what, String pathProperty, String... candidates) {
        List<String> tried = new ArrayList<>();
        String explicit = System.getProperty(pathProperty);
        List<String> names = new ArrayList<>();
        if (explicit != null) names.add(explicit);
        names.addAll(List.of(candidates));
        for (String candidate : names) {
            try {
                return new NativeLibrary(candidate, SymbolLookup.libraryLookup(candidate, Arena.global()));
            } catch (IllegalArgumentException notFound) {
                tried.add(candidate);
            }
        }
        throw new CudaException("no " + what + " found (tried " + String.join(", ", tried) + "; set -D" + pathProperty + "=FILE to name it)");
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
