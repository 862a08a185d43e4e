package org.mambalens.engine.model.mamba;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.CausalConv;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.kernels.MatMul;
import org.mambalens.engine.kernels.SelectiveScan;
import org.mambalens.engine.tensor.Matrices;
import org.mambalens.engine.tensor.Tensor;
import org.mambalens.engine.trace.MambaLayerTrace;
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
        Activations a = activations(xz, len, convWindow);
        float[] y = new float[len * E];                                    // (C·H + D·u) ⊙ silu(z) [L, E]
        SelectiveScan.scan(y, a.scanInputs(xz), aT, d, ssm, len, E, N);

        if (trace != null) {
            trace.record(layer, () -> MambaLayerTrace.of(direction, new MixerTrace(len, E, N, a.delta().clone(),
                    Matrices.columns(a.dbc(), len, P, R, N), Matrices.columns(a.dbc(), len, P, R + N, N), a.s().clone(), a.u().clone(),
                    Matrices.columns(xz, len, 2 * E, E, E), Matrices.columns(xz, len, 2 * E, 0, E), y.clone(), this.a, d, convTaps, convBias)));
        }
        return y;
    }

    /** The branch's tensors before the scan, for L tokens. */
    private record Activations(float[] s,       // conv output [L, E]
                               float[] u,       // silu(s) [L, E]
                               float[] dbc,     // [δr, B, C] = x_proj(u) [L, R+2N]
                               float[] dt,      // dt_proj(δr) + bias [L, E], before softplus
                               float[] delta,   // Δ = softplus(dt) [L, E]
                               int rank, int stateSize, int channels) {
        SelectiveScan.Inputs scanInputs(float[] xz) {
            return new SelectiveScan.Inputs(u, delta, dbc, rank + 2 * stateSize, rank, rank + stateSize, xz, channels, 2 * channels);
        }
    }

    private Activations activations(float[] xz, int len, float[] convWindow) {
        int E = channels, N = stateSize, R = rank, P = R + 2 * N;
        float[] s = new float[len * E];
        CausalConv.apply(s, xz, 0, 2 * E, convTaps, convBias, convWindow, len, E, taps);
        float[] u = new float[len * E];
        Elementwise.silu(u, 0, E, s, 0, E, len, E);
        float[] dbc = new float[len * P];
        MatMul.matmul(dbc, 0, P, u, 0, E, len, xProj, null);
        float[] dt = new float[len * E];
        MatMul.matmul(dt, 0, E, dbc, 0, P, len, dtProj, dtBias);
        float[] delta = dt.clone();
        Elementwise.softplus(delta, 0, len * E);
        return new Activations(s, u, dbc, dt, delta, R, N, E);
    }

    /**
     * The reverse of {@link #run} from a fresh state: given dy [L, E], the gradient of the branch output,
     * returns d(xz) [L, 2E] (x' columns first, then z), recomputing the forward tensors it needs.
     */
    public float[] backward(float[] xz, int len, float[] dy) {
        int E = channels, N = stateSize, R = rank, P = R + 2 * N;
        Activations a = activations(xz, len, new float[(taps - 1) * E]);
        var g = new Backward.ScanGradients(new float[len * E], new float[len * E], new float[len * P], new float[len * E]);
        Backward.scan(g, dy, a.scanInputs(xz), aT, d, len, E, N);

        float[] dDt = new float[len * E];                                  // through Δ = softplus(dt)
        Backward.softplus(dDt, g.ddelta(), a.dt(), len * E);
        float[] dDeltaRank = new float[len * R];                           // through dt_proj: d(δr) [L, R]
        Backward.linear(dDeltaRank, dDt, len, dtProj);
        for (int t = 0; t < len; t++) System.arraycopy(dDeltaRank, t * R, g.dbc(), t * P, R);
        float[] du = new float[len * E];                                   // through x_proj, plus the scan's own du
        Backward.linear(du, g.dbc(), len, xProj);
        Elementwise.addInPlace(du, g.du(), len * E);
        float[] ds = new float[len * E];                                   // through u = silu(s)
        Backward.silu(ds, du, a.s(), len * E);

        float[] dxz = new float[len * 2 * E];
        Backward.causalConv(dxz, 0, 2 * E, ds, convTaps, len, E, taps);
        for (int t = 0; t < len; t++) System.arraycopy(g.dz(), t * E, dxz, t * 2 * E + E, E);
        return dxz;
    }

}
