package org.mambalens.engine.cuda;

import org.mambalens.engine.io.Checkpoint;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One CUDA device as MambaLens uses it: the device's primary context, one stream that every kernel,
 * GEMM and copy is ordered on, a cuBLAS handle bound to that stream, and the kernels: the CUDA C files of
 * {@link KernelSource#DIRECTORY}, compiled by NVRTC for this GPU at first use ({@link KernelCompiler}, cached on
 * disk), one module per file. Not for use by several threads at once (the models that own one serialise their calls).
 */
public final class Gpu implements AutoCloseable {
    final CudaDriver cu;
    final Cublas blas;
    private final int device, architecture, multiprocessors;
    private final boolean overlap;                      // programmatic dependent launches (see launch)
    private final String name;
    private final MemorySegment context, stream, blasHandle;
    private final List<Module> modules;
    private final Map<String, MemorySegment> kernels = new HashMap<>();    // by name, looked up in the modules at first launch
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
        architecture = attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) * 10
                + attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        multiprocessors = attribute(CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        overlap = architecture >= 90 && !"false".equals(System.getProperty("mambalens.cuda.overlap"));
        // NVRTC first: a machine without it fails here, before anything is allocated on the device.
        KernelCompiler compiler = new KernelCompiler(Nvrtc.get(), architecture, KernelCompiler.cacheDirectory());
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
        modules = loadModules(compiler, KernelSource.all());
    }

    /** The GPU's streaming multiprocessors, for kernels that size their grid to fill the GPU. */
    int multiprocessors() {
        return multiprocessors;
    }

    private int attribute(int attribute) {
        MemorySegment value = handles.allocate(JAVA_INT);
        cu.check("cuDeviceGetAttribute(" + attribute + ")", cu.cuDeviceGetAttribute(value, attribute, device));
        return value.get(JAVA_INT, 0);
    }

    /** A loaded kernel source. */
    record Module(String source, MemorySegment handle) {
    }

    /**
     * Loads {@code sources} as modules from {@code compiler}'s images (cached or compiled now); a cached image
     * the driver refuses is compiled again, once, and replaces the cache entry.
     */
    List<Module> loadModules(KernelCompiler compiler, List<KernelSource> sources) {
        List<Module> loaded = new ArrayList<>();
        for (KernelCompiler.Image image : compiler.images(sources)) {
            MemorySegment module = handles.allocate(ADDRESS);
            int status = loadData(module, image);
            if (status != 0 && image.cached()) {
                image = compiler.recompile(image);
                status = loadData(module, image);
            }
            if (status != 0) {
                throw new CudaException(cu.error("cuModuleLoadData(" + image.source().name() + ", " + compiler.target() + " from NVRTC "
                        + compiler.version() + ")", status) + "; " + driverSupport() + ", which must be at least NVRTC's (else name an older NVRTC with -D"
                        + Nvrtc.PROPERTY + "=FILE)");
            }
            loaded.add(new Module(image.source().name(), module.get(ADDRESS, 0)));
        }
        return loaded;
    }

    private int loadData(MemorySegment module, KernelCompiler.Image image) {
        try (Arena arena = Arena.ofConfined()) {
            return cu.cuModuleLoadData(module, arena.allocateFrom(JAVA_BYTE, image.bytes()));
        }
    }

    private String driverSupport() {
        MemorySegment version = handles.allocate(JAVA_INT);
        if (cu.cuDriverGetVersion(version) != 0) return "the driver's CUDA version is unknown";
        int v = version.get(JAVA_INT, 0);                  // 1000·major + 10·minor
        return "the driver supports CUDA " + v / 1000 + "." + v % 1000 / 10;
    }

    /** Unloads modules that {@link #loadModules} gave. */
    void unloadModules(List<Module> loaded) {
        for (Module m : loaded) cu.cuModuleUnload(m.handle());
    }

    /** The compute capability as major·10 + minor (90 for sm_90). */
    int architecture() {
        return architecture;
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
     * Launches a kernel, found by name in the modules, on the stream. {@code args} follow the kernel's C signature:
     * a Java {@code long} for a pointer or a 64-bit integer, {@code int} for int, {@code float} for float.
     * On sm_90 and later the launch is a programmatic dependent one: the kernel may start while the kernel before it on
     * the stream finishes, and reads what that one wrote only after {@code wait_for_inputs()} (prelude.cuh), which every
     * kernel calls; its launch, and a GEMV's weight loads, overlap the other's tail (a decode step is a chain of short
     * kernels). Elsewhere, or with -Dmambalens.cuda.overlap=false, a plain launch.
     */
    void launch(String kernel, int gridX, int gridY, int gridZ, int block, int sharedBytes, Object... args) {
        try (Arena arena = Arena.ofConfined()) {
            if (!overlap) {
                cu.check("cuLaunchKernel(" + kernel + ")", cu.cuLaunchKernel(function(kernel), gridX, gridY, gridZ, block, 1, 1, sharedBytes,
                        stream, parameters(arena, kernel, args), MemorySegment.NULL));
                return;
            }
            MemorySegment attribute = arena.allocate(LAUNCH_ATTRIBUTE_BYTES, 8);      // CUlaunchAttribute: id, padding, value
            attribute.set(JAVA_INT, 0, CudaDriver.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
            attribute.set(JAVA_INT, 8, 1);
            MemorySegment config = arena.allocate(LAUNCH_CONFIG_BYTES, 8);            // CUlaunchConfig
            int[] dims = {gridX, gridY, gridZ, block, 1, 1, sharedBytes};
            for (int i = 0; i < dims.length; i++) config.set(JAVA_INT, 4L * i, dims[i]);
            config.set(ADDRESS, 32, stream);
            config.set(ADDRESS, 40, attribute);
            config.set(JAVA_INT, 48, 1);
            cu.check("cuLaunchKernelEx(" + kernel + ")", cu.cuLaunchKernelEx(config, function(kernel), parameters(arena, kernel, args), MemorySegment.NULL));
        }
    }

    /** sizeof(CUlaunchAttribute) and sizeof(CUlaunchConfig) in cuda.h (CUDA 12 and 13, 64-bit). */
    private static final long LAUNCH_ATTRIBUTE_BYTES = 72, LAUNCH_CONFIG_BYTES = 56;

    /** The kernel's arguments as cuLaunchKernel takes them: an array of pointers to each value. */
    private static MemorySegment parameters(Arena arena, String kernel, Object... args) {
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
        return params;
    }

    /** The kernel named {@code kernel}, looked up in every module the first time (a name in two files is an error). */
    MemorySegment function(String kernel) {
        MemorySegment known = kernels.get(kernel);
        if (known != null) return known;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS), cName = arena.allocateFrom(kernel);
            Module home = null;
            MemorySegment function = null;
            for (Module m : modules) {
                int status = cu.cuModuleGetFunction(out, m.handle(), cName);
                if (status == CudaDriver.CUDA_ERROR_NOT_FOUND) continue;
                cu.check("cuModuleGetFunction(" + kernel + ", " + m.source() + ")", status);
                if (home != null) throw new CudaException("CUDA kernel " + kernel + " is defined twice, in " + home.source() + " and " + m.source());
                home = m;
                function = out.get(ADDRESS, 0);
            }
            if (function == null) {
                throw new CudaException("no CUDA kernel named " + kernel + " in " + String.join(", ", modules.stream().map(Module::source).toList()));
            }
            kernels.put(kernel, function);
            return function;
        }
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

    /**
     * Runs {@code work} between cuProfilerStart and cuProfilerStop, for the context current on this thread (a GPU model's
     * calls leave theirs current): a profiler started with profiling off (Nsight Compute's --profile-from-start off) then
     * records that work alone. Without a profiler attached, both calls do nothing.
     */
    public static void profiled(Runnable work) {
        CudaDriver cu = CudaDriver.get();
        cu.check("cuProfilerStart", cu.cuProfilerStart());
        try {
            work.run();
        } finally {
            cu.check("cuProfilerStop", cu.cuProfilerStop());
        }
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
        unloadModules(modules);
        cu.cuStreamDestroy(stream);
        cu.cuDevicePrimaryCtxRelease(device);
        handles.close();
    }

    @Override
    public String toString() {
        return name;
    }
}
