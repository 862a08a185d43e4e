package org.mambalens.engine.cuda;

/** A CUDA driver, cuBLAS or NVRTC call that failed, or a machine without CUDA; the message names the call and the error. */
public final class CudaException extends RuntimeException {
    public CudaException(String message) {
        super(message);
    }

    public CudaException(String message, Throwable cause) {
        super(message, cause);
    }
}
