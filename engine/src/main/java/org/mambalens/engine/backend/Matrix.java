package org.mambalens.engine.backend;

/** A weight [rows, cols] for {@link Backend#linear}, in the backend's memory and GEMM precision. */
public interface Matrix {
    int rows();

    int cols();
}
