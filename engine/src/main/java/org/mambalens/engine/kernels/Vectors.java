package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import org.mambalens.engine.io.DType;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Species and the widening loads every kernel shares. Kernels are written for any species: the
 * preferred one here (256 bits on AVX2, 512 on AVX-512), with a half-width short species for the
 * 16-bit weight types so that one short vector widens to exactly one float vector.
 */
final class Vectors {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    static final int LANES = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Vectors() {
    }

    /** {@code LANES} weights starting at element {@code index} of a segment of {@code type}, as floats. */
    static FloatVector load(DType type, MemorySegment seg, long index) {
        return switch (type) {
            case F32 -> FloatVector.fromMemorySegment(F, seg, index * 4, LE);
            case BF16 -> bf16(ShortVector.fromMemorySegment(S, seg, index * 2, LE));
            case F16 -> f16(ShortVector.fromMemorySegment(S, seg, index * 2, LE));
            default -> throw new IllegalArgumentException("kernels read F32, F16 or BF16, not " + type);
        };
    }

    /** BF16 is the high half of an F32. */
    static FloatVector bf16(ShortVector raw) {
        IntVector bits = (IntVector) raw.convertShape(VectorOperators.S2I, I, 0);
        return bits.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /**
     * IEEE half to float: shifting exponent and mantissa into float position and scaling by 2^112
     * rebiases normals and turns subnormals into the right normals; infinities and NaNs keep an
     * all-ones exponent.
     */
    static FloatVector f16(ShortVector raw) {
        IntVector h = (IntVector) raw.convertShape(VectorOperators.S2I, I, 0);
        IntVector magnitude = h.and(0x7FFF);
        IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
        IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
        FloatVector finite = shifted.reinterpretAsFloats().mul(0x1p112f);
        VectorMask<Integer> special = magnitude.compare(VectorOperators.GE, 0x7C00);
        IntVector bits = finite.reinterpretAsInts().blend(shifted.or(0x7F800000), special);
        return bits.or(sign).reinterpretAsFloats();
    }
}
