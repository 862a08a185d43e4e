package org.mambalens.xai.attention;

import org.mambalens.engine.kernels.AttentionKernels;
import org.mambalens.engine.kernels.Elementwise;
import org.mambalens.engine.trace.MixerTrace;

import java.util.Arrays;

/**
 * The hidden attention of a Mamba mixer (DESIGN §3, "The Hidden Attention of Mamba Models"), from a
 * recorded trace: per channel c, the causal matrix
 * <pre>
 *   α_c[i, j] = Σ_n C_i[n] · exp(A[c, n] · (S_i[c] − S_j[c])) · Δ_j[c] · B_j[n],   j ≤ i,
 * </pre>
 * with S the prefix sums of Δ, so the product of the discretised Ā over (j, i] is one exponential of a
 * non-positive number and never underflows step by step. Then y_i[c] = Σ_j α_c[i, j]·u_j[c] + D[c]·u_i[c].
 *
 * <p>A whole channel is computed in blocks of Q tokens, the way chunked SSM scans are: for a row block I
 * after a column block J, the decay splits at I's first token i₀ and J's last token j₁,
 * exp(A(S_i − S_j)) = exp(A(S_i − S_{i₀})) · exp(A(S_{i₀} − S_{j₁})) · exp(A(S_{j₁} − S_j)), three factors
 * in (0, 1], so α's block is a rank-N product of a row factor, a per-pair diagonal and a column factor:
 * 2·L·N + (L/Q)²·N exponentials per channel instead of L²·N/2, and vector FMAs for the rest. Inside a
 * diagonal block the split is at i₀ alone, whose column factor grows as exp(|A|·span); a block whose span
 * could overflow a float (common in trained models, whose Δ add up fast) walks each row leftwards
 * instead, multiplying in one Ā_j = exp(A·Δ_j) ≤ 1 per step in double: at most Q factors, never growing.
 */
public final class HiddenAttention {
    /** Tokens per block: the width of the kernels' block product. */
    static final int BLOCK = AttentionKernels.BLOCK;
    /** Largest |A|·(S_last − S_first) inside a diagonal block for which the split stays inside float range. */
    private static final double SAFE_SPAN = 60;


    private final MixerTrace t;
    private final double[] prefix;   // S [E, L]: S_i[c] = Σ_{k ≤ i} Δ_k[c], in double, one channel per row

    private HiddenAttention(MixerTrace trace) {
        this.t = trace;
        int L = trace.length(), E = trace.channels();
        prefix = new double[E * L];
        for (int c = 0; c < E; c++) {
            double s = 0;
            for (int i = 0; i < L; i++) prefix[c * L + i] = s += trace.delta(i, c);
        }
    }

    public static HiddenAttention of(MixerTrace trace) {
        return new HiddenAttention(trace);
    }

    public int length() {
        return t.length();
    }

    public int channels() {
        return t.channels();
    }

    /** α_c[i, j] straight from the definition (0 above the diagonal). */
    public double weight(int c, int i, int j) {
        if (j > i) return 0;
        int L = t.length(), N = t.stateSize();
        double decay = prefix[c * L + i] - prefix[c * L + j], sum = 0;
        for (int n = 0; n < N; n++) sum += t.c(i, n) * Math.exp(t.a()[c * N + n] * decay) * t.b(j, n);
        return sum * t.delta(j, c);
    }

    /** Row i of channel c: α_c[i, 0..L). */
    public float[] row(int c, int i) {
        float[] out = new float[t.length()];
        for (int j = 0; j <= i; j++) out[j] = (float) weight(c, i, j);
        return out;
    }

    /** α_c [L, L], row-major. */
    public float[] channel(int c) {
        float[] out = new float[t.length() * t.length()];
        channel(c, out, new Workspace(t));
        return out;
    }

    /** Scratch for {@link #channel(int, float[], Workspace)}: one per thread. */
    static final class Workspace {
        final float[] rows;       // [L, N]  C_i[n]·exp(A_n(S_i − S_{i₀}))
        final float[] columns;    // [N, L]  Δ_j·B_j[n]·exp(A_n(S_{j₁} − S_j)), transposed so j is contiguous
        final float[] scaled;     // [N, Q]  a column block times the pair's middle factor, transposed so j is contiguous
        final float[] tile;       // [Q, Q]
        final float[] step;       // [L, N]  Ā_i = exp(A·Δ_i)
        final float[] decay0;     // [L, N]  exp(A(S_i − S_{i₀})), i₀ the first token of i's block
        final double[] decay;     // [Q, N]  Ā_j inside a block, in double, for the walk
        final double[] chain;     // [N]
        final float[] columnChain;    // [N]

        Workspace(MixerTrace t) {
            columnChain = new float[t.stateSize()];
            step = new float[t.length() * t.stateSize()];
            decay0 = new float[t.length() * t.stateSize()];
            decay = new double[BLOCK * t.stateSize()];
            chain = new double[t.stateSize()];
            rows = new float[t.length() * t.stateSize()];
            columns = new float[t.stateSize() * t.length()];
            scaled = new float[t.stateSize() * BLOCK];
            tile = new float[BLOCK * BLOCK];
        }
    }

    /** α_c into out [L, L] (the whole array is written, zeros above the diagonal). */
    void channel(int c, float[] out, Workspace ws) {
        int L = t.length(), Q = BLOCK, blocks = blocks();
        prepare(c, ws);
        Arrays.fill(out, 0f);
        for (int bi = 0; bi < blocks; bi++) {
            for (int bj = 0; bj <= bi; bj++) block(c, bi, bj, ws, out, bi * Q * L + bj * Q, L);
        }
    }

    /** Row (and column) blocks of Q tokens. */
    int blocks() {
        return (t.length() + BLOCK - 1) / BLOCK;
    }

    /**
     * Channel c's row and column factors into ws, for {@link #block}: with Ā_i = exp(A·Δ_i) (one exponential
     * per token and state), the row factor exp(A(S_i − S_{i₀})) is the product of the Ā after the block's first
     * token up to i, and the column factor exp(A(S_{j₁} − S_j)) the product of those after j up to the block's
     * last: chains of at most Q factors in (0, 1], which only ever shrink.
     */
    void prepare(int c, Workspace ws) {
        int L = t.length(), N = t.stateSize(), E = t.channels(), Q = BLOCK;
        float[] a = t.a(), delta = t.delta(), step = ws.step, decay = ws.decay0;
        for (int i = 0; i < L; i++) Elementwise.expOfScaled(step, i * N, a, c * N, delta[i * E + c], N);    // Ā_i
        for (int first = 0; first < L; first += Q) {
            int last = Math.min(L, first + Q) - 1;
            Arrays.fill(decay, first * N, (first + 1) * N, 1f);             // forward: exp(A(S_i − S_first))
            for (int i = first + 1; i <= last; i++) {
                for (int n = 0; n < N; n++) decay[i * N + n] = decay[(i - 1) * N + n] * step[i * N + n];
            }
            for (int k = first * N; k < (last + 1) * N; k++) ws.rows[k] = t.c()[k] * decay[k];
            float[] chain = ws.columnChain;                                 // backward: exp(A(S_last − S_j))
            Arrays.fill(chain, 1f);
            for (int j = last; j >= first; j--) {
                float dj = delta[j * E + c];
                for (int n = 0; n < N; n++) {
                    ws.columns[n * L + j] = dj * t.b()[j * N + n] * chain[n];
                    chain[n] *= step[j * N + n];
                }
            }
        }
    }

    /**
     * Block (bi, bj), bj ≤ bi, of α_c into out: element (i, j) at out[off + (i − i₀)·ld + (j − j₀)], for the
     * block's rows inside the sequence. A diagonal block's entries above the diagonal are left as they are.
     */
    void block(int c, int bi, int bj, Workspace ws, float[] out, int off, int ld) {
        int L = t.length(), N = t.stateSize(), Q = BLOCK, s0 = c * L;
        int i0 = bi * Q, i1 = Math.min(L, i0 + Q), j0 = bj * Q;
        if (bj == bi) {
            diagonalBlock(c, i0, i1, ws, out, off, ld);
            return;
        }
        scaleColumns(c, i0, j0, ws);
        AttentionKernels.rowsTimesBlock(out, off, ld, ws.rows, i0 * N, i1 - i0, ws.scaled, N);
    }

    /** ws.scaled = the column factors of the block starting at j0 times the middle factor towards row i0. */
    private void scaleColumns(int c, int i0, int j0, Workspace ws) {
        int L = t.length(), N = t.stateSize(), Q = BLOCK, s0 = c * L;
        for (int n = 0; n < N; n++) {                                      // column blocks before the diagonal are full
            float middle = (float) Math.exp(t.a()[c * N + n] * (prefix[s0 + i0] - prefix[s0 + j0 + Q - 1]));
            Elementwise.scale(ws.scaled, n * Q, ws.columns, n * L + j0, middle, Q);
        }
    }

    /**
     * For an off-diagonal block (bj &lt; bi): adds the block of α_c into sum and its positive part into pos
     * (both [Q, Q], row r of the block at r·Q), and widens extremes {min, max} — without writing the block out.
     */
    void accumulateBlock(int c, int bi, int bj, Workspace ws, float[] sum, float[] pos, float[] extremes) {
        int L = t.length(), N = t.stateSize(), Q = BLOCK;
        int i0 = bi * Q, i1 = Math.min(L, i0 + Q);
        scaleColumns(c, i0, bj * Q, ws);
        AttentionKernels.accumulateRowsTimesBlock(sum, pos, extremes, ws.rows, i0 * N, i1 - i0, ws.scaled, N);
    }

    /**
     * The block's lower triangle. Split at i₀: the row factor is ws.rows, the column factor
     * Δ_j·B_j·exp(−A(S_j − S_{i₀})) ≥ 1 — safe while |A|·span stays under SAFE_SPAN, else the walk.
     */
    private void diagonalBlock(int c, int i0, int i1, Workspace ws, float[] out, int off, int ld) {
        int L = t.length(), N = t.stateSize(), Q = BLOCK, s0 = c * L;
        double span = prefix[s0 + i1 - 1] - prefix[s0 + i0], maxA = 0;
        for (int n = 0; n < N; n++) maxA = Math.max(maxA, Math.abs(t.a()[c * N + n]));
        if (maxA * span > SAFE_SPAN) {
            walkBlock(c, i0, i1, ws, out, off, ld);
            return;
        }
        Arrays.fill(ws.scaled, 0f);
        float[] delta = t.delta();
        int E = t.channels();
        for (int j = i0; j < i1; j++) {                                     // Δ_j·B_j·exp(−A(S_j − S_{i₀})): no overflow below SAFE_SPAN
            for (int n = 0; n < N; n++) ws.scaled[n * Q + j - i0] = delta[j * E + c] * t.b(j, n) / ws.decay0[j * N + n];
        }
        AttentionKernels.rowsTimesBlock(ws.tile, 0, Q, ws.rows, i0 * N, i1 - i0, ws.scaled, N);
        for (int i = i0; i < i1; i++) System.arraycopy(ws.tile, (i - i0) * Q, out, off + (i - i0) * ld, i - i0 + 1);
    }

    /** The diagonal block row by row: α[i, j] = Δ_j·Σ_n C_i[n]·B_j[n]·Π_{k=j+1..i} Ā_k[n], the product grown as j moves left. */
    private void walkBlock(int c, int i0, int i1, Workspace ws, float[] out, int off, int ld) {
        int N = t.stateSize(), E = t.channels();
        double[] decay = ws.decay, chain = ws.chain;
        for (int j = i0; j < i1; j++) {
            for (int n = 0; n < N; n++) decay[(j - i0) * N + n] = Math.exp(t.a()[c * N + n] * (double) t.delta()[j * E + c]);
        }
        for (int i = i0; i < i1; i++) {
            Arrays.fill(chain, 1.0);
            for (int j = i; j >= i0; j--) {
                double sum = 0;
                for (int n = 0; n < N; n++) {
                    sum += t.c(i, n) * chain[n] * t.b(j, n);
                    chain[n] *= decay[(j - i0) * N + n];
                }
                out[off + (i - i0) * ld + (j - i0)] = (float) (sum * t.delta(j, c));
            }
        }
    }

    /**
     * The branch output rebuilt from the attention: (Σ_j α_c[i, j]·u_j[c] + D[c]·u_i[c]) · silu(z_i[c]),
     * [L, E]. Equal to the recorded y: the invariant every form of α must satisfy (DESIGN §3).
     */
    public float[] apply() {
        int L = t.length(), E = t.channels();
        float[] y = new float[L * E], alpha = new float[L * L];
        Workspace ws = new Workspace(t);
        for (int c = 0; c < E; c++) {
            channel(c, alpha, ws);
            for (int i = 0; i < L; i++) {
                double acc = t.dSkip()[c] * t.u()[i * E + c];
                for (int j = 0; j <= i; j++) acc += alpha[i * L + j] * t.u()[j * E + c];
                double z = t.z()[i * E + c];
                y[i * E + c] = (float) (acc * z / (1 + Math.exp(-z)));
            }
        }
        return y;
    }
}
