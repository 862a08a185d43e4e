package org.mambalens.engine.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes a safetensors file (DESIGN §1): tensors in insertion order, header padded with spaces to a
 * multiple of 8 bytes, written to a temporary file and renamed so that no half-written file remains.
 */
public final class SafetensorsWriter {
    /** Raw little-endian bytes of one tensor. */
    public record Entry(DType dtype, long[] shape, byte[] bytes) {
    }

    private final Map<String, Entry> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafetensorsWriter add(String name, DType dtype, long[] shape, byte[] bytes) {
        long n = 1;
        for (long d : shape) n *= d;
        if (n * dtype.bytes != bytes.length) throw new IllegalArgumentException(name + ": " + bytes.length + " bytes for " + n + " elements of " + dtype);
        if (tensors.putIfAbsent(name, new Entry(dtype, shape.clone(), bytes)) != null) throw new IllegalArgumentException("duplicate tensor " + name);
        return this;
    }

    public SafetensorsWriter addFloat32(String name, float[] values, long... shape) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return add(name, DType.F32, shape, b.array());
    }

    public void write(Path file) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (var e : tensors.entrySet()) {
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", e.getValue().dtype().name());
            var shape = t.putArray("shape");
            for (long d : e.getValue().shape()) shape.add(d);
            t.putArray("data_offsets").add(offset).add(offset + e.getValue().bytes().length);
            offset += e.getValue().bytes().length;
        }
        byte[] h;
        try {
            h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        int padded = (h.length + 7) / 8 * 8;
        byte[] headerBytes = new byte[padded];
        java.util.Arrays.fill(headerBytes, (byte) ' ');
        System.arraycopy(h, 0, headerBytes, 0, h.length);
        AtomicWrite.write(file, out -> {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            out.write(headerBytes);
            for (Entry e : tensors.values()) out.write(e.bytes());
        });
    }
}
