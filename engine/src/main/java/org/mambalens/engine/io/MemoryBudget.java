package org.mambalens.engine.io;

import java.nio.file.Path;
import java.util.Locale;

/**
 * The one check before an allocation sized by an input (an image's header, a token count, an argument):
 * too large for the heap is refused in one line that names the input and the number, instead of an
 * OutOfMemoryError after gigabytes were taken, or a negative size after an int overflowed.
 */
public final class MemoryBudget {
    private MemoryBudget() {
    }

    /** Refuses {@code bytes} the heap cannot spare; {@code what} names the argument that asked for them. */
    public static void require(long bytes, String what) {
        String refusal = refusal(bytes);
        if (refusal != null) throw new IllegalArgumentException(what + refusal);
    }

    /** The same for what a file's contents ask for: refused as that file's error. */
    public static void require(long bytes, Path file, String what) {
        String refusal = refusal(bytes);
        if (refusal != null) throw new CheckpointException(file, what + refusal);
    }

    /** Why {@code bytes} cannot be had, or null when they can. */
    private static String refusal(long bytes) {
        Runtime runtime = Runtime.getRuntime();
        long available = runtime.maxMemory() - (runtime.totalMemory() - runtime.freeMemory());
        if (bytes >= 0 && bytes <= available) return null;
        if (bytes < 0) return " needs more than 2^63 bytes of memory; ask for less";    // a size that overflowed: no heap holds it
        return " needs " + size(bytes) + " of memory, more than the " + size(available)
                + " Java can spare; give it more with MAMBALENS_JAVA_OPTS=-Xmx" + ((bytes >> 30) * 3 / 2 + 1) + "g, or ask for less";
    }

    /** A byte count the way people read it: 3.7 GB. */
    public static String size(long bytes) {
        if (bytes < 1000) return bytes + " bytes";
        String[] units = {"kB", "MB", "GB", "TB", "PB", "EB"};
        double v = bytes;
        int u = -1;
        while (v >= 1000 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** {@code a · b · …} in 64 bits, or -1 when it overflows them. */
    public static long product(long... factors) {
        long p = 1;
        for (long f : factors) {
            if (f < 0) return -1;
            try {
                p = Math.multiplyExact(p, f);
            } catch (ArithmeticException e) {
                return -1;
            }
        }
        return p;
    }
}
