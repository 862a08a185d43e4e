package org.mambalens.engine.io;

import java.util.Arrays;

/** Element types a safetensors file may hold, with their names in the header and sizes in bytes. */
public enum DType {
    F64(8), F32(4), F16(2), BF16(2),
    I64(8), I32(4), I16(2), I8(1), U64(8), U32(4), U16(2), U8(1), BOOL(1),
    F8_E4M3(1), F8_E5M2(1);

    public final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** The float types the kernels read directly (widened to F32 inside the kernel). */
    public boolean isKernelFloat() {
        return this == F32 || this == F16 || this == BF16;
    }

    static DType parse(String name) {
        for (DType t : values()) {
            if (t.name().equals(name)) return t;
        }
        throw new IllegalArgumentException("unknown dtype \"" + name + "\" (known: " + Arrays.toString(values()) + ")");
    }
}
