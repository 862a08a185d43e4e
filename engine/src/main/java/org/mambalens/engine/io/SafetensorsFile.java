package org.mambalens.engine.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One memory-mapped safetensors file (DESIGN §1), validated in full when opened:
 * header length, UTF-8 JSON, known dtypes, shapes, and data offsets that tile the data section
 * exactly (in range, no overlap, size = product(shape)·sizeof(dtype)). Nothing is read onto the heap
 * except the header; tensors are views on the mapping, valid until {@link #close()}.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** A header larger than this is refused: real headers are kilobytes to a few megabytes. */
    static final long MAX_HEADER_BYTES = 100L << 20;
    // A name given twice (which entry would a reader take?) and anything but spaces after the header's object are refused.
    private static final ObjectMapper JSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment data, Map<String, TensorInfo> tensors,
                            Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment file;
            try (FileChannel ch = FileChannel.open(InputFile.regular(path), StandardOpenOption.READ)) {
                file = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            } catch (NoSuchFileException e) {
                throw new CheckpointException(path, "no such file");
            } catch (IOException e) {
                throw new CheckpointException(path, "cannot read: " + e.getMessage());
            }
            if (file.byteSize() < 8) throw new CheckpointException(path, "not a safetensors file: " + file.byteSize() + " bytes, shorter than the 8-byte header length");
            long headerLength = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLength <= 1 || headerLength > MAX_HEADER_BYTES || headerLength > file.byteSize() - 8) {
                throw new CheckpointException(path, "not a safetensors file: header length " + Long.toUnsignedString(headerLength)
                        + " does not fit the file of " + file.byteSize() + " bytes");
            }
            String header = decodeUtf8(path, file.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE));
            MemorySegment data = file.asSlice(8 + headerLength);
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, TensorInfo> tensors = parseHeader(path, header, data.byteSize(), metadata);
            return new SafetensorsFile(path, arena, data, tensors, metadata);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static String decodeUtf8(Path path, byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new CheckpointException(path, "header is not valid UTF-8");
        }
    }

    private static Map<String, TensorInfo> parseHeader(Path path, String header, long dataBytes, Map<String, String> metadata) {
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            throw new CheckpointException(path, "header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) throw new CheckpointException(path, "header is not a JSON object");
        List<TensorInfo> list = new ArrayList<>();
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals("__metadata__")) {
                if (!v.isObject()) throw new CheckpointException(path, "__metadata__ is not an object of strings");
                for (Map.Entry<String, JsonNode> m : v.properties()) {
                    if (!m.getValue().isTextual()) throw new CheckpointException(path, "__metadata__." + m.getKey() + " is not a string");
                    metadata.put(m.getKey(), m.getValue().asText());
                }
                continue;
            }
            list.add(parseEntry(path, name, v));
        }
        // The entries, sorted by offset, must tile [0, dataBytes) without gaps or overlaps.
        List<TensorInfo> byOffset = new ArrayList<>(list);
        byOffset.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expected = 0;
        for (TensorInfo t : byOffset) {
            if (t.begin() < expected) throw new CheckpointException(path, "tensor " + t.name() + " overlaps the previous tensor (offset " + t.begin() + " < " + expected + ")");
            if (t.begin() > expected) throw new CheckpointException(path, "gap in the data section before tensor " + t.name() + " (offset " + t.begin() + ", expected " + expected + ")");
            expected = t.end();
        }
        if (expected > dataBytes) throw new CheckpointException(path, "truncated: tensors need " + expected + " data bytes, the file has " + dataBytes);
        if (expected < dataBytes) throw new CheckpointException(path, "data section has " + (dataBytes - expected) + " bytes that belong to no tensor");
        Map<String, TensorInfo> map = new LinkedHashMap<>();
        for (TensorInfo t : list) map.put(t.name(), t);
        return Collections.unmodifiableMap(map);
    }

    private static TensorInfo parseEntry(Path path, String name, JsonNode v) {
        String where = "tensor " + name + ": ";
        if (!v.isObject()) throw new CheckpointException(path, where + "entry is not an object");
        JsonNode dtype = v.get("dtype"), shape = v.get("shape"), offsets = v.get("data_offsets");
        if (dtype == null || !dtype.isTextual()) throw new CheckpointException(path, where + "missing dtype");
        if (shape == null || !shape.isArray()) throw new CheckpointException(path, where + "missing shape");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2) throw new CheckpointException(path, where + "data_offsets must be [begin, end]");
        DType t;
        try {
            t = DType.parse(dtype.asText());
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(path, where + e.getMessage());
        }
        long[] dims = new long[shape.size()];
        long elements = 1;
        for (int i = 0; i < dims.length; i++) {
            JsonNode d = shape.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) throw new CheckpointException(path, where + "shape " + shape + " is not a list of non-negative integers");
            dims[i] = d.asLong();
            elements = Math.multiplyHigh(elements, dims[i]) != 0 ? -1 : elements * dims[i];
            if (elements < 0) throw new CheckpointException(path, where + "shape " + shape + " is absurdly large");
        }
        for (JsonNode o : offsets) {
            if (!o.isIntegralNumber() || !o.canConvertToLong() || o.asLong() < 0) throw new CheckpointException(path, where + "data_offsets " + offsets + " are not non-negative integers");
        }
        long begin = offsets.get(0).asLong(), end = offsets.get(1).asLong();
        if (end < begin) throw new CheckpointException(path, where + "data_offsets " + offsets + " end before they begin");
        if (elements > Long.MAX_VALUE / t.bytes || end - begin != elements * t.bytes) {
            throw new CheckpointException(path, where + "data_offsets " + offsets + " hold " + (end - begin) + " bytes, shape "
                    + shape + " of " + t + " needs " + (elements > Long.MAX_VALUE / t.bytes ? "more than 2^63" : String.valueOf(elements * t.bytes)));
        }
        return new TensorInfo(name, t, dims, begin, end);
    }

    public Path path() {
        return path;
    }

    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return Collections.unmodifiableMap(metadata);
    }

    /** The tensor's bytes as a read-only view on the mapping. */
    public MemorySegment bytes(TensorInfo info) {
        return data.asSlice(info.begin(), info.end() - info.begin());
    }

    @Override
    public void close() {
        arena.close();
    }
}
