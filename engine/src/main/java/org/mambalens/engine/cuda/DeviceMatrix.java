package org.mambalens.engine.cuda;

import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.io.DType;
import org.mambalens.engine.kernels.Scalar;
import org.mambalens.engine.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/** A row-major weight [rows, cols] in device memory, uploaded once, as F32 or as bfloat16 (see {@link Precision}). */
public record DeviceMatrix(DeviceBuffer buffer, int rows, int cols, Precision precision) implements org.mambalens.engine.backend.Matrix {
    private static final int BLOCK = 1 << 18;   // elements converted on the host per copy

    /** Uploads a checkpoint tensor viewed as [rows, cols]: F32 widens F16/BF16; BF16 keeps BF16 as is and rounds the rest. */
    public static DeviceMatrix upload(DeviceArena arena, Tensor t, int rows, int cols, Precision precision) {
        return stack(arena, precision, cols, t);
    }

    /** Stacks tensors of {@code cols} columns on top of each other (ViT's query, key and value as one [3D, D] weight). */
    public static DeviceMatrix stack(DeviceArena arena, Precision precision, int cols, Tensor... parts) {
        long total = 0;
        for (Tensor t : parts) {
            if (t.size() % cols != 0) throw new IllegalArgumentException(t + " does not have " + cols + " columns");
            total += t.size();
        }
        DeviceBuffer b = precision == Precision.BF16 ? arena.bfloat16s(total) : arena.floats(total);
        long at = 0;
        for (Tensor t : parts) {
            if (precision == Precision.BF16) copyBfloat16(b, at, t);
            else copyFloats(b, at, t);
            at += t.size();
        }
        return new DeviceMatrix(b, Math.toIntExact(total / cols), cols, precision);
    }

    /** F32 tensors go straight from the mapping; others are widened a block at a time. */
    private static void copyFloats(DeviceBuffer b, long offset, Tensor t) {
        if (t.dtype() == DType.F32) {
            b.upload(t.data().asSlice(0, 4 * t.size()), offset);
            return;
        }
        for (long from = 0; from < t.size(); from += BLOCK) {
            float[] widened = new float[(int) Math.min(BLOCK, t.size() - from)];
            for (int i = 0; i < widened.length; i++) widened[i] = t.getFloat(from + i);
            b.upload(MemorySegment.ofArray(widened), offset + from);
        }
    }

    /** BF16 tensors go straight from the mapping; others are rounded to the nearest bfloat16 a block at a time. */
    private static void copyBfloat16(DeviceBuffer b, long offset, Tensor t) {
        if (t.dtype() == DType.BF16) {
            b.uploadBytes(t.data().asSlice(0, 2 * t.size()), 2 * offset);
            return;
        }
        for (long from = 0; from < t.size(); from += BLOCK) {
            short[] rounded = new short[(int) Math.min(BLOCK, t.size() - from)];
            for (int i = 0; i < rounded.length; i++) rounded[i] = (short) (Float.floatToRawIntBits(Scalar.roundToBfloat16(t.getFloat(from + i))) >>> 16);
            b.uploadBytes(MemorySegment.ofArray(rounded), 2 * (offset + from));
        }
    }

    public long address() {
        return buffer.address();
    }
}
