package org.mambalens.engine.model.mamba;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.kernels.CausalConv;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.kernels.SelectiveScan;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

/**
 * The part of a Mamba mixer between in_proj and out_proj (SPEC §2), for one scan direction: causal
 * conv, SiLU, x_proj, Δ = softplus(dt_proj(δr)), selective scan, D skip and the silu(z) gate. The
 * language model runs one branch per layer; Vision Mamba runs a forward and a backward one.
 *
 * <p>Shapes: L tokens, E inner channels, N state size, R dt rank, K conv taps.
 */
public record SsmBranch(float[] convTaps,   // [K, E]  conv1d.weight [E, 1, K] transposed, tap-major
                        float[] convBias,   // [E] or null
                        Tensor xProj,       // [R + 2N, E]
                        Tensor dtProj,      // [E, R]
                        float[] dtBias,     // [E]
                        float[] aT,         // [N, E]  A = −exp(A_log), transposed
                        float[] a,          // [E, N]  A, as the checkpoint lays it out (for the trace)
                        float[] d,          // [E]
                        int channels, int stateSize, int rank, int taps) {

    /**
     * Loads a branch whose tensors are named {@code prefix + conv1d + suffix + ".weight"} etc., with the
     * A matrix under {@code aLog} (Vision Mamba names the backward one {@code A_b_log}).
     */
    public static SsmBranch load(Checkpoint ck, String prefix, String suffix, String aLog, boolean convBias,
                                 int e, int n, int r, int k) {
        float[] conv = ck.tensor(prefix + "conv1d" + suffix + ".weight", e, 1, k).toFloatArray();
        float[] taps = new float[k * e];
        for (int c = 0; c < e; c++) for (int j = 0; j < k; j++) taps[j * e + c] = conv[c * k + j];
        float[] a = ck.tensor(prefix + aLog, e, n).toFloatArray();
        float[] aT = new float[n * e];
        for (int c = 0; c < e; c++) {
            for (int i = 0; i < n; i++) {
                a[c * n + i] = (float) -Math.exp(a[c * n + i]);
                aT[i * e + c] = a[c * n + i];
            }
        }
        return new SsmBranch(taps,
                convBias ? ck.tensor(prefix + "conv1d" + suffix + ".bias", e).toFloatArray() : null,
                ck.tensor(prefix + "x_proj" + suffix + ".weight", r + 2L * n, e),
                ck.tensor(prefix + "dt_proj" + suffix + ".weight", e, r),
                ck.tensor(prefix + "dt_proj" + suffix + ".bias", e).toFloatArray(),
                aT,
                a,
                ck.tensor(prefix + "D" + suffix, e).toFloatArray(),
                e, n, r, k);
    }

    /**
     * y ⊙ silu(z) [L, E] from in_proj's output xz [L, 2E] (x' = columns [0, E), z = [E, 2E)), continuing
     * from and updating the conv window [(K−1)·E] and SSM state [N·E]; recorded under (layer, direction)
     * when a trace wants that layer.
     */
    public float[] run(float[] xz, int len, float[] convWindow, float[] ssm, TraceRecorder trace, int layer,
                       TraceRecorder.Direction direction) {
        int E = channels, N = stateSize, R = rank, P = R + 2 * N;
        float[] s = new float[len * E];                                    // conv output [L, E]
        CausalConv.apply(s, xz, 0, 2 * E, convTaps, convBias, convWindow, len, E, taps);
        float[] u = new float[len * E];                                    // u = silu(s) [L, E]
        Elementwise.silu(u, 0, E, s, 0, E, len, E);

        float[] dbc = new float[len * P];                                  // [δr, B, C] = x_proj(u) [L, R+2N]
        MatMul.matmul(dbc, 0, P, u, 0, E, len, xProj, null);
        float[] delta = new float[len * E];                                // Δ = softplus(dt_proj(δr)) [L, E]
        MatMul.matmul(delta, 0, E, dbc, 0, P, len, dtProj, dtBias);
        Elementwise.softplus(delta, 0, len * E);

        float[] y = new float[len * E];                                    // (C·H + D·u) ⊙ silu(z) [L, E]
        SelectiveScan.scan(y, new SelectiveScan.Inputs(u, delta, dbc, P, R, R + N, xz, E, 2 * E), aT, d, ssm, len, E, N);

        if (trace != null) {
            trace.recordMixer(layer, direction, () -> new MixerTrace(len, E, N, delta.clone(),
                    columns(dbc, len, P, R, N), columns(dbc, len, P, R + N, N), s.clone(), u.clone(),
                    columns(xz, len, 2 * E, E, E), columns(xz, len, 2 * E, 0, E), y.clone(), a, d, convTaps, convBias));
        }
        return y;
    }

    /** Columns [from, from + n) of a row-major [rows, ld] matrix, packed. */
    private static float[] columns(float[] m, int rows, int ld, int from, int n) {
        float[] out = new float[rows * n];
        for (int r = 0; r < rows; r++) System.arraycopy(m, r * ld + from, out, r * n, n);
        return out;
    }
}
