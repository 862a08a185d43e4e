package org.mambalens.engine.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} (format 1.0/2.0/3.0) for float32 arrays, written atomically (temp file, then
 * rename) so a failed run leaves no half-written output. Reading parses the header dictionary with
 * a fixed pattern; nothing in the file is evaluated.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern HEADER = Pattern.compile(
            "\\{\\s*'descr'\\s*:\\s*'([<>|=]?[a-z]\\d+)'\\s*,\\s*'fortran_order'\\s*:\\s*(True|False)\\s*,\\s*'shape'\\s*:\\s*\\(([\\d,\\s]*)\\)\\s*,?\\s*\\}\\s*");

    /** A float32 array and its shape, row-major. */
    public record Array(float[] data, int[] shape) {
        public int dim(int i) {
            return shape[i];
        }
    }

    private Npy() {
    }

    public static void writeFloat32(Path file, float[] data, int... shape) {
        long n = 1;
        for (int d : shape) n *= d;
        if (n != data.length) throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " does not hold " + data.length + " floats");
        writeFloat32(file, shape, sink -> sink.accept(data));
    }

    /** Receives the array's values in row-major order, a chunk at a time. */
    @FunctionalInterface
    public interface FloatSink {
        void accept(float[] chunk) throws IOException;
    }

    /** The values of an array too large to hold at once. */
    @FunctionalInterface
    public interface FloatSource {
        void writeTo(FloatSink sink) throws IOException;
    }

    /**
     * Streams a float32 array of the given shape from {@code source}, chunk by chunk, atomically: the
     * file appears only when exactly the shape's number of values was written.
     */
    public static void writeFloat32(Path file, int[] shape, FloatSource source) {
        long n = 1;
        for (int d : shape) n *= d;
        long expected = n;
        StringBuilder dims = new StringBuilder();
        for (int d : shape) dims.append(d).append(", ");
        if (shape.length > 1) dims.setLength(dims.length() - 2);
        else if (shape.length == 1) dims.setLength(dims.length() - 1);
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
        int unpadded = MAGIC.length + 2 + 2 + dict.length() + 1;
        String header = dict + " ".repeat((64 - unpadded % 64) % 64) + "\n";
        AtomicWrite.write(file, out -> {
            out.write(MAGIC);
            out.write(new byte[]{1, 0, (byte) header.length(), (byte) (header.length() >> 8)});
            out.write(header.getBytes(StandardCharsets.US_ASCII));
            long[] written = {0};
            var buffered = new java.io.BufferedOutputStream(out, 1 << 16);
            source.writeTo(chunk -> {
                ByteBuffer body = ByteBuffer.allocate(chunk.length * 4).order(ByteOrder.LITTLE_ENDIAN);
                body.asFloatBuffer().put(chunk);
                buffered.write(body.array());
                written[0] += chunk.length;
            });
            buffered.flush();
            if (written[0] != expected) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + expected + " floats, " + written[0] + " were given");
            }
        });
    }

    public static Array readFloat32(Path file) {
        byte[] all;
        try {
            all = Files.readAllBytes(InputFile.wholeInMemory(file, 1));
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read: " + e.getMessage());
        }
        if (all.length < 10 || !Arrays.equals(Arrays.copyOf(all, 6), MAGIC)) throw new CheckpointException(file, "not an .npy file");
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int major = all[6];
        if (major < 1 || major > 3 || (major > 1 && all.length < 12)) throw new CheckpointException(file, "corrupt .npy header");
        long headerLength = major == 1 ? Short.toUnsignedInt(b.getShort(8)) : Integer.toUnsignedLong(b.getInt(8));
        int start = major == 1 ? 10 : 12;
        if (start + headerLength > all.length) throw new CheckpointException(file, "corrupt .npy header");
        String header = new String(all, start, (int) headerLength, StandardCharsets.ISO_8859_1);
        Matcher m = HEADER.matcher(header);
        if (!m.matches()) throw new CheckpointException(file, "unsupported .npy header " + header.strip());
        String descr = m.group(1), type = descr.replaceAll("[<>|=]", "");
        int width = switch (type) {
            case "f4", "i4" -> 4;
            case "f8", "i8" -> 8;
            default -> throw new CheckpointException(file, "unsupported dtype " + descr + " (float32, float64, int32, int64 are read)");
        };
        int[] shape = Arrays.stream(m.group(3).split(",")).map(String::strip).filter(d -> !d.isEmpty()).mapToInt(d -> dimension(file, d)).toArray();
        long n = MemoryBudget.product(Arrays.stream(shape).asLongStream().toArray());
        int offset = (int) (start + headerLength);
        if (n < 0 || n > Integer.MAX_VALUE || n * width != all.length - offset) {
            throw new CheckpointException(file, "size does not match shape " + Arrays.toString(shape));
        }
        float[] out = new float[(int) n];
        ByteBuffer data = ByteBuffer.wrap(all, offset, all.length - offset).slice().order(descr.startsWith(">") ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case "f4" -> data.asFloatBuffer().get(out);
            case "f8" -> { for (int i = 0; i < n; i++) out[i] = (float) data.getDouble(i * 8); }
            case "i4" -> { for (int i = 0; i < n; i++) out[i] = data.getInt(i * 4); }
            default -> { for (int i = 0; i < n; i++) out[i] = data.getLong(i * 8); }
        }
        return new Array(m.group(2).equals("True") ? toRowMajor(out, shape) : out, shape);
    }

    private static int dimension(Path file, String digits) {
        try {
            return Integer.parseInt(digits);
        } catch (NumberFormatException e) {
            throw new CheckpointException(file, "shape dimension " + digits + " is larger than 2^31 - 1");
        }
    }

    /** Column-major (Fortran) data of the given shape, reordered row-major. */
    private static float[] toRowMajor(float[] columnMajor, int[] shape) {
        float[] out = new float[columnMajor.length];
        int[] index = new int[shape.length];
        for (int i = 0; i < out.length; i++) {
            int f = 0;                                   // index in column-major order
            for (int d = shape.length - 1; d >= 0; d--) f = f * shape[d] + index[d];
            out[i] = columnMajor[f];
            for (int d = shape.length - 1; d >= 0 && ++index[d] == shape[d]; d--) index[d] = 0;
        }
        return out;
    }
}
