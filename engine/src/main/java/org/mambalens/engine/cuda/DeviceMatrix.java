package org.mambalens.engine.cuda;

import org.mambalens.engine.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/** A row-major F32 matrix [rows, cols] in device memory: a weight uploaded once. */
public record DeviceMatrix(DeviceBuffer buffer, int rows, int cols) {

    /** Uploads a checkpoint tensor viewed as [rows, cols] (F16/BF16 widened to F32). */
    public static DeviceMatrix upload(DeviceArena arena, Tensor t, int rows, int cols) {
        return stack(arena, cols, t);
    }

    /** Stacks tensors of {@code cols} columns on top of each other (ViT's query, key and value as one [3D, D] weight). */
    public static DeviceMatrix stack(DeviceArena arena, int cols, Tensor... parts) {
        long total = 0;
        for (Tensor t : parts) {
            if (t.size() % cols != 0) throw new IllegalArgumentException(t + " does not have " + cols + " columns");
            total += t.size();
        }
        DeviceBuffer b = arena.floats(total);
        long at = 0;
        for (Tensor t : parts) {
            copy(b, at, t);
            at += t.size();
        }
        return new DeviceMatrix(b, Math.toIntExact(total / cols), cols);
    }

    /** F32 tensors go straight from the mapping; others are widened a megabyte at a time. */
    private static void copy(DeviceBuffer b, long offset, Tensor t) {
        if (t.dtype() == org.mambalens.engine.io.DType.F32) {
            b.upload(t.data().asSlice(0, 4 * t.size()), offset);
            return;
        }
        int block = 1 << 18;
        for (long from = 0; from < t.size(); from += block) {
            float[] widened = new float[(int) Math.min(block, t.size() - from)];
            for (int i = 0; i < widened.length; i++) widened[i] = t.getFloat(from + i);
            b.upload(MemorySegment.ofArray(widened), offset + from);
        }
    }

    public static DeviceMatrix upload(DeviceArena arena, float[] values, int rows, int cols) {
        if (values.length != rows * cols) throw new IllegalArgumentException(values.length + " values are not [" + rows + ", " + cols + "]");
        return new DeviceMatrix(arena.upload(values), rows, cols);
    }

    public long address() {
        return buffer.address();
    }
}
