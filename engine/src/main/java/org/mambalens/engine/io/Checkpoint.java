package org.mambalens.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.mambalens.engine.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tensors of a checkpoint: one safetensors file, a directory holding {@code model.safetensors},
 * or a sharded directory with {@code model.safetensors.index.json}. Every shard stays mapped until close.
 */
public final class Checkpoint implements AutoCloseable {
    public static final String SINGLE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path location;
    private final List<SafetensorsFile> files;
    private final Map<String, SafetensorsFile> owner;

    private Checkpoint(Path location, List<SafetensorsFile> files, Map<String, SafetensorsFile> owner) {
        this.location = location;
        this.files = files;
        this.owner = owner;
    }

    /** Opens the checkpoint in {@code dir} and builds on it; closes it again if the build fails, so nothing stays mapped. */
    public static <T> T openFor(java.nio.file.Path dir, java.util.function.Function<Checkpoint, T> build) {
        Checkpoint checkpoint = open(dir);
        try {
            return build.apply(checkpoint);
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }

    public static Checkpoint open(Path fileOrDir) {
        if (!Files.exists(fileOrDir)) throw new CheckpointException(fileOrDir, "no such file or directory");
        if (!Files.isDirectory(fileOrDir)) return ofFiles(fileOrDir, List.of(fileOrDir));
        Path index = fileOrDir.resolve(INDEX);
        if (Files.isRegularFile(index)) return ofFiles(fileOrDir, shardsOf(index));
        Path single = fileOrDir.resolve(SINGLE);
        if (Files.isRegularFile(single)) return ofFiles(fileOrDir, List.of(single));
        throw new CheckpointException(fileOrDir, "no " + SINGLE + " or " + INDEX + " in this directory");
    }

    private static List<Path> shardsOf(Path index) {
        JsonNode root = readJson(index);
        JsonNode map = root.get("weight_map");
        if (map == null || !map.isObject()) throw new CheckpointException(index, "no \"weight_map\" object");
        List<Path> shards = new ArrayList<>();
        for (Iterator<JsonNode> it = map.elements(); it.hasNext(); ) {
            JsonNode f = it.next();
            if (!f.isTextual()) throw new CheckpointException(index, "weight_map values must be file names");
            String name = f.asText();
            // Shards sit beside the index: a path that leaves the directory is refused.
            if (name.isEmpty() || name.contains("/") || name.contains("\\") || name.equals("..") || name.equals(".")) {
                throw new CheckpointException(index, "shard name \"" + name + "\" is not a plain file name");
            }
            Path p = index.resolveSibling(name);
            if (!shards.contains(p)) shards.add(p);
        }
        if (shards.isEmpty()) throw new CheckpointException(index, "weight_map is empty");
        return shards;
    }

    private static Checkpoint ofFiles(Path location, List<Path> paths) {
        List<SafetensorsFile> opened = new ArrayList<>();
        try {
            Map<String, SafetensorsFile> owner = new LinkedHashMap<>();
            for (Path p : paths) {
                SafetensorsFile f = SafetensorsFile.open(p);
                opened.add(f);
                for (String name : f.tensors().keySet()) {
                    SafetensorsFile previous = owner.put(name, f);
                    if (previous != null) throw new CheckpointException(p, "tensor " + name + " is also in " + previous.path().getFileName());
                }
            }
            Path index = location.resolve(INDEX);
            if (Files.isDirectory(location) && Files.isRegularFile(index)) {
                for (Map.Entry<String, JsonNode> e : readJson(index).get("weight_map").properties()) {
                    SafetensorsFile f = owner.get(e.getKey());
                    if (f == null || !f.path().getFileName().toString().equals(e.getValue().asText())) {
                        throw new CheckpointException(index, "tensor " + e.getKey() + " is not in " + e.getValue().asText());
                    }
                }
            }
            return new Checkpoint(location, List.copyOf(opened), Collections.unmodifiableMap(owner));
        } catch (RuntimeException e) {
            opened.forEach(SafetensorsFile::close);
            throw e;
        }
    }

    static JsonNode readJson(Path file) {
        try {
            JsonNode n = JSON.readTree(InputFile.wholeInMemory(file, InputFile.JSON_EXPANSION).toFile());
            if (n == null || !n.isObject()) throw new CheckpointException(file, "not a JSON object");
            return n;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new CheckpointException(file, "invalid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read: " + e.getMessage());
        }
    }

    public Path location() {
        return location;
    }

    public List<SafetensorsFile> files() {
        return files;
    }

    public boolean has(String name) {
        return owner.containsKey(name);
    }

    public List<String> names() {
        return List.copyOf(owner.keySet());
    }

    public TensorInfo info(String name) {
        SafetensorsFile f = owner.get(name);
        if (f == null) throw new CheckpointException(location, "missing tensor " + name);
        return f.tensors().get(name);
    }

    public Tensor tensor(String name) {
        TensorInfo info = info(name);
        return new Tensor(name, info.dtype(), info.shape(), owner.get(name).bytes(info));
    }

    /** The tensor, checked to have exactly this shape and a float dtype the kernels read. */
    public Tensor tensor(String name, long... shape) {
        Tensor t = tensor(name);
        if (!t.hasShape(shape)) {
            throw new CheckpointException(owner.get(name).path(), "tensor " + name + " has shape " + Arrays.toString(t.shape())
                    + ", the config implies " + Arrays.toString(shape));
        }
        if (!t.dtype().isKernelFloat()) throw new CheckpointException(owner.get(name).path(), "tensor " + name + " is " + t.dtype() + ", expected F32, F16 or BF16");
        return t;
    }

    public long parameterCount() {
        long n = 0;
        for (SafetensorsFile f : files) for (TensorInfo t : f.tensors().values()) n += t.elements();
        return n;
    }

    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }
}
