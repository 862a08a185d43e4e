package org.mambalens.engine.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A range of device memory holding F32 values (or 32-bit ids, or bfloat16 pairs), owned by a {@link DeviceArena}. Copies
 * go through the synchronous driver calls, ordered after the work queued on the device's stream.
 */
public final class DeviceBuffer {
    private final Gpu gpu;
    private final long address;
    private final long floats;

    DeviceBuffer(Gpu gpu, long address, long floats) {
        this.gpu = gpu;
        this.address = address;
        this.floats = floats;
    }

    public long address() {
        return address;
    }

    public long floats() {
        return floats;
    }

    /** The device address of element {@code index} (for kernels that read a column block or a row range). */
    public long at(long index) {
        if (index < 0 || index >= floats) throw new IndexOutOfBoundsException("element " + index + " of a device buffer of " + floats);
        return address + 4 * index;
    }

    public void upload(float[] values) {
        upload(MemorySegment.ofArray(values), 0);
    }

    public void upload(int[] values) {
        upload(MemorySegment.ofArray(values), 0);
    }

    /** Copies {@code host} (any memory: a Java array, a mapped checkpoint tensor) to element {@code offset} onwards. */
    public void upload(MemorySegment host, long offset) {
        if (host.byteSize() % 4 != 0) throw new IllegalArgumentException(host.byteSize() + " bytes are not whole floats");
        uploadBytes(host, 4 * offset);
    }

    /** Copies {@code host} to byte {@code byteOffset} onwards (bfloat16 weights: two per float of the buffer). */
    public void uploadBytes(MemorySegment host, long byteOffset) {
        if (byteOffset < 0 || byteOffset + host.byteSize() > 4 * floats) {
            throw new IndexOutOfBoundsException(host.byteSize() + " bytes at byte " + byteOffset + " of a device buffer of " + 4 * floats);
        }
        gpu.cu.check("cuMemcpyHtoD", gpu.cu.cuMemcpyHtoD(address + byteOffset, host, host.byteSize()));
    }

    /**
     * Copies equal-length arrays (a batch of images) to the start of this buffer back to back: gathered in
     * parallel into {@code staging} (page-locked, see {@link DeviceArena#pinnedFloats}), then one copy.
     */
    public void uploadAll(float[][] parts, MemorySegment staging) {
        if (parts.length == 0) return;
        int n = parts[0].length;
        long bytes = 4L * n * parts.length;
        if (bytes > staging.byteSize()) throw new IndexOutOfBoundsException(bytes + " bytes do not fit a staging area of " + staging.byteSize());
        org.mambalens.engine.kernels.Parallel.forRange(parts.length, 1, (a, b) -> {
            for (int i = a; i < b; i++) MemorySegment.copy(MemorySegment.ofArray(parts[i]), 0, staging, 4L * n * i, 4L * n);
        });
        upload(staging.asSlice(0, bytes), 0);
    }

    /** Elements [from, from + out.length) into {@code out}, after the queued work has finished. */
    public float[] download(long from, float[] out) {
        if (from < 0 || from + out.length > floats) throw new IndexOutOfBoundsException(out.length + " elements at " + from + " of a device buffer of " + floats);
        gpu.cu.check("cuMemcpyDtoH", gpu.cu.cuMemcpyDtoH(MemorySegment.ofArray(out), address + 4 * from, 4L * out.length));
        return out;
    }

    /** As above through page-locked {@code staging} (a decode step's logits: no pass through the driver's own staging). */
    public float[] download(long from, float[] out, MemorySegment staging) {
        if (from < 0 || from + out.length > floats) throw new IndexOutOfBoundsException(out.length + " elements at " + from + " of a device buffer of " + floats);
        gpu.cu.check("cuMemcpyDtoH", gpu.cu.cuMemcpyDtoH(staging, address + 4 * from, 4L * out.length));
        MemorySegment.copy(staging, 0, MemorySegment.ofArray(out), 0, 4L * out.length);
        return out;
    }

    public float[] download(long from, int count) {
        return download(from, new float[count]);
    }

    /** Every element set to {@code value} (tests poison outputs with NaN this way). */
    public void fill(float value) {
        gpu.cu.check("cuMemsetD32", gpu.cu.cuMemsetD32(address, Float.floatToRawIntBits(value), floats));
    }

    /** Copies {@code count} elements of {@code source} from {@code from} to this buffer's element {@code to}. */
    public void copyFrom(DeviceBuffer source, long from, long to, long count) {
        if (count == 0) return;
        source.at(from + count - 1);
        at(to + count - 1);
        gpu.cu.check("cuMemcpyDtoD", gpu.cu.cuMemcpyDtoD(address + 4 * to, source.address + 4 * from, 4 * count));
    }
}
