package org.mambalens.engine.cuda;

import org.mambalens.engine.io.Checkpoint;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One CUDA device as MambaLens uses it: the device's primary context, one stream that every kernel,
 * GEMM and copy is ordered on, a cuBLAS handle bound to that stream, and the kernels of
 * {@code engine/src/main/cuda/mambalens.cu} loaded from the PTX shipped as a resource. Not for use by
 * several threads at once (the models that own one serialise their calls).
 */
public final class Gpu implements AutoCloseable {
    static final String PTX_RESOURCE = "/org/mambalens/engine/cuda/mambalens.ptx";

    final CudaDriver cu;
    final Cublas blas;
    private final int device;
    private final String name;
    private final MemorySegment context, stream, blasHandle, module;
    private final Map<String, MemorySegment> kernels = new HashMap<>();
    private final Arena handles = Arena.ofShared();
    private boolean closed;

    private Gpu(int ordinal) {
        cu = CudaDriver.get();
        int init = cu.cuInit(0);
        if (init == CudaDriver.CUDA_ERROR_NO_DEVICE) throw new CudaException("no CUDA device found (the driver is installed but sees no GPU)");
        cu.check("cuInit", init);
        MemorySegment out = handles.allocate(JAVA_LONG);
        cu.check("cuDeviceGetCount", cu.cuDeviceGetCount(out));
        int count = out.get(JAVA_INT, 0);
        if (count == 0) throw new CudaException("no CUDA device found (the driver sees 0 GPUs)");
        if (ordinal < 0 || ordinal >= count) throw new CudaException("CUDA device " + ordinal + " does not exist (" + count + " found)");
        cu.check("cuDeviceGet", cu.cuDeviceGet(out, ordinal));
        device = out.get(JAVA_INT, 0);
        MemorySegment text = handles.allocate(256);
        cu.check("cuDeviceGetName", cu.cuDeviceGetName(text, 256, device));
        name = text.getString(0);
        context = handles.allocate(ADDRESS);
        cu.check("cuDevicePrimaryCtxRetain", cu.cuDevicePrimaryCtxRetain(context, device));
        bind();
        MemorySegment s = handles.allocate(ADDRESS);
        cu.check("cuStreamCreate", cu.cuStreamCreate(s, 0));   // a blocking stream: ordered after the synchronous copies
        stream = s.get(ADDRESS, 0);
        blas = Cublas.get();
        MemorySegment h = handles.allocate(ADDRESS);
        blas.check("cublasCreate", blas.cublasCreate(h));
        blasHandle = h.get(ADDRESS, 0);
        blas.check("cublasSetStream", blas.cublasSetStream(blasHandle, stream));
        MemorySegment m = handles.allocate(ADDRESS);
        cu.check("cuModuleLoadData(" + PTX_RESOURCE + ")", cu.cuModuleLoadData(m, handles.allocateFrom(ptx())));
        module = m.get(ADDRESS, 0);
    }

    /** Device {@code -Dmambalens.cuda.device} (0 by default); a {@link CudaException} says why when there is none. */
    public static Gpu open() {
        return new Gpu(Integer.getInteger("mambalens.cuda.device", 0));
    }

    /** Null when a CUDA device can be opened here, else the one-line reason why not. */
    public static String unavailableReason() {
        try (Gpu gpu = open()) {
            return null;
        } catch (CudaException e) {
            return e.getMessage();
        }
    }

    static String ptx() {
        try (InputStream in = Gpu.class.getResourceAsStream(PTX_RESOURCE)) {
            if (in == null) throw new CudaException("the kernels' PTX " + PTX_RESOURCE + " is missing from the jar (run scripts/build-ptx.sh)");
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new CudaException("cannot read " + PTX_RESOURCE + ": " + e.getMessage(), e);
        }
    }

    /**
     * Builds a model on this device from the checkpoint in {@code dir}: {@code build} uploads what it needs,
     * then the checkpoint is unmapped. The model owns this device; if building fails, the device is closed.
     */
    public <T> T load(Path dir, Function<Checkpoint, T> build) {
        try {
            return Checkpoint.openFor(dir, ck -> {
                try (ck) {
                    return build.apply(ck);
                }
            });
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    public String name() {
        return name;
    }

    /** Makes this device's context current on the calling thread (each entry point of a GPU model calls it). */
    public void bind() {
        cu.check("cuCtxSetCurrent", cu.cuCtxSetCurrent(context.get(ADDRESS, 0)));
    }

    MemorySegment stream() {
        return stream;
    }

    MemorySegment blasHandle() {
        return blasHandle;
    }

    /** Free and total device memory in bytes. */
    public long[] memoryInfo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG), total = arena.allocate(JAVA_LONG);
            cu.check("cuMemGetInfo", cu.cuMemGetInfo(free, total));
            return new long[]{free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        }
    }

    /** A new owner of device buffers, freed together when it is closed. */
    public DeviceArena newArena() {
        return new DeviceArena(this);
    }

    /** Waits for everything queued on this device's stream. */
    public void synchronize() {
        cu.check("cuStreamSynchronize", cu.cuStreamSynchronize(stream));
    }

    /**
     * Launches a kernel of the PTX module on the stream. {@code args} follow the kernel's C signature:
     * a Java {@code long} for a pointer or a 64-bit integer, {@code int} for int, {@code float} for float.
     */
    void launch(String kernel, int gridX, int gridY, int gridZ, int block, int sharedBytes, Object... args) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(ADDRESS, args.length);
            for (int i = 0; i < args.length; i++) {
                MemorySegment value = switch (args[i]) {
                    case Long l -> arena.allocateFrom(JAVA_LONG, l);
                    case Integer n -> arena.allocateFrom(JAVA_INT, n);
                    case Float f -> arena.allocateFrom(JAVA_FLOAT, f);
                    default -> throw new IllegalArgumentException(kernel + ": argument " + i + " is a " + args[i].getClass().getSimpleName());
                };
                params.setAtIndex(ADDRESS, i, value);
            }
            cu.check("cuLaunchKernel(" + kernel + ")", cu.cuLaunchKernel(function(kernel), gridX, gridY, gridZ, block, 1, 1, sharedBytes,
                    stream, params, MemorySegment.NULL));
        }
    }

    private MemorySegment function(String kernel) {
        return kernels.computeIfAbsent(kernel, k -> {
            MemorySegment f = handles.allocate(ADDRESS);
            cu.check("cuModuleGetFunction(" + k + ")", cu.cuModuleGetFunction(f, module, handles.allocateFrom(k)));
            return f.get(ADDRESS, 0);
        });
    }

    /** Records {@code work}'s launches on the stream into a CUDA graph, to be replayed with one launch. */
    public Graph capture(Runnable work) {
        cu.check("cuStreamBeginCapture", cu.cuStreamBeginCapture(stream, CudaDriver.CU_STREAM_CAPTURE_MODE_RELAXED));
        MemorySegment graph = handles.allocate(ADDRESS);
        try {
            work.run();
        } finally {
            cu.check("cuStreamEndCapture", cu.cuStreamEndCapture(stream, graph));
        }
        MemorySegment exec = handles.allocate(ADDRESS);
        cu.check("cuGraphInstantiateWithFlags", cu.cuGraphInstantiate(exec, graph.get(ADDRESS, 0), 0));
        return new Graph(this, graph.get(ADDRESS, 0), exec.get(ADDRESS, 0));
    }

    /** Milliseconds of device time that {@code work}'s queued launches take, measured with events around them. */
    public float time(Runnable work) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment start = arena.allocate(ADDRESS), end = arena.allocate(ADDRESS), millis = arena.allocate(JAVA_FLOAT);
            cu.check("cuEventCreate", cu.cuEventCreate(start, 0));
            cu.check("cuEventCreate", cu.cuEventCreate(end, 0));
            try {
                cu.check("cuEventRecord", cu.cuEventRecord(start.get(ADDRESS, 0), stream));
                work.run();
                cu.check("cuEventRecord", cu.cuEventRecord(end.get(ADDRESS, 0), stream));
                cu.check("cuEventSynchronize", cu.cuEventSynchronize(end.get(ADDRESS, 0)));
                cu.check("cuEventElapsedTime", cu.cuEventElapsedTime(millis, start.get(ADDRESS, 0), end.get(ADDRESS, 0)));
                return millis.get(JAVA_FLOAT, 0);
            } finally {
                cu.cuEventDestroy(start.get(ADDRESS, 0));
                cu.cuEventDestroy(end.get(ADDRESS, 0));
            }
        }
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        bind();
        cu.cuStreamSynchronize(stream);
        blas.cublasDestroy(blasHandle);
        cu.cuModuleUnload(module);
        cu.cuStreamDestroy(stream);
        cu.cuDevicePrimaryCtxRelease(device);
        handles.close();
    }

    @Override
    public String toString() {
        return name;
    }
}
