package org.mambalens.engine.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Hand-written FFM bindings to cuBLAS ({@code libcublas.so}), in jextract's shape; only the functions
 * MambaLens uses. With jextract: {@code jextract --target-package org.mambalens.engine.cuda
 * --header-class-name Cublas -l cublas --include-function cublasCreate_v2 ... /usr/local/cuda/include/cublas_v2.h}.
 * Matrices are column-major as cuBLAS sees them; alpha and beta are host pointers (the default pointer
 * mode). Every wrapper returns the cublasStatus_t; {@link #check} turns a failure into a {@link CudaException}.
 */
public final class Cublas {
    static final int OP_N = 0, OP_T = 1;
    /** cudaDataType_t (library_types.h), cublasComputeType_t and cublasGemmAlgo_t values passed to cublasGemmEx. */
    static final int CUDA_R_32F = 0, CUDA_R_16BF = 14, CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1;

    private final MethodHandle cublasCreate, cublasDestroy, cublasSetStream, cublasSgemm, cublasSgemv, cublasSgemmStridedBatched,
            cublasGemmEx, cublasGetStatusString;

    private Cublas(NativeLibrary lib) {
        cublasCreate = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasCreate_v2");
        cublasDestroy = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS), "cublasDestroy_v2");
        cublasSetStream = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cublasSetStream_v2");
        // (handle, transa, transb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc)
        cublasSgemm = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), "cublasSgemm_v2");
        // (handle, trans, m, n, *alpha, A, lda, x, incx, *beta, y, incy)
        cublasSgemv = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), "cublasSgemv_v2");
        // (handle, transa, transb, m, n, k, *alpha, A, lda, strideA, B, ldb, strideB, *beta, C, ldc, strideC, batch)
        cublasSgemmStridedBatched = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT),
                "cublasSgemmStridedBatched");
        // (handle, transa, transb, m, n, k, *alpha, A, Atype, lda, B, Btype, ldb, *beta, C, Ctype, ldc, computeType, algo)
        cublasGemmEx = lib.function(FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
                "cublasGemmEx");
        cublasGetStatusString = lib.function(FunctionDescriptor.of(ADDRESS, JAVA_INT), "cublasGetStatusString");
    }

    private static Cublas instance;

    static synchronized Cublas get() {
        if (instance == null) {
            instance = new Cublas(NativeLibrary.open("cuBLAS (the CUDA toolkit's BLAS) is needed for the GEMMs", "mambalens.cuda.cublas",
                    List.of("libcublas.so.13", "libcublas.so.12", "libcublas.so"), NativeLibrary.cudaDirectories("cublas", "cu13"), "libcublasLt"));
        }
        return instance;
    }

    void check(String call, int status) {
        if (status == 0) return;
        String text;
        try {
            text = CudaDriver.cString((MemorySegment) cublasGetStatusString.invokeExact(status));
        } catch (Throwable t) {
            text = "unknown status";
        }
        throw new CudaException(call + " failed: " + text + " (" + status + ")");
    }

    int cublasCreate(MemorySegment handle) { try { return (int) cublasCreate.invokeExact(handle); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cublasDestroy(MemorySegment handle) { try { return (int) cublasDestroy.invokeExact(handle); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }
    int cublasSetStream(MemorySegment handle, MemorySegment stream) { try { return (int) cublasSetStream.invokeExact(handle, stream); } catch (Throwable t) { throw NativeLibrary.rethrow(t); } }

    int cublasSgemm(MemorySegment handle, int transa, int transb, int m, int n, int k, MemorySegment alpha, long a, int lda,
                    long b, int ldb, MemorySegment beta, long c, int ldc) {
        try {
            return (int) cublasSgemm.invokeExact(handle, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    int cublasSgemv(MemorySegment handle, int trans, int m, int n, MemorySegment alpha, long a, int lda, long x, int incx,
                    MemorySegment beta, long y, int incy) {
        try {
            return (int) cublasSgemv.invokeExact(handle, trans, m, n, alpha, a, lda, x, incx, beta, y, incy);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    int cublasSgemmStridedBatched(MemorySegment handle, int transa, int transb, int m, int n, int k, MemorySegment alpha,
                                  long a, int lda, long strideA, long b, int ldb, long strideB, MemorySegment beta,
                                  long c, int ldc, long strideC, int batch) {
        try {
            return (int) cublasSgemmStridedBatched.invokeExact(handle, transa, transb, m, n, k, alpha, a, lda, strideA, b, ldb, strideB,
                    beta, c, ldc, strideC, batch);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    int cublasGemmEx(MemorySegment handle, int transa, int transb, int m, int n, int k, MemorySegment alpha, long a, int aType, int lda,
                     long b, int bType, int ldb, MemorySegment beta, long c, int cType, int ldc, int computeType, int algo) {
        try {
            return (int) cublasGemmEx.invokeExact(handle, transa, transb, m, n, k, alpha, a, aType, lda, b, bType, ldb, beta, c, cType, ldc,
                    computeType, algo);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }
}
