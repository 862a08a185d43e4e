package org.mambalens.engine.tensor;

import org.mambalens.engine.io.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A named, typed, row-major view on checkpoint bytes (usually a memory mapping). Nothing is copied:
 * {@link #getFloat} and the kernels widen F16/BF16 elements to F32 as they read them.
 */
public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A heap array viewed as a row-major F32 tensor (activations used as the weight side of a matmul). */
    public static Tensor of(String name, float[] data, long... shape) {
        Tensor t = new Tensor(name, DType.F32, shape, MemorySegment.ofArray(data));
        if (t.size() != data.length) throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " does not hold " + data.length + " floats");
        return t;
    }

    /** The first rows of a larger heap array (a growing cache, say) viewed as a row-major F32 tensor of this shape. */
    public static Tensor view(String name, float[] data, long... shape) {
        Tensor t = new Tensor(name, DType.F32, shape, MemorySegment.ofArray(data));
        if (t.size() > data.length) throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " exceeds " + data.length + " floats");
        return t;
    }

    public long size() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public int dim(int i) {
        return Math.toIntExact(shape[i]);
    }

    public boolean hasShape(long... expected) {
        return Arrays.equals(shape, expected);
    }

    /** Element {@code i} of a float tensor, widened to F32. */
    public float getFloat(long i) {
        return switch (dtype) {
            case F32 -> data.getAtIndex(F32, i);
            case BF16 -> Float.intBitsToFloat((data.getAtIndex(I16, i) & 0xFFFF) << 16);
            case F16 -> Float.float16ToFloat(data.getAtIndex(I16, i));
            case F64 -> (float) data.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
            default -> throw new IllegalStateException(name + " is " + dtype + ", not a float tensor");
        };
    }

    /** The whole tensor widened to F32 on the heap: for the small per-channel parameters only. */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(size())];
        if (dtype == DType.F32) {
            MemorySegment.copy(data, F32, 0, out, 0, out.length);    // one bulk copy: fast before the JIT has compiled anything
            return out;
        }
        for (int i = 0; i < out.length; i++) out[i] = getFloat(i);
        return out;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
