package org.mambalens.engine.model.mamba;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.backend.Matrix;
import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.tensor.Matrices;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import static org.mambalens.engine.backend.CpuBackend.array;
import static org.mambalens.engine.backend.CpuBackend.wrap;

/**
 * The part of a Mamba mixer between in_proj and out_proj (DESIGN §2), for one scan direction: causal
 * conv, SiLU, x_proj, Δ = softplus(dt_proj(δr)), selective scan, D skip and the silu(z) gate. The
 * language model runs one branch per layer; Vision Mamba runs a forward and a backward one.
 *
 * <p>Shapes: B sequences, T tokens, E inner channels, N state size, R dt rank, K conv taps, P = R + 2N.
 */
public final class SsmBranch {
    private final Backend backend;
    private final Backend.SsmWeights w;                      // conv taps [K, E] tap-major and bias [E] or null, x_proj [P, E],
                                                             // dt_proj [E, R] and bias [E], A = −exp(A_log) (the backend's layout), D [E]
    private final float[] hostA, hostD, hostTaps, hostBias;  // the small parameters again, for traces

    private SsmBranch(Backend backend, float[] taps, float[] bias, Matrix xProj, Matrix dtProj, float[] dtBias, float[] a, float[] d,
                      int e, int n, int r, int k) {
        this.backend = backend;
        this.w = backend.ssmWeights(taps, bias, xProj, dtProj, dtBias, a, d, e, n, r, k);
        this.hostA = a;
        this.hostD = d;
        this.hostTaps = taps;
        this.hostBias = bias;
    }

    /**
     * Loads a branch whose tensors are named {@code prefix + conv1d + suffix + ".weight"} etc., with the
     * A matrix under {@code aLog} (Vision Mamba names the backward one {@code A_b_log}).
     */
    public static SsmBranch load(Backend backend, Checkpoint ck, String prefix, String suffix, String aLog, boolean convBias,
                                 int e, int n, int r, int k) {
        float[] conv = ck.tensor(prefix + "conv1d" + suffix + ".weight", e, 1, k).toFloatArray();
        float[] taps = new float[k * e];
        for (int c = 0; c < e; c++) for (int j = 0; j < k; j++) taps[j * e + c] = conv[c * k + j];
        float[] a = ck.tensor(prefix + aLog, e, n).toFloatArray();
        for (int i = 0; i < a.length; i++) a[i] = (float) -Math.exp(a[i]);
        return new SsmBranch(backend, taps,
                convBias ? ck.tensor(prefix + "conv1d" + suffix + ".bias", e).toFloatArray() : null,
                backend.matrix(ck.tensor(prefix + "x_proj" + suffix + ".weight", r + 2L * n, e), r + 2 * n, e),
                backend.matrix(ck.tensor(prefix + "dt_proj" + suffix + ".weight", e, r), e, r),
                ck.tensor(prefix + "dt_proj" + suffix + ".bias", e).toFloatArray(),
                a,
                ck.tensor(prefix + "D" + suffix, e).toFloatArray(),
                e, n, r, k);
    }

    /**
     * Where a branch's tensors go for one call: scratch from the frame, the decode state when there is one; {@code upcoming},
     * the weights read after the branch (see {@link Backend#ssmStep}).
     */
    public record Run(Backend.Frame frame, Buffer window, Buffer state, TraceRecorder trace, int layer,
                      TraceRecorder.Direction direction, Matrix... upcoming) {
    }

    /**
     * y (+)= (C·H + D·u) ⊙ silu(z) [B·T, E] from in_proj's output xz [B·T, 2E] (x' = columns [0, E), z = [E, 2E));
     * {@code reverse} scans each sequence from its end, {@code accumulate} adds into y. With a decode
     * state, continues from and updates each sequence's conv window [B, K−1, E] and SSM state. Records
     * sequence 0 under (layer, direction) when the trace wants that layer; a reversed branch's trace keeps
     * its own, reversed token order (DESIGN §5).
     */
    public void run(Run run, Buffer y, Buffer xz, int batch, int tokens, boolean reverse, boolean accumulate) {
        int E = w.channels(), N = w.states(), R = w.rank(), P = R + 2 * N, rows = batch * tokens;
        boolean traced = run.trace() != null && run.trace().wants(run.layer());
        if (tokens == 1 && !traced && !reverse && !accumulate && run.state() != null && run.window() != null
                && backend.ssmStep(w, y, xz, 2 * E, run.window(), run.state(), batch, run.upcoming())) {
            return;
        }
        Backend.Frame f = run.frame();
        Buffer u = f.floats((long) rows * E), dbc = f.floats((long) rows * P), dt = f.floats((long) rows * E);
        Buffer s = traced ? f.floats((long) rows * E) : null, delta = traced ? f.floats((long) rows * E) : null;
        preScan(backend, u, s, dbc, dt, xz, run.window(), batch, tokens, reverse);
        Buffer out = traced && accumulate ? f.floats((long) rows * E) : y;   // traced: keep this branch's own output
        backend.selectiveScan(new Backend.Scan(out, E, u, E, dt, E, w.dtBias(), dbc.at(R), P, xz.at(E), 2 * E, w.a(), w.d(), run.state(), delta,
                run.window(), xz, 2 * E, w.kernel()), batch, tokens, E, N, reverse, accumulate && !traced);
        if (!traced) return;
        record(run, tokens, reverse, xz, s, u, dbc, delta, out);
        if (accumulate) backend.add(y, out, (long) rows * E);
    }

    /** s = conv(x') (into {@code s} when given), u = silu(s), [δr, B, C] = x_proj(u), dt = dt_proj(δr) without its bias. */
    private void preScan(Backend b, Buffer u, Buffer s, Buffer dbc, Buffer dt, Buffer xz, Buffer window, int batch, int tokens, boolean reverse) {
        int E = w.channels(), P = w.rank() + 2 * w.states(), rows = batch * tokens;
        b.causalConv(u, s, xz, 2 * E, w.convTaps(), w.convBias(), window, batch, tokens, E, w.kernel(), reverse, true);
        b.linear(dbc, P, u, E, rows, w.xProj(), null);
        b.linear(dt, E, dbc, P, rows, w.dtProj(), null);                    // reads δr, the first R columns
    }

    private void record(Run run, int T, boolean reverse, Buffer xz, Buffer s, Buffer u, Buffer dbc, Buffer delta, Buffer y) {
        int E = w.channels(), N = w.states(), R = w.rank(), P = R + 2 * N;
        float[] xzHost = read(xz, T, 2 * E, reverse), dbcHost = read(dbc, T, P, reverse);
        float[] deltaHost = read(delta, T, E, reverse), sHost = read(s, T, E, reverse), uHost = read(u, T, E, reverse), yHost = read(y, T, E, reverse);
        run.trace().record(run.layer(), () -> MambaLayerTrace.of(run.direction(), new MixerTrace(T, E, N, deltaHost,
                Matrices.columns(dbcHost, T, P, R, N), Matrices.columns(dbcHost, T, P, R + N, N), sHost, uHost,
                Matrices.columns(xzHost, T, 2 * E, E, E), Matrices.columns(xzHost, T, 2 * E, 0, E), yHost, hostA, hostD, hostTaps, hostBias)));
    }

    /** Sequence 0's rows of a [T, cols] buffer, in the branch's own token order. */
    private float[] read(Buffer b, int T, int cols, boolean reverse) {
        float[] m = backend.read(b, T * cols);
        return reverse ? Matrices.flipRows(m, T, cols) : m;
    }

    /**
     * The reverse of {@link #run} for one sequence from a fresh state, on the CPU backend: given dy [L, E],
     * the gradient of the branch output, returns d(xz) [L, 2E] (x' columns first, then z), recomputing
     * the forward tensors it needs with the same steps as the forward pass.
     */
    public float[] backward(float[] xz, int len, float[] dy) {
        if (backend.isGpu()) throw new IllegalStateException("the reverse pass runs on the CPU backend");
        int E = w.channels(), N = w.states(), R = w.rank(), P = R + 2 * N;
        float[] s = new float[len * E], u = new float[len * E], dbc = new float[len * P], dt = new float[len * E];
        preScan(backend, wrap(u), wrap(s), wrap(dbc), wrap(dt), wrap(xz), null, 1, len, false);
        float[] bias = array(w.dtBias());
        for (int t = 0; t < len; t++) for (int c = 0; c < E; c++) dt[t * E + c] += bias[c];
        float[] delta = dt.clone();
        Elementwise.softplus(delta, 0, len * E);
        float[] aT = new float[N * E];
        for (int c = 0; c < E; c++) for (int i = 0; i < N; i++) aT[i * E + c] = hostA[c * N + i];
        var g = new Backward.ScanGradients(new float[len * E], new float[len * E], new float[len * P], new float[len * E]);
        Backward.scan(g, dy, new org.mambalens.engine.kernels.SelectiveScan.Inputs(u, delta, dbc, P, R, R + N, xz, E, 2 * E), aT, hostD, len, E, N);

        float[] dDt = new float[len * E];                                  // through Δ = softplus(dt)
        Backward.softplus(dDt, g.ddelta(), dt, len * E);
        float[] dDeltaRank = new float[len * R];                           // through dt_proj: d(δr) [L, R]
        Backward.linear(dDeltaRank, dDt, len, CpuBackend.tensor(w.dtProj()));
        for (int t = 0; t < len; t++) System.arraycopy(dDeltaRank, t * R, g.dbc(), t * P, R);
        float[] du = new float[len * E];                                   // through x_proj, plus the scan's own du
        Backward.linear(du, g.dbc(), len, CpuBackend.tensor(w.xProj()));
        Elementwise.addInPlace(du, g.du(), len * E);
        float[] ds = new float[len * E];                                   // through u = silu(s)
        Backward.silu(ds, du, s, len * E);

        float[] dxz = new float[len * 2 * E];
        Backward.causalConv(dxz, 0, 2 * E, ds, hostTaps, len, E, w.kernel());
        for (int t = 0; t < len; t++) System.arraycopy(g.dz(), t * E, dxz, t * 2 * E + E, E);
        return dxz;
    }
}
