package org.mambalens.engine.backend;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.Fixtures;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** The CPU backend's RWKV operations against plain loops straight from their definitions, on odd sizes and views. */
class CpuBackendRwkvTest {
    private final CpuBackend cpu = CpuBackend.INSTANCE;

    @Test
    void tokenShiftInterpolatesEachRowWithThePreviousOne() {
        Random rnd = new Random(1);
        int rows = 5, dim = 37, ldx = 41, offset = 3;
        float[] x = Fixtures.gaussian(rnd, offset + rows * ldx, 1), mix = Fixtures.gaussian(rnd, dim, 1), shift = Fixtures.gaussian(rnd, dim, 1);
        float[] out = new float[2 + rows * dim];
        cpu.tokenShift(CpuBackend.wrap(out).at(2), CpuBackend.wrap(x).at(offset), ldx, cpu.constant(mix), cpu.constant(shift), rows, dim);
        float[] expected = new float[rows * dim], actual = java.util.Arrays.copyOfRange(out, 2, out.length);
        for (int t = 0; t < rows; t++) {
            for (int j = 0; j < dim; j++) {
                float prev = t == 0 ? shift[j] : x[offset + (t - 1) * ldx + j];
                expected[t * dim + j] = x[offset + t * ldx + j] * mix[j] + prev * (1 - mix[j]);
            }
        }
        assertThat(actual).containsExactly(expected);
        assertThat(out[0]).isZero();
        assertThat(out[1]).isZero();
    }

    @Test
    void wkvIsTheGatedRatioOfDecayedSums() {
        Random rnd = new Random(2);
        int T = 11, A = 19;
        float[] k = Fixtures.gaussian(rnd, T * A, 1), v = Fixtures.gaussian(rnd, T * A, 1), gate = new float[T * A];
        float[] decay = new float[A], bonus = Fixtures.gaussian(rnd, A, 1);
        for (int i = 0; i < gate.length; i++) gate[i] = rnd.nextFloat();
        for (int a = 0; a < A; a++) decay[a] = (float) -Math.exp(rnd.nextGaussian());
        float[] expected = new float[T * A];
        for (int t = 0; t < T; t++) {
            for (int a = 0; a < A; a++) {
                double num = Math.exp(bonus[a] + k[t * A + a]) * v[t * A + a], den = Math.exp(bonus[a] + k[t * A + a]);
                for (int i = 0; i < t; i++) {
                    double e = Math.exp((t - 1 - i) * (double) decay[a] + k[i * A + a]);
                    num += e * v[i * A + a];
                    den += e;
                }
                expected[t * A + a] = (float) (gate[t * A + a] * num / den);
            }
        }
        Buffer decayB = cpu.constant(decay), bonusB = cpu.constant(bonus);

        float[] whole = new float[T * A];
        cpu.wkv(CpuBackend.wrap(whole), CpuBackend.wrap(gate), CpuBackend.wrap(k), CpuBackend.wrap(v), decayB, bonusB, freshState(A), T, A);
        assertThat(Fixtures.relativeError(whole, expected)).isLessThan(1e-5);

        float[] parts = new float[1 + T * A];                           // 4 tokens, then 7 more from the state, into a view
        Buffer state = freshState(A);
        int first = 4;
        cpu.wkv(CpuBackend.wrap(parts).at(1), CpuBackend.wrap(gate), CpuBackend.wrap(k), CpuBackend.wrap(v), decayB, bonusB, state, first, A);
        cpu.wkv(CpuBackend.wrap(parts).at(1 + first * A), CpuBackend.wrap(gate).at(first * A), CpuBackend.wrap(k).at(first * A),
                CpuBackend.wrap(v).at(first * A), decayB, bonusB, state, T - first, A);
        assertThat(java.util.Arrays.copyOfRange(parts, 1, parts.length)).containsExactly(whole);
    }

    private Buffer freshState(int channels) {
        Buffer state = cpu.allocate(3L * channels);
        cpu.fill(state.at(2L * channels), channels, -1e38f);
        return state;
    }
}
