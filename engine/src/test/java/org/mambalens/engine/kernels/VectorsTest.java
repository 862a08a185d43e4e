package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/** The hand-written reductions and transcendentals against Math's, over the ranges the kernels feed them. */
class VectorsTest {
    /** The largest distance in ulps between f(lanes) and the reference, over random inputs in [lo, hi]. */
    private static double worstUlps(java.util.function.UnaryOperator<FloatVector> f, java.util.function.DoubleUnaryOperator reference,
                                    float lo, float hi) {
        Random r = new Random(7);
        float[] x = new float[LANES], y = new float[LANES];
        double worst = 0;
        for (int k = 0; k < 20_000; k++) {
            for (int i = 0; i < LANES; i++) x[i] = lo + (hi - lo) * r.nextFloat();
            f.apply(FloatVector.fromArray(F, x, 0)).intoArray(y, 0);
            for (int i = 0; i < LANES; i++) {
                double expected = reference.applyAsDouble(x[i]);
                worst = Math.max(worst, Math.abs(y[i] - expected) / Math.ulp((float) expected));
            }
        }
        return worst;
    }

    @Test
    void expIsWithinTwoUlpsOfMathExp() {
        assertThat(worstUlps(Vectors::exp, Math::exp, -87f, 88f)).isLessThan(2);
        assertThat(worstUlps(Vectors::exp, Math::exp, -1f, 1f)).isLessThan(2);
    }

    @Test
    void expLeavesTheFloatRangeAsMathExpDoes() {
        float[] x = new float[LANES], y = new float[LANES];
        x[0] = -1000f;
        if (LANES > 1) x[1] = 1000f;
        if (LANES > 2) x[2] = Float.NaN;
        Vectors.exp(FloatVector.fromArray(F, x, 0)).intoArray(y, 0);
        assertThat(y[0]).isZero();
        if (LANES > 1) assertThat(y[1]).isEqualTo(Float.POSITIVE_INFINITY);
        if (LANES > 2) assertThat(y[2]).isNaN();
    }

    @Test
    void expInRangeHasExpsBitsUpToTheTopOfTheFloatRange() {
        Random r = new Random(11);
        float[] x = new float[LANES], expected = new float[LANES], actual = new float[LANES];
        for (int k = 0; k < 20_000; k++) {
            for (int i = 0; i < LANES; i++) x[i] = -200f + 288f * r.nextFloat();    // below the float range up to 88
            Vectors.exp(FloatVector.fromArray(F, x, 0)).intoArray(expected, 0);
            Vectors.expInRange(FloatVector.fromArray(F, x, 0)).intoArray(actual, 0);
            assertThat(actual).containsExactly(expected);
        }
    }

    @Test
    void exp2NonPositiveIsWithinTwoUlpsAndZeroBelowTheNormalRange() {
        assertThat(worstUlps(Vectors::exp2NonPositive, x -> Math.pow(2, x), -126f, 0f)).isLessThan(2);
        assertThat(worstUlps(Vectors::exp2NonPositive, x -> Math.pow(2, x), -1f, 0f)).isLessThan(2);
        float[] x = new float[LANES], y = new float[LANES];
        java.util.Arrays.fill(x, -126.6f);
        x[0] = -1e30f;
        if (LANES > 1) x[1] = Float.NEGATIVE_INFINITY;
        if (LANES > 2) x[2] = -0f;
        Vectors.exp2NonPositive(FloatVector.fromArray(F, x, 0)).intoArray(y, 0);
        assertThat(y[0]).isZero();
        if (LANES > 1) assertThat(y[1]).isZero();
        if (LANES > 2) assertThat(y[2]).isEqualTo(1f);
        for (int i = 3; i < LANES; i++) assertThat(y[i]).isZero();
    }

    @Test
    void log1pUnitIsWithinFourUlpsOfMathLog1p() {
        assertThat(worstUlps(Vectors::log1pUnit, Math::log1p, 0f, 1e-6f)).isLessThan(4);
        assertThat(worstUlps(Vectors::log1pUnit, Math::log1p, 0f, 1f)).isLessThan(4);
    }

    @Test
    void sumAddsEveryLane() {
        float[] x = new float[LANES];
        for (int i = 0; i < LANES; i++) x[i] = i + 1;
        assertThat(Vectors.sum(FloatVector.fromArray(F, x, 0))).isEqualTo(LANES * (LANES + 1) / 2f);
    }
}
