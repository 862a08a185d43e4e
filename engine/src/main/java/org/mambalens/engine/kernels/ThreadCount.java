package org.mambalens.engine.kernels;

/**
 * {@code -Dmambalens.threads}, read strictly: outside {@link Parallel}, so that a command line can check it
 * and say what is wrong in one line before {@link Parallel} starts its workers with it.
 */
public final class ThreadCount {
    public static final String PROPERTY = "mambalens.threads";
    /** More kernel threads than this only costs memory and start-up: no machine has the cores to run them. */
    public static final int MAX = 1024;

    private ThreadCount() {
    }

    /** The setting as a thread count, or {@code cores} when unset; refused unless an integer from 1 to {@link #MAX}. */
    public static int parse(String setting, int cores) {
        if (setting == null) return cores;
        try {
            int n = Integer.parseInt(setting.strip());
            if (n >= 1 && n <= MAX) return n;
        } catch (NumberFormatException notANumber) {
            // refused below, with the range
        }
        throw new IllegalArgumentException("-D" + PROPERTY + "=" + setting + " is not a thread count from 1 to " + MAX);
    }

    /** This JVM's setting, as {@link Parallel} uses it. */
    public static int configured() {
        return parse(System.getProperty(PROPERTY), Runtime.getRuntime().availableProcessors());
    }
}
