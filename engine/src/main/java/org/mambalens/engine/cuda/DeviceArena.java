package org.mambalens.engine.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** Owns device buffers: each is freed when the arena closes (a model's weights, a run's scratch). */
public final class DeviceArena implements AutoCloseable {
    /**
     * Set by the GPU tests (-Dmambalens.cuda.poison=true): models fill their activation buffers with NaN
     * before every run, so that a kernel reading what nothing wrote shows up in the results.
     */
    public static final boolean POISON = Boolean.getBoolean("mambalens.cuda.poison");

    private final Gpu gpu;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private final List<Graph> graphs = new ArrayList<>();
    private final List<MemorySegment> pinned = new ArrayList<>();
    private long bytes;

    DeviceArena(Gpu gpu) {
        this.gpu = gpu;
    }

    /** A buffer of {@code count} floats (or 32-bit ints), contents undefined. */
    public DeviceBuffer floats(long count) {
        if (count <= 0) throw new IllegalArgumentException("device buffer of " + count + " floats");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pointer = arena.allocate(JAVA_LONG);
            int result = gpu.cu.cuMemAlloc(pointer, count * 4);
            if (result != 0) {
                long[] info = gpu.memoryInfo();
                gpu.cu.check(String.format("cuMemAlloc of %.1f MiB (%.1f of %.1f MiB free)", count * 4 / 1048576.0,
                        info[0] / 1048576.0, info[1] / 1048576.0), result);
            }
            DeviceBuffer b = new DeviceBuffer(gpu, pointer.get(JAVA_LONG, 0), count);
            buffers.add(b);
            bytes += count * 4;
            return b;
        }
    }

    /** A buffer of {@code count} bfloat16 values (rounded up to whole floats), contents undefined. */
    public DeviceBuffer bfloat16s(long count) {
        return floats((count + 1) / 2);
    }

    /**
     * Page-locked host memory of {@code count} floats, freed with this arena: a staging area from which one
     * copy reaches the device at full bus speed (pageable memory goes through the driver's own staging).
     */
    public MemorySegment pinnedFloats(long count) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pointer = arena.allocate(java.lang.foreign.ValueLayout.ADDRESS);
            gpu.cu.check(String.format("cuMemHostAlloc of %.1f MiB", count * 4 / 1048576.0), gpu.cu.cuMemHostAlloc(pointer, count * 4, 0));
            MemorySegment host = pointer.get(java.lang.foreign.ValueLayout.ADDRESS, 0).reinterpret(count * 4);
            pinned.add(host);
            return host;
        }
    }

    /** A buffer holding a copy of {@code values}. */
    public DeviceBuffer upload(float[] values) {
        DeviceBuffer b = floats(values.length);
        b.upload(values);
        return b;
    }

    /** Captures {@code work} as a graph (see {@link Gpu#capture}) kept until this arena closes, since it replays launches on its buffers. */
    public Graph capture(Runnable work) {
        Graph graph = gpu.capture(work);
        graphs.add(graph);
        return graph;
    }

    /** Every buffer of this arena filled with NaN (see {@link #POISON}). */
    public void poison() {
        for (DeviceBuffer b : buffers) b.fill(Float.NaN);
    }

    /** Bytes of device memory held. */
    public long bytes() {
        return bytes;
    }

    @Override
    public void close() {
        gpu.bind();
        gpu.synchronize();
        for (Graph g : graphs) g.close();
        graphs.clear();
        for (int i = buffers.size() - 1; i >= 0; i--) gpu.cu.cuMemFree(buffers.get(i).address());
        buffers.clear();
        for (MemorySegment host : pinned) gpu.cu.cuMemFreeHost(host);
        pinned.clear();
        bytes = 0;
    }
}
