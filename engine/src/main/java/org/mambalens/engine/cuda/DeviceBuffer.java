package org.mambalens.engine.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A range of device memory holding F32 values (or 32-bit ids), owned by a {@link DeviceArena}. Copies
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
        if (host.byteSize() % 4 != 0 || offset < 0 || offset + host.byteSize() / 4 > floats) {
            throw new IndexOutOfBoundsException(host.byteSize() + " bytes at element " + offset + " of a device buffer of " + floats);
        }
        gpu.cu.check("cuMemcpyHtoD", gpu.cu.cuMemcpyHtoD(address + 4 * offset, host, host.byteSize()));
    }

    /** Elements [from, from + out.length) into {@code out}, after the queued work has finished. */
    public float[] download(long from, float[] out) {
        if (from < 0 || from + out.length > floats) throw new IndexOutOfBoundsException(out.length + " elements at " + from + " of a device buffer of " + floats);
        gpu.cu.check("cuMemcpyDtoH", gpu.cu.cuMemcpyDtoH(MemorySegment.ofArray(out), address + 4 * from, 4L * out.length));
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
