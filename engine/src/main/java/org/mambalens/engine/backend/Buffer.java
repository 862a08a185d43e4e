package org.mambalens.engine.backend;

/**
 * F32 values owned by a {@link Backend} (a heap array, or device memory), seen from one element on.
 * Only the backend that made a buffer can read it or pass it to its operations.
 */
public interface Buffer {
    /** Values from this view's start to the end of its allocation. */
    long size();

    /** The view starting {@code offset} values further on (a column block, a row range). */
    Buffer at(long offset);
}
