package org.mambalens.engine.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Hand-written FFM bindings to the CUDA driver API ({@code libcuda.so.1}), in the shape jextract gives
 * (one class per library, a {@code MethodHandle} per function, the C types as layouts); only the
 * functions MambaLens uses. jextract cannot be obtained on our build machine; with it, the equivalent is
 * <pre>jextract --target-package org.mambalens.engine.cuda --header-class-name CudaDriver -l cuda \
 *   --include-function cuInit --include-function cuDeviceGet ... /usr/local/cuda/include/cuda.h</pre>
 * (one {@code --include-function} per handle below). Handles: CUdevice is an int; CUcontext, CUmodule,
 * CUfunction, CUstream, CUevent, CUgraph and CUgraphExec are pointers; CUdeviceptr is a 64-bit integer.
 * Every wrapper returns the CUresult; {@link #check} turns a failure into a {@link CudaException}.
 */
public final class CudaDriver {
    static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    static final int CU_STREAM_CAPTURE_MODE_RELAXED = 2;
    static final int CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;
    static final int CUDA_ERROR_NO_DEVICE = 100;
    static final int CUDA_ERROR_NOT_FOUND = 500;

    private final MethodHandle cuInit, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute, cuDeviceTotalMem,
            cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent, cuCtxSynchronize,
            cuMemAlloc, cuMemFree, cuMemHostAlloc, cuMemFreeHost, cuMemcpyHtoD, cuMemcpyDtoH, cuMemcpyDtoD, cuMemsetD32, cuMemGetInfo,
            cuModuleLoadData, cuModuleUnload, cuModuleGetFunction, cuLaunchKernel, cuLaunchKernelEx,
            cuGetErrorName, cuGetErrorString, cuDriverGetVersion,
            cuStreamCreate, cuStreamDestroy, cuStreamSynchronize, cuStreamBeginCapture, cuStreamEndCapture,
            cuGraphInstantiate, cuGraphLaunch, cuGraphDestroy, cuGraphExecDestroy,
            cuEventCreate, cuEventRecord, cuEventSynchronize, cuEventElapsedTime, cuEventDestroy, cuProfilerStart, cuProfilerStop;

    private CudaDriver(NativeLibrary lib) {
        var critical = new Linker.Option[]{Linker.Option.critical(true)};   // memcpy straight from/to Java arrays
        cuInit = lib.function(FunctionDescriptor.of(JAVA_INT, JAVA_INT), "cuInit");
        cuDeviceGetCount = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuDeviceGetCount");
        cuDeviceGet = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDeviceGet");
        cuDeviceGetName = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetName");
        cuDeviceGetAttribute = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetAttribute");
        cuDeviceTotalMem = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease = lib.function(FunctionDescriptor.of(JAVA_INT, JAVA_INT), "cuDevicePrimaryCtxRelease_v2");
        cuCtxSetCurrent = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuCtxSetCurrent");
        cuCtxSynchronize = lib.function(FunctionDescriptor.of(JAVA_INT), "cuCtxSynchronize");
        cuMemAlloc = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), "cuMemAlloc_v2");
        cuMemFree = lib.function(FunctionDescriptor.of(JAVA_INT, JAVA_LONG), "cuMemFree_v2");
        cuMemHostAlloc = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), "cuMemHostAlloc");
        cuMemFreeHost = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuMemFreeHost");
        cuMemcpyHtoD = lib.function(FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG), critical, "cuMemcpyHtoD_v2");
        cuMemcpyDtoH = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), critical, "cuMemcpyDtoH_v2");
        cuMemcpyDtoD = lib.function(FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG), "cuMemcpyDtoD_v2");
        cuMemsetD32 = lib.function(FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG), "cuMemsetD32_v2");
        cuMemGetInfo = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuMemGetInfo_v2");
        cuModuleLoadData = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuModuleLoadData");
        cuModuleUnload = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuModuleUnload");
        cuModuleGetFunction = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS), "cuModuleGetFunction");
        cuLaunchKernel = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS), "cuLaunchKernel");
        cuLaunchKernelEx = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS), "cuLaunchKernelEx");
        cuGetErrorName = lib.function(FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorName");
        cuGetErrorString = lib.function(FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorString");
        cuDriverGetVersion = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuDriverGetVersion");
        cuStreamCreate = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuStreamCreate");
        cuStreamDestroy = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuStreamDestroy_v2");
        cuStreamSynchronize = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuStreamSynchronize");
        cuStreamBeginCapture = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuStreamBeginCapture_v2");
        cuStreamEndCapture = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuStreamEndCapture");
        cuGraphInstantiate = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG), "cuGraphInstantiateWithFlags");
        cuGraphLaunch = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuGraphLaunch");
        cuGraphDestroy = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuGraphDestroy");
        cuGraphExecDestroy = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuGraphExecDestroy");
        cuEventCreate = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuEventCreate");
        cuEventRecord = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuEventRecord");
        cuEventSynchronize = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuEventSynchronize");
        cuEventElapsedTime = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS), "cuEventElapsedTime_v2", "cuEventElapsedTime");
        cuEventDestroy = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuEventDestroy_v2");
        cuProfilerStart = lib.function(FunctionDescriptor.of(JAVA_INT), "cuProfilerStart");
        cuProfilerStop = lib.function(FunctionDescriptor.of(JAVA_INT), "cuProfilerStop");
    }

    private static CudaDriver instance;

    /** The driver library, opened once per process; a machine without it gets a {@link CudaException}. */
    static synchronized CudaDriver get() {
        if (instance == null) {
            // The loader's path only: the toolkit's directories hold a stub libcuda.so that loads but runs nothing.
            instance = new CudaDriver(NativeLibrary.open("no CUDA driver (libcuda.so.1, installed with the NVIDIA driver) found",
                    "mambalens.cuda.driver", List.of("libcuda.so.1", "libcuda.so"), List.of(), null));
        }
        return instance;
    }

    /** Throws unless {@code result} is CUDA_SUCCESS, naming the call and the driver's error name and string. */
    void check(String call, int result) {
        if (result != 0) throw new CudaException(error(call, result));
    }

    /** One line: the call, the driver's name and string for {@code result}, and the number. */
    String error(String call, int result) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(ADDRESS), text = arena.allocate(ADDRESS);
            String errorName = cuGetErrorName(result, name) == 0 ? cString(name.get(ADDRESS, 0)) : "CUDA error";
            String errorText = cuGetErrorString(result, text) == 0 ? cString(text.get(ADDRESS, 0)) : "unknown";
            return call + " failed: " + errorName + " (" + result + "): " + errorText;
        }
    }

    static String cString(MemorySegment pointer) {
        return pointer.equals(MemorySegment.NULL) ? "" : pointer.reinterpret(4096).getString(0);
    }

    int cuInit(int flags) { try { return (int) cuInit.invokeExact(flags); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuDeviceGetCount(MemorySegment count) { try { return (int) cuDeviceGetCount.invokeExact(count); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuDeviceGet(MemorySegment device, int ordinal) { try { return (int) cuDeviceGet.invokeExact(device, ordinal); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuDeviceGetName(MemorySegment name, int length, int device) { try { return (int) cuDeviceGetName.invokeExact(name, length, device); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuDeviceGetAttribute(MemorySegment value, int attribute, int device) { try { return (int) cuDeviceGetAttribute.invokeExact(value, attribute, device); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuDeviceTotalMem(MemorySegment bytes, int device) { try { return (int) cuDeviceTotalMem.invokeExact(bytes, device); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuDevicePrimaryCtxRetain(MemorySegment context, int device) { try { return (int) cuDevicePrimaryCtxRetain.invokeExact(context, device); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuDevicePrimaryCtxRelease(int device) { try { return (int) cuDevicePrimaryCtxRelease.invokeExact(device); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuCtxSetCurrent(MemorySegment context) { try { return (int) cuCtxSetCurrent.invokeExact(context); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuCtxSynchronize() { try { return (int) cuCtxSynchronize.invokeExact(); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuMemAlloc(MemorySegment pointer, long bytes) { try { return (int) cuMemAlloc.invokeExact(pointer, bytes); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuMemFree(long pointer) { try { return (int) cuMemFree.invokeExact(pointer); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuMemHostAlloc(MemorySegment pointer, long bytes, int flags) { try { return (int) cuMemHostAlloc.invokeExact(pointer, bytes, flags); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuMemFreeHost(MemorySegment pointer) { try { return (int) cuMemFreeHost.invokeExact(pointer); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuMemcpyHtoD(long dst, MemorySegment src, long bytes) { try { return (int) cuMemcpyHtoD.invokeExact(dst, src, bytes); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuMemcpyDtoH(MemorySegment dst, long src, long bytes) { try { return (int) cuMemcpyDtoH.invokeExact(dst, src, bytes); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuMemcpyDtoD(long dst, long src, long bytes) { try { return (int) cuMemcpyDtoD.invokeExact(dst, src, bytes); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuMemsetD32(long dst, int value, long count) { try { return (int) cuMemsetD32.invokeExact(dst, value, count); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuMemGetInfo(MemorySegment free, MemorySegment total) { try { return (int) cuMemGetInfo.invokeExact(free, total); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuModuleLoadData(MemorySegment module, MemorySegment image) { try { return (int) cuModuleLoadData.invokeExact(module, image); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuModuleUnload(MemorySegment module) { try { return (int) cuModuleUnload.invokeExact(module); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuModuleGetFunction(MemorySegment function, MemorySegment module, MemorySegment name) { try { return (int) cuModuleGetFunction.invokeExact(function, module, name); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }

    int cuLaunchKernel(MemorySegment function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes,
                       MemorySegment stream, MemorySegment params, MemorySegment extra) {
        try {
            return (int) cuLaunchKernel.invokeExact(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, stream, params, extra);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** A launch described by a CUlaunchConfig (grid, block, shared bytes, stream and attributes; see Gpu.launch). */
    int cuLaunchKernelEx(MemorySegment config, MemorySegment function, MemorySegment params, MemorySegment extra) {
        try {
            return (int) cuLaunchKernelEx.invokeExact(config, function, params, extra);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    int cuGetErrorName(int error, MemorySegment name) { try { return (int) cuGetErrorName.invokeExact(error, name); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuGetErrorString(int error, MemorySegment text) { try { return (int) cuGetErrorString.invokeExact(error, text); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuDriverGetVersion(MemorySegment version) { try { return (int) cuDriverGetVersion.invokeExact(version); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuStreamCreate(MemorySegment stream, int flags) { try { return (int) cuStreamCreate.invokeExact(stream, flags); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuStreamDestroy(MemorySegment stream) { try { return (int) cuStreamDestroy.invokeExact(stream); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuStreamSynchronize(MemorySegment stream) { try { return (int) cuStreamSynchronize.invokeExact(stream); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuStreamBeginCapture(MemorySegment stream, int mode) { try { return (int) cuStreamBeginCapture.invokeExact(stream, mode); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuStreamEndCapture(MemorySegment stream, MemorySegment graph) { try { return (int) cuStreamEndCapture.invokeExact(stream, graph); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuGraphInstantiate(MemorySegment exec, MemorySegment graph, long flags) { try { return (int) cuGraphInstantiate.invokeExact(exec, graph, flags); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuGraphLaunch(MemorySegment exec, MemorySegment stream) { try { return (int) cuGraphLaunch.invokeExact(exec, stream); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuGraphDestroy(MemorySegment graph) { try { return (int) cuGraphDestroy.invokeExact(graph); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuGraphExecDestroy(MemorySegment exec) { try { return (int) cuGraphExecDestroy.invokeExact(exec); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuEventCreate(MemorySegment event, int flags) { try { return (int) cuEventCreate.invokeExact(event, flags); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuEventRecord(MemorySegment event, MemorySegment stream) { try { return (int) cuEventRecord.invokeExact(event, stream); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuEventSynchronize(MemorySegment event) { try { return (int) cuEventSynchronize.invokeExact(event); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuEventElapsedTime(MemorySegment millis, MemorySegment start, MemorySegment end) { try { return (int) cuEventElapsedTime.invokeExact(millis, start, end); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuEventDestroy(MemorySegment event) { try { return (int) cuEventDestroy.invokeExact(event); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuProfilerStart() { try { return (int) cuProfilerStart.invokeExact(); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cuProfilerStop() { try { return (int) cuProfilerStop.invokeExact(); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }

}
