package org.mambalens.cli.serve;

import org.mambalens.cli.Main;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.ModelFamily;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * The checkpoints the explorer offers, by name: the bundled ones (each directory of {@code models/}) and every
 * checkpoint directory under {@code --models} (named by its path there). Requests name a model, never a path, and a
 * directory under {@code --models} is offered only when it and every file in it resolve inside that folder, so neither
 * {@code ..} nor a symbolic link reaches a checkpoint elsewhere. Each checkpoint is loaded on first use, once, however
 * many requests ask for it at the same time.
 */
final class ModelCatalog implements AutoCloseable {
    /** How deep under {@code --models} checkpoint directories are looked for. */
    private static final int SEARCH_DEPTH = 4;

    /** A checkpoint on offer: {@code kind} is "language", "text-classifier" or "image". */
    record Entry(String name, Path dir, boolean bundled, String kind, ModelFamily family) {
        boolean isImage() {
            return family.kind() == ModelFamily.Kind.IMAGE;
        }
    }

    private final Path bundled, user;
    private final Map<Path, CompletableFuture<LoadedModel>> loaded = new ConcurrentHashMap<>();
    private final Set<Path> reportedBroken = ConcurrentHashMap.newKeySet();
    private volatile Map<String, Entry> entries = Map.of();

    /** @param user the {@code --models} folder; null for the bundled models only */
    ModelCatalog(Path bundled, Path user) {
        this.bundled = bundled;
        this.user = user == null ? null : realFolder(user);
        rescan();
    }

    private static Path realFolder(Path folder) {
        if (!Files.isDirectory(folder)) throw new IllegalArgumentException("--models " + folder + " is not a directory");
        try {
            return folder.toRealPath();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The models on offer now (the folders are read again, so a checkpoint copied in while serving appears). */
    List<Entry> entries() {
        return List.copyOf(rescan().values());
    }

    /** The model called {@code name}; 404 when there is none. */
    Entry find(String name) {
        Entry entry = entries.get(name);
        if (entry == null) entry = rescan().get(name);
        if (entry == null) throw new ApiException(ApiException.NOT_FOUND, "unknown model \"" + name + "\" (models: " + String.join(", ", entries.keySet()) + ")");
        return entry;
    }

    /** The loaded model of {@code entry}: the first request loads it, the others wait for that load. */
    LoadedModel load(Entry entry) {
        Path key = entry.dir();
        CompletableFuture<LoadedModel> mine = new CompletableFuture<>(), first = loaded.putIfAbsent(key, mine);
        if (first == null) {
            try {
                mine.complete(LoadedModel.load(entry.dir(), entry.family()));
            } catch (RuntimeException | Error e) {
                loaded.remove(key, mine);          // a later request tries again (the checkpoint may be fixed meanwhile)
                mine.completeExceptionally(e);
            }
            first = mine;
        }
        try {
            return first.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw e;
        }
    }

    private synchronized Map<String, Entry> rescan() {
        Map<String, Entry> found = new LinkedHashMap<>();
        for (Path dir : children(bundled)) add(found, dir.getFileName().toString(), dir, true);
        if (user != null) {
            for (Path dir : checkpointsUnder(user)) add(found, user.relativize(dir).toString().replace('\\', '/'), dir, false);
        }
        entries = Collections.unmodifiableMap(found);
        return entries;
    }

    private void add(Map<String, Entry> found, String name, Path dir, boolean isBundled) {
        if (found.containsKey(name)) return;            // a bundled model keeps its name
        try {
            ModelFamily family = Families.forDirectory(dir);
            found.put(name, new Entry(name, dir.toRealPath(), isBundled, LoadedModel.kind(family, dir), family));
        } catch (RuntimeException | IOException e) {
            if (reportedBroken.add(dir)) System.err.println("serve: not offering " + dir + ": " + Main.oneLine(e));
        }
    }

    private static List<Path> children(Path folder) {
        if (!Files.isDirectory(folder)) return List.of();
        try (Stream<Path> s = Files.list(folder)) {
            return s.filter(d -> Files.isRegularFile(d.resolve("config.json"))).sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    /** Directories under {@code root} holding a config.json, reached without following links, all of whose files stay inside {@code root}. */
    private List<Path> checkpointsUnder(Path root) {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> s = Files.walk(root, SEARCH_DEPTH)) {          // Files.walk does not follow links unless told to
            s.filter(d -> Files.isDirectory(d, LinkOption.NOFOLLOW_LINKS))
                    .filter(d -> Files.isRegularFile(d.resolve("config.json"), LinkOption.NOFOLLOW_LINKS))
                    .filter(d -> staysInside(d, root))
                    .sorted().forEach(out::add);
        } catch (IOException | UncheckedIOException e) {
            System.err.println("serve: cannot read all of " + root + ": " + Main.oneLine(e));
        }
        return out;
    }

    /** Whether every file of checkpoint {@code dir} (config, weights, tokenizer, shards) resolves inside {@code root}. */
    private boolean staysInside(Path dir, Path root) {
        try (Stream<Path> files = Files.list(dir)) {
            Set<Path> outside = new HashSet<>();
            files.forEach(f -> {
                try {
                    if (!f.toRealPath().startsWith(root)) outside.add(f);
                } catch (IOException e) {
                    outside.add(f);                         // a dangling link
                }
            });
            if (!outside.isEmpty() && reportedBroken.add(dir)) System.err.println("serve: not offering " + dir + ": " + outside.iterator().next().getFileName() + " links outside " + root);
            return outside.isEmpty();
        } catch (IOException e) {
            return false;
        }
    }

    /** Closes every loaded model (after the server has stopped taking requests). */
    @Override
    public void close() {
        for (CompletableFuture<LoadedModel> f : loaded.values()) {
            if (f.isDone() && !f.isCompletedExceptionally()) f.join().close();
        }
        loaded.clear();
    }
}
