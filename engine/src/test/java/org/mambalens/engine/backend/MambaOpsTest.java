package org.mambalens.engine.backend;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.tensor.Tensor;

import java.util.Arrays;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/** The CPU backend's fused Mamba decode step against the operations it fuses. */
class MambaOpsTest {
    private static final CpuBackend CPU = CpuBackend.INSTANCE;
    private final Random random = new Random(23);

    private float[] values(int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (random.nextGaussian() * scale);
        return v;
    }

    /**
     * Each sequence of a batch, its window and state lying among others', gets from {@code ssmStep} the bits that
     * conv → x_proj → dt_proj → scan give it alone: the same output, window and state.
     */
    @Test
    void ssmStepEqualsTheOperationsItFuses() {
        int E = 37, N = 5, R = 3, K = 4, P = R + 2 * N, B = 2, ldxz = 2 * E + 3;
        float[] a = new float[E * N];
        for (int i = 0; i < a.length; i++) a[i] = (float) -Math.exp(random.nextGaussian());
        Backend.SsmWeights w = CPU.ssmWeights(values(K * E, 0.5f), values(E, 0.1f), CPU.matrix(Tensor.of("x_proj", values(P * E, 0.3f), P, E), P, E),
                CPU.matrix(Tensor.of("dt_proj", values(E * R, 0.5f), E, R), E, R), values(E, 0.5f), a, values(E, 1f), E, N, R, K);
        float[] xz = values(B * ldxz, 1f), windows = values(B * (K - 1) * E + 1, 1f), states = values(B * N * E + 1, 0.3f);

        float[] y = new float[1 + B * E], fusedWindows = windows.clone(), fusedStates = states.clone();
        assertThat(CPU.ssmStep(w, wrap(y).at(1), wrap(xz), ldxz, wrap(fusedWindows).at(1), wrap(fusedStates).at(1), B)).isTrue();

        for (int q = 0; q < B; q++) {
            Buffer x = wrap(Arrays.copyOfRange(xz, q * ldxz, (q + 1) * ldxz)), window = wrap(windows).at(1 + q * (K - 1) * E);
            Buffer u = wrap(new float[E]), dbc = wrap(new float[P]), dt = wrap(new float[E]), alone = wrap(new float[E]);
            CPU.causalConv(u, null, x, ldxz, w.convTaps(), w.convBias(), window, 1, 1, E, K, false, true);
            CPU.linear(dbc, P, u, E, 1, w.xProj(), null);
            CPU.linear(dt, E, dbc, P, 1, w.dtProj(), null);
            CPU.selectiveScan(new Backend.Scan(alone, E, u, E, dt, E, w.dtBias(), dbc.at(R), P, x.at(E), ldxz, w.a(), w.d(),
                    wrap(states).at(1 + q * N * E), null, window, x, ldxz, K), 1, 1, E, N, false, false);
            assertThat(Arrays.copyOfRange(y, 1 + q * E, 1 + (q + 1) * E)).as("y of sequence %d", q).containsExactly(CPU.read(alone, E));
        }
        assertThat(fusedWindows).containsExactly(windows);
        assertThat(fusedStates).containsExactly(states);
    }
}
