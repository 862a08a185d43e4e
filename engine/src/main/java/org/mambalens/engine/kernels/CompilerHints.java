package org.mambalens.engine.kernels;

import javax.management.MBeanServer;
import javax.management.ObjectName;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Where C2 is to end one compiled method and start another among the kernels, given to the JVM as a Compiler Control
 * directive (JEP 165) when the first kernel class loads.
 *
 * <p>Why: a Vector API value lives in a register only within one compiled method. C2 inlines a hot method into its
 * caller until the caller's graph reaches a node budget, which a product JVM does not let us raise. Past it, an
 * exponential helper is left out of line: its vectors are boxed on the heap at every call, and the vector operations
 * around it may run the API's Java fallback lane by lane. This happened in hot loops wherever a loop with an
 * exponential was inlined into a larger caller:
 * <ul>
 *   <li>Δ's softplus in the scan;</li>
 *   <li>the SiLU gate;</li>
 *   <li>the hidden attention's factor exponentials: 1.2 GB allocated per ViM-tiny image.</li>
 * </ul>
 * The loops listed here are therefore never inlined. Each is compiled on its own, with its helpers inside it. Their callers
 * pass arrays, never vectors, and each call covers a row or more, so the call itself costs nothing measurable.
 *
 * <p>Results do not depend on this. The fallback computes the same lane-wise bits as the compiled code (see
 * {@link Vectors}), so only the time changes. {@code -Dmambalens.compilerHints=false} leaves the JIT to its defaults,
 * for comparisons. Where the JVM has no management module, nothing is installed and the kernels run as before.
 */
final class CompilerHints {
    /** Kernel loops holding an exponential or logarithm: compiled on their own. */
    static final List<String> OWN_COMPILATION = List.of(
            "Elementwise.silu", "Elementwise.multiplyBySilu", "Elementwise.softplus", "Elementwise.gelu",
            "Elementwise.softmaxRows", "Elementwise.expOfScaled", "Elementwise.expOfScaledTimes",
            "Elementwise.expOfScaledRowsTimes",
            // and the matrix-vector product's lane sums, whose shuffles would take dot4 past the budget
            "MatMul.laneSums");
    /**
     * Helpers taking or returning vectors that C2 left out of line by its size heuristics though their callers were
     * small: always inlined. (The weight load in {@code dot4}'s last-vector step, which dt_proj's 48 inputs take.)
     */
    static final List<String> ALWAYS_INLINED = List.of("Vectors.load");
    static final String PROPERTY = "mambalens.compilerHints";

    private CompilerHints() {
    }

    /**
     * Installs the directive on a daemon thread: creating the platform MBean server takes ~0.2 s of class loading, which
     * overlaps the model's loading this way. C2 compiles the kernels only after thousands of calls, by which time the
     * directive is in place.
     */
    static void installInBackground() {
        if (!Boolean.parseBoolean(System.getProperty(PROPERTY, "true"))) return;
        Thread.ofPlatform().daemon().name("mambalens-compiler-hints").start(CompilerHints::install);
    }

    /** The directive: every method compiled by C2 leaves the loops above out of line and takes the helpers in. */
    static String directive() {
        String where = CompilerHints.class.getPackageName().replace('.', '/') + "/";
        String patterns = Stream.concat(OWN_COMPILATION.stream().map(m -> "\"-" + where + m + "\""),
                ALWAYS_INLINED.stream().map(m -> "\"+" + where + m + "\"")).collect(Collectors.joining(", "));
        return "[{ match: \"*.*\", c2: { inline: [" + patterns + "] } }]";
    }

    /** Adds the directive through the DiagnosticCommand MBean ({@code jcmd Compiler.directives_add}); true when added. */
    static boolean install() {
        Path file = null;
        try {
            file = Files.createTempFile("mambalens-compiler-directive", ".json");
            Files.writeString(file, directive());
            MBeanServer server = ManagementFactory.getPlatformMBeanServer();
            Object answer = server.invoke(new ObjectName("com.sun.management:type=DiagnosticCommand"), "compilerDirectivesAdd",
                    new Object[]{new String[]{file.toString()}}, new String[]{String[].class.getName()});
            return String.valueOf(answer).contains("1 compiler directives added");
        } catch (Exception | LinkageError unavailable) {
            return false;                   // no management module or no permission: the JIT's defaults, same results
        } finally {
            if (file != null) {
                try {
                    Files.deleteIfExists(file);
                } catch (IOException ignored) {
                    // a temporary file in the temporary directory
                }
            }
        }
    }
}
