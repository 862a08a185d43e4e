package org.mambalens.engine.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Hand-written FFM bindings to NVRTC, the CUDA run-time compiler ({@code libnvrtc.so}), in jextract's shape;
 * only the functions MambaLens uses. With jextract: {@code jextract --target-package org.mambalens.engine.cuda
 * --header-class-name Nvrtc -l nvrtc --include-function nvrtcVersion ... /usr/local/cuda/include/nvrtc.h}.
 * nvrtcProgram is a pointer, size_t a 64-bit integer. Every wrapper returns the nvrtcResult; {@link #check}
 * turns a failure into a {@link CudaException}. NVRTC needs no GPU and no driver: it only compiles.
 */
public final class Nvrtc {
    static final int NVRTC_ERROR_INVALID_OPTION = 5;
    /**
     * The file names NVRTC is looked for by: CUDA 13's, then 12's, then whatever the unversioned name links to, then CUDA
     * 11.8's by the name Debian ships it under (package libnvrtc11.2), the oldest that compiles every kernel.
     */
    static final List<String> NAMES = List.of("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", "libnvrtc.so.11.2");
    static final String NEED = "NVRTC (the CUDA run-time compiler) is needed to compile the kernels";
    static final String PROPERTY = "mambalens.cuda.nvrtc";

    private final MethodHandle nvrtcVersion, nvrtcGetNumSupportedArchs, nvrtcGetSupportedArchs, nvrtcCreateProgram, nvrtcCompileProgram,
            nvrtcGetProgramLogSize, nvrtcGetProgramLog, nvrtcGetCUBINSize, nvrtcGetCUBIN, nvrtcGetPTXSize, nvrtcGetPTX,
            nvrtcDestroyProgram, nvrtcGetErrorString;

    private Nvrtc(NativeLibrary lib) {
        nvrtcVersion = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcVersion");
        nvrtcGetNumSupportedArchs = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "nvrtcGetNumSupportedArchs");
        nvrtcGetSupportedArchs = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "nvrtcGetSupportedArchs");
        // (*program, source, name, numHeaders, headers, includeNames)
        nvrtcCreateProgram = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS), "nvrtcCreateProgram");
        nvrtcCompileProgram = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS), "nvrtcCompileProgram");
        nvrtcGetProgramLogSize = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetProgramLogSize");
        nvrtcGetProgramLog = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetProgramLog");
        nvrtcGetCUBINSize = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetCUBINSize");
        nvrtcGetCUBIN = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetCUBIN");
        nvrtcGetPTXSize = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetPTXSize");
        nvrtcGetPTX = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "nvrtcGetPTX");
        nvrtcDestroyProgram = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "nvrtcDestroyProgram");
        nvrtcGetErrorString = lib.function(FunctionDescriptor.of(ADDRESS, JAVA_INT), "nvrtcGetErrorString");
    }

    private static Nvrtc instance;

    /** NVRTC, found once per process (-Dmambalens.cuda.nvrtc, else the CUDA directories); a {@link CudaException} says where it looked. */
    static synchronized Nvrtc get() {
        if (instance == null) {
            instance = new Nvrtc(NativeLibrary.open(NEED, PROPERTY, NAMES, NativeLibrary.cudaDirectories("cuda_nvrtc", "cu13"),
                    "libnvrtc-builtins"));
        }
        return instance;
    }

    /** Throws unless {@code status} is NVRTC_SUCCESS, naming the call and NVRTC's error. */
    void check(String call, int status) {
        if (status != 0) throw new CudaException(error(call, status));
    }

    /** One line: the call, NVRTC's name for {@code status}, and the number. */
    String error(String call, int status) {
        String text;
        try {
            text = CudaDriver.cString((MemorySegment) nvrtcGetErrorString.invokeExact(status));
        } catch (Throwable t) {
            text = "unknown error";
        }
        return call + " failed: " + text + " (" + status + ")";
    }

    int nvrtcVersion(MemorySegment major, MemorySegment minor) { try { return (int) nvrtcVersion.invokeExact(major, minor); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int nvrtcGetNumSupportedArchs(MemorySegment count) { try { return (int) nvrtcGetNumSupportedArchs.invokeExact(count); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int nvrtcGetSupportedArchs(MemorySegment archs) { try { return (int) nvrtcGetSupportedArchs.invokeExact(archs); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }

    int nvrtcCreateProgram(MemorySegment program, MemorySegment source, MemorySegment name, int headers, MemorySegment headerSources,
                           MemorySegment includeNames) {
        try {
            return (int) nvrtcCreateProgram.invokeExact(program, source, name, headers, headerSources, includeNames);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    int nvrtcCompileProgram(MemorySegment program, int count, MemorySegment options) { try { return (int) nvrtcCompileProgram.invokeExact(program, count, options); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int nvrtcGetProgramLogSize(MemorySegment program, MemorySegment size) { try { return (int) nvrtcGetProgramLogSize.invokeExact(program, size); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int nvrtcGetProgramLog(MemorySegment program, MemorySegment log) { try { return (int) nvrtcGetProgramLog.invokeExact(program, log); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int nvrtcGetCUBINSize(MemorySegment program, MemorySegment size) { try { return (int) nvrtcGetCUBINSize.invokeExact(program, size); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int nvrtcGetCUBIN(MemorySegment program, MemorySegment cubin) { try { return (int) nvrtcGetCUBIN.invokeExact(program, cubin); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int nvrtcGetPTXSize(MemorySegment program, MemorySegment size) { try { return (int) nvrtcGetPTXSize.invokeExact(program, size); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int nvrtcGetPTX(MemorySegment program, MemorySegment ptx) { try { return (int) nvrtcGetPTX.invokeExact(program, ptx); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int nvrtcDestroyProgram(MemorySegment program) { try { return (int) nvrtcDestroyProgram.invokeExact(program); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
}
