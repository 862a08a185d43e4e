package org.mambalens.engine.backend;

/**
 * The operands of a GPU model's weight GEMMs. {@code F32} (the default) matches the reference to 1e-4;
 * {@code BF16} keeps the weights as bfloat16 on the device (half the memory and bytes read), rounds each
 * GEMM's activation operand to bfloat16 and accumulates in F32 ({@code cublasGemmEx}). Everything else
 * (scan, conv, norms, softmax, attention scores, the residual stream) stays F32 in both modes.
 */
public enum Precision {
    F32, BF16
}
