package org.mambalens.xai.data;

import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.io.InputFile;
import org.mambalens.engine.io.MemoryBudget;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * IDX files (the MNIST / Fashion-MNIST format), plain or gzipped: a big-endian magic (0, 0, type,
 * rank), the dimensions, then the data. Only unsigned bytes (type 0x08), which is what the datasets use.
 */
public final class Idx {
    /** Unsigned-byte data and its shape, e.g. images [N, 28, 28] or labels [N]. */
    public record Array(byte[] data, int[] shape) {
        public int count() {
            return shape[0];
        }

        /** Elements of one item (28·28 for an image, 1 for a label). */
        public int itemSize() {
            int n = 1;
            for (int i = 1; i < shape.length; i++) n *= shape[i];
            return n;
        }

        public int get(int index) {
            return data[index] & 0xFF;
        }
    }

    private static final long MAX_BYTES = 1L << 30;

    private Idx() {
    }

    public static Array read(Path file) {
        byte[] raw;
        try (InputStream in = Files.newInputStream(InputFile.regular(file))) {
            InputStream s = file.getFileName().toString().endsWith(".gz") ? new GZIPInputStream(in) : in;
            raw = s.readNBytes((int) MAX_BYTES);
        } catch (IOException e) {
            throw new CheckpointException(file, Files.exists(file) ? "cannot read: " + e.getMessage() : "no such file");
        }
        ByteBuffer b = ByteBuffer.wrap(raw);
        if (raw.length < 4 || raw[0] != 0 || raw[1] != 0) throw new CheckpointException(file, "not an IDX file");
        if (raw[2] != 0x08) throw new CheckpointException(file, String.format("IDX element type 0x%02x is not supported (unsigned bytes only)", raw[2]));
        int rank = raw[3];
        if (rank < 1 || rank > 4 || raw.length < 4 + 4 * rank) throw new CheckpointException(file, "IDX rank " + rank + " is not supported");
        int[] shape = new int[rank];
        long n = 1;
        for (int i = 0; i < rank; i++) {
            shape[i] = b.getInt(4 + 4 * i);
            if (shape[i] < 0) throw new CheckpointException(file, "negative IDX dimension");
            n = MemoryBudget.product(n, shape[i]);
        }
        int offset = 4 + 4 * rank;
        if (raw.length - offset != n) throw new CheckpointException(file, "IDX data holds " + (raw.length - offset) + " bytes, the header says " + (n < 0 ? "more than 2^63" : String.valueOf(n)));
        byte[] data = new byte[(int) n];
        System.arraycopy(raw, offset, data, 0, data.length);
        return new Array(data, shape);
    }
}
