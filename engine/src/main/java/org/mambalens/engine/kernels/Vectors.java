package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
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

    static {
        CompilerHints.installInBackground();    // every kernel loads this class before it runs
    }

    private Vectors() {
    }

    /** The lanes [0, count): a row's last, partial vector. */
    static VectorMask<Float> firstLanes(int count) {
        return F.indexInRange(0, count);
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

    // Sums and exponentials are written here with the Vector API's exactly rounded lane-wise operations only
    // (add, mul, fma, div, compare, blend, rearrange). reduceLanes(ADD) leaves its order open and does add in
    // one order interpreted and another compiled, and lanewise(EXP) calls a different library once C2 compiles
    // it: both made the first, not-yet-compiled call of a model differ from later ones in the last bits.

    /**
     * Lane l to lane l ^ d, for the pairwise sum's steps d = LANES/2, …, 2, 1 (a step wider than the species is never
     * taken). Constants in fields of their own, not elements of an array: C2 compiles a rearrange by a constant shuffle
     * to one instruction, and one by a shuffle it reads from an array to the API's Java fallback, boxing the vectors.
     */
    private static final VectorShuffle<Float> SWAP8 = swap(8), SWAP4 = swap(4), SWAP2 = swap(2), SWAP1 = swap(1);

    private static VectorShuffle<Float> swap(int distance) {
        return VectorShuffle.fromOp(F, lane -> distance < LANES ? lane ^ distance : lane);
    }

    /** The sum of the lanes, always in the same order: halves added pairwise, down to one lane. */
    static float sum(FloatVector v) {
        for (int d = LANES / 2; d > 8; d /= 2) v = v.add(v.rearrange(swap(d)));   // species wider than 512 bits (SVE)
        if (LANES >= 16) v = v.add(v.rearrange(SWAP8));
        if (LANES >= 8) v = v.add(v.rearrange(SWAP4));
        if (LANES >= 4) v = v.add(v.rearrange(SWAP2));
        if (LANES >= 2) v = v.add(v.rearrange(SWAP1));
        return v.lane(0);
    }

    static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 0x1.8p23f;                 // adding and subtracting it rounds to an integer
    private static final float EXP_MAX = 88.3762626647949f, EXP_MIN = -87.3365478515625f;

    /**
     * e^x within 2 ulp (Cephes' expf: x = n·ln 2 + r, |r| ≤ ln 2 / 2, a degree-6 polynomial in r, times 2^n);
     * 0 below the float range, +∞ above it, NaN for NaN.
     */
    static FloatVector exp(FloatVector x) {
        FloatVector clamped = x.blend(EXP_MIN, x.compare(VectorOperators.LT, EXP_MIN)).blend(EXP_MAX, x.compare(VectorOperators.GT, EXP_MAX));
        FloatVector n = clamped.mul(LOG2E).add(ROUND).sub(ROUND);
        FloatVector y = expOfRemainder(clamped, n);
        IntVector exponent = ((IntVector) n.convertShape(VectorOperators.F2I, I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
        FloatVector e = y.mul(exponent.reinterpretAsFloats());
        e = e.blend(0f, x.compare(VectorOperators.LT, EXP_MIN));
        e = e.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, EXP_MAX));
        return e.blend(x, x.test(VectorOperators.IS_NAN));
    }

    /** e^r for r = x − n·ln 2 (|r| ≤ ln 2 / 2): Cephes' degree-6 polynomial, shared by both exponentials. */
    private static FloatVector expOfRemainder(FloatVector x, FloatVector n) {
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = FloatVector.broadcast(F, 1.9875691500e-4f);
        p = p.fma(r, FloatVector.broadcast(F, 1.3981999507e-3f));
        p = p.fma(r, FloatVector.broadcast(F, 8.3334519073e-3f));
        p = p.fma(r, FloatVector.broadcast(F, 4.1665795894e-2f));
        p = p.fma(r, FloatVector.broadcast(F, 1.6666665459e-1f));
        p = p.fma(r, FloatVector.broadcast(F, 5.0000001201e-1f));
        return p.mul(r.mul(r)).add(r).add(1f);
    }

    /** Adding this to the bits of n + ROUND, an integer n in float, gives n + 127, its power's biased exponent. */
    private static final int BIAS_OVER_ROUND = 127 - Float.floatToRawIntBits(ROUND);

    /**
     * e^x as {@link #exp} (the same bits) for x ≤ {@code EXP_MAX}, 0 below the float range: for the decays of the
     * hidden attention, whose callers keep their arguments in range. Without the clamp above, the ∞ and NaN
     * tests, and with the power's exponent read from the bits of n + ROUND rather than converted, a fifth faster.
     */
    static FloatVector expInRange(FloatVector x) {
        VectorMask<Float> under = x.compare(VectorOperators.LT, EXP_MIN);
        FloatVector clamped = x.blend(EXP_MIN, under);
        FloatVector shifted = clamped.mul(LOG2E).add(ROUND), n = shifted.sub(ROUND);
        FloatVector y = expOfRemainder(clamped, n);
        IntVector exponent = shifted.reinterpretAsInts().add(BIAS_OVER_ROUND).lanewise(VectorOperators.LSHL, 23);
        return y.mul(exponent.reinterpretAsFloats()).blend(0f, under);
    }

    /**
     * 2^x for x ≤ 0, within 2 ulp, 0 below 2^−126.5: the selective scan's decays, whose argument Δ·A·log2 e it forms with
     * log2 e folded into Δ (once a channel and token, not once a state). x = n + f with n = round(x) and f = x − n exact,
     * so no Cody–Waite split; 2^f is Cephes' exp2f polynomial. Clamping x at −127 makes n + 127 = 0 the exponent's bits
     * there, so the power itself is 0: no mask. About two-thirds of {@link #expInRange}'s operations.
     */
    static FloatVector exp2NonPositive(FloatVector x) {
        FloatVector clamped = x.max(-127f);
        FloatVector shifted = clamped.add(ROUND), f = clamped.sub(shifted.sub(ROUND));
        FloatVector p = FloatVector.broadcast(F, 1.535336188319500e-4f);
        p = p.fma(f, FloatVector.broadcast(F, 1.339887440266574e-3f));
        p = p.fma(f, FloatVector.broadcast(F, 9.618437357674640e-3f));
        p = p.fma(f, FloatVector.broadcast(F, 5.550332471162809e-2f));
        p = p.fma(f, FloatVector.broadcast(F, 2.402264791363012e-1f));
        p = p.fma(f, FloatVector.broadcast(F, 6.931472028550421e-1f));
        IntVector exponent = shifted.reinterpretAsInts().add(BIAS_OVER_ROUND).lanewise(VectorOperators.LSHL, 23);
        return p.fma(f, FloatVector.broadcast(F, 1f)).mul(exponent.reinterpretAsFloats());
    }

    /**
     * ln(1 + y) for y in [0, 1], within 2 ulp: with s = y / (2 + y) ≤ 1/3, ln(1 + y) = 2·atanh(s) =
     * 2(s + s³/3 + … + s¹⁵/15), exact enough at s = 1/3 and free of the cancellation of ln(1 + y) for small y.
     */
    static FloatVector log1pUnit(FloatVector y) {
        FloatVector s = y.div(y.add(2f)), s2 = s.mul(s);
        FloatVector p = FloatVector.broadcast(F, 1f / 15);
        for (int k = 13; k >= 3; k -= 2) p = p.fma(s2, FloatVector.broadcast(F, 1f / k));
        return p.mul(s2).fma(s, s).mul(2f);
    }
}
