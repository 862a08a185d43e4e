package org.mambalens.cli;

import org.mambalens.engine.io.DirectoryTree;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The training run of the launcher's start-up cache: the JVM records, with {@code -XX:AOTCacheOutput}, the classes
 * this run loads and links and the methods' profiles, so that later one-shot commands start with them (JDK 25's
 * ahead-of-time cache). It runs the commands people run most, on the bundled models, into a temporary directory
 * that it deletes; a failure only means a colder start, so the launcher ignores it.
 */
final class StartupTraining {
    private StartupTraining() {
    }

    public static void main(String[] args) throws IOException {
        List<String> failed = run();
        if (!failed.isEmpty()) {
            System.err.println("mambalens: the start-up training run failed at: " + String.join("; ", failed));
            System.exit(1);
        }
    }

    /** Runs the training commands; returns those that failed (none, normally). */
    static List<String> run() throws IOException {
        Path out = Files.createTempDirectory("mambalens-training");
        List<String> failed = new java.util.ArrayList<>();
        try {
            List<String[]> commands = List.of(
                    new String[]{"forward", "--token-ids", ids(64), "--out", out.resolve("logits.npy").toString()},
                    new String[]{"generate", "--prompt", "The meaning of life is", "--max-new-tokens", "8", "--greedy"},
                    new String[]{"classify", "--image", Path.of(System.getProperty("mambalens.home", "."), "data/fashion-mnist/test-0000-ankle-boot.png").toString()},
                    new String[]{"explain", "--text", "A fool and his money are soon parted.", "--out", out.resolve("text").toString()},
                    new String[]{"explain", "--out", out.resolve("image").toString()});
            for (String[] command : commands) {
                if (Main.run(command) != 0) failed.add(String.join(" ", command));
            }
            return failed;
        } finally {
            DirectoryTree.delete(out);
        }
    }

    /** n token ids inside every bundled vocabulary. */
    private static String ids(int n) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < n; i++) s.append(i == 0 ? "" : ",").append(1 + (i * 37) % 1000);
        return s.toString();
    }
}
