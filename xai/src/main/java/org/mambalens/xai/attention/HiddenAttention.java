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
 * in (0, 1]. With the middle factor folded into the column factors, a row block's stretch of α left of its
 * diagonal block is one rank-N product, row factors [Q, N] times column factors [N, columns]
 * ({@link AttentionKernels#product}): 2·L·N + (L/Q)²·N exponentials per channel instead of L²·N/2, and vector
 * FMAs for the rest. Row blocks go {@link #SUPER} at a time: the columns before such a super-block, starting
 * at token s, are scaled once for all of its rows by exp(A(S_s − S_{j₁})), and each row block's factors by
 * exp(A(S_{i₀} − S_s)). The diagonal block splits at i₀ alone, whose column factor grows as exp(|A|·span); a
 * block whose span could overflow a float (trained models' Δ add up fast) walks each row leftwards instead,
 * multiplying in one Ā_j = exp(A·Δ_j) ≤ 1 per step in double: at most Q factors, never growing.
 */
public final class HiddenAttention {
    /** Tokens per block. */
    static final int BLOCK = AttentionKernels.BLOCK;
    /** Row blocks per super-block, whose rows share the scaled factors of the columns before it. */
    static final int SUPER = 4;
    /**
     * Columns of a row block computed at a time: a chunk's scaled column factors, its stretch of α and the
     * summary's sums it touches stay in L1.
     */
    static final int CHUNK = 8 * BLOCK;
    /** Largest |A|·(S_last − S_first) inside a diagonal block for which the split stays inside float range. */
    private static final double SAFE_SPAN = 60;
    /**
     * Middle factors below this count as zero: their blocks' terms are then below 2⁻⁶⁴ of |C·Δ·B| (row and column
     * factors are at most 1), far under a float's precision of the channel's own entries, and their products would
     * otherwise run into subnormal floats, which the CPU multiplies two orders of magnitude slower (a 1,024-token
     * prompt's far blocks are full of them).
     */
    private static final float NEGLIGIBLE = 0x1p-64f;

    private final MixerTrace t;
    private final int blocks;
    private final float[] bByState;  // B [N, blocks·Q], transposed so that a state's column factors are contiguous; zeros past L

    private HiddenAttention(MixerTrace trace) {
        this.t = trace;
        int L = trace.length(), N = trace.stateSize();
        blocks = blocks(trace);
        int padded = blocks * BLOCK;
        bByState = new float[N * padded];
        for (int j = 0; j < L; j++) {
            for (int n = 0; n < N; n++) bByState[n * padded + j] = trace.b(j, n);
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
        int N = t.stateSize();
        double decay = 0, sum = 0;                                          // S_i − S_j = Σ_{k ∈ (j, i]} Δ_k
        for (int k = j + 1; k <= i; k++) decay += t.delta(k, c);
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

    /**
     * One channel's row and column factors, made by {@link #prepare}; rows and columns past L are zeros. Their states
     * n are the channel's in {@link #order}: slowest decay first, so that the middle factors towards far column
     * blocks, which vanish from the fastest states on, leave zeros at the end that the products skip.
     */
    static final class Factors {
        final int[] order;       // [N]  the channel's state at each place n, by |A| ascending (ties in state order)
        final float[] rates;     // [N]  A_n in that order
        final float[] rows;      // [blocks·Q, N]  C_i[n]·exp(A_n(S_i − S_{i₀})), i₀ the first token of i's block
        final double[] prefix;   // [L]  S_i = Σ_{k ≤ i} Δ_k, in double
        final float[] columns;   // [N, stride]  Δ_j·B_j[n]·exp(A_n(S_{j₁} − S_j)), j₁ the last token of j's block
        final int stride;        // AttentionKernels.rowStride: whole blocks, rows of states apart in L1
        float largestRate;       // max_n |A_n|, for the diagonal blocks' overflow check
        // Made when first needed for the channel: the columns before super-block farFor's first token s times
        // exp(A(S_s − S_{j₁})), and row block rowsFarFor's row factors times exp(A(S_{i₀} − S_s)), so that
        // α[i, j] = Σ_n rowsFar[i, n]·far[n, j] there.
        final float[] far;       // [N, stride]
        final int[] farStates;   // [blocks]  per column block before s, where far's factors end in zeros
        final float[] rowsFar;   // [Q, N]
        int farFor, rowsFarFor;

        Factors(MixerTrace t) {
            order = new int[t.stateSize()];
            rates = new float[t.stateSize()];
            stride = AttentionKernels.rowStride(t.length(), CHUNK);
            prefix = new double[t.length()];
            rows = new float[blocks(t) * BLOCK * t.stateSize()];
            columns = new float[t.stateSize() * stride];
            far = new float[t.stateSize() * stride];
            farStates = new int[blocks(t)];
            rowsFar = new float[BLOCK * t.stateSize()];
        }
    }

    /** One thread's scratch, with the factors of the channel it computes. */
    static final class Workspace {
        final Factors factors;
        final float[] scaled;     // [N, CHUNK]  a chunk's column factors times their middle factors
        final float[] tile;       // [Q, CHUNK]  α for a row block and a chunk of columns
        final float[] middle;     // [blocks, N]  exp(A(S_{i₀} − S_{j₁})) between a row (super-)block and each column block
        final int[] states;       // [blocks]  per column block, where its middle factors end in zeros
        final float[] cInOrder;   // [L, N]  C in the factors' state order, where that is not the states' own
        final float[] fromStart;  // [blocks·Q]  S_i − S_{i₀}
        final float[] toEnd;      // [blocks·Q]  S_{j₁} − S_j
        final float[] deltas;     // [blocks·Q]  Δ_j of the channel, zeros past L
        final double[] walkDecay; // [Q, N]  Ā_j inside a block, in double, for the walk
        final double[] walkChain; // [N]

        Workspace(MixerTrace t) {
            int N = t.stateSize();
            factors = new Factors(t);
            scaled = new float[N * CHUNK];
            tile = new float[BLOCK * CHUNK];
            middle = new float[blocks(t) * N];
            states = new int[blocks(t)];
            cInOrder = new float[t.length() * N];
            fromStart = new float[blocks(t) * BLOCK];
            toEnd = new float[blocks(t) * BLOCK];
            deltas = new float[blocks(t) * BLOCK];
            walkDecay = new double[BLOCK * N];
            walkChain = new double[N];
        }
    }

    /** α_c into out [L, L] (the whole array is written, zeros above the diagonal). */
    void channel(int c, float[] out, Workspace ws) {
        int L = t.length(), Q = BLOCK;
        prepare(c, ws.factors, ws);
        Arrays.fill(out, 0f);
        for (int bi = 0; bi < blocks(); bi++) {
            int i0 = bi * Q, rows = Math.min(L, i0 + Q) - i0;
            for (int j0 = 0; j0 < i0 + Q; j0 += CHUNK) {
                int width = Math.min(CHUNK, i0 + Q - j0);
                chunk(c, bi, j0, width, ws.factors, ws);
                for (int p = 0; p < rows; p++) System.arraycopy(ws.tile, p * CHUNK, out, (i0 + p) * L + j0, Math.min(width, i0 + p - j0 + 1));
            }
        }
    }

    /** Row (and column) blocks of Q tokens. */
    int blocks() {
        return blocks;
    }

    private static int blocks(MixerTrace t) {
        return (t.length() + BLOCK - 1) / BLOCK;
    }

    /** Channel c's row and column factors into f, each an exponential of a prefix-sum difference (ws: scratch). */
    void prepare(int c, Factors f, Workspace ws) {
        int L = t.length(), N = t.stateSize(), E = t.channels(), ld = f.stride, padded = blocks * BLOCK;
        double running = 0;
        for (int i = 0; i < L; i++) f.prefix[i] = running += t.delta()[i * E + c];
        f.farFor = f.rowsFarFor = -1;
        boolean inOrder = orderStates(c, f);
        f.largestRate = 0;
        for (int n = 0; n < N; n++) f.largestRate = Math.max(f.largestRate, Math.abs(f.rates[n]));
        float[] cs = t.c();
        if (!inOrder) {                                                 // C's states in the factors' order
            for (int i = 0; i < L; i++) for (int n = 0; n < N; n++) ws.cInOrder[i * N + n] = cs[i * N + f.order[n]];
            cs = ws.cInOrder;
        }
        for (int first = 0; first < L; first += BLOCK) {
            int last = Math.min(L, first + BLOCK) - 1;
            for (int i = first; i <= last; i++) {
                ws.fromStart[i] = (float) (f.prefix[i] - f.prefix[first]);
                ws.toEnd[i] = (float) (f.prefix[last] - f.prefix[i]);
                ws.deltas[i] = t.delta()[i * E + c];
            }
        }
        // Every token's row in one call: a row is one vector of states, too short to pay for a call of its own.
        Elementwise.expOfScaledRowsTimes(f.rows, 0, f.rates, 0, ws.fromStart, 0, cs, 0, L, N);
        for (int n = 0; n < N; n++) {                                   // whole blocks: B and Δ are zeros past L
            Elementwise.expOfScaledTimes(f.columns, n * ld, ws.toEnd, 0, f.rates[n], bByState, f.order[n] * padded, ws.deltas, 0, padded);
        }
    }

    /** f.order and f.rates for channel c (an insertion sort: N is small); whether that is the states' own order. */
    private boolean orderStates(int c, Factors f) {
        int N = t.stateSize();
        float[] a = t.a();
        boolean inOrder = true;
        for (int n = 0; n < N; n++) {
            int k = n;
            for (; k > 0 && Math.abs(a[c * N + f.order[k - 1]]) > Math.abs(a[c * N + n]); k--) f.order[k] = f.order[k - 1];
            f.order[k] = n;
            inOrder &= k == n;
        }
        for (int n = 0; n < N; n++) f.rates[n] = a[c * N + f.order[n]];
        return inOrder;
    }

    /**
     * Row block bi of α_c for the columns [j0, j0 + width) (j0 a multiple of Q, width ≤ CHUNK, ending at the
     * diagonal block's end at the latest) into ws.tile: (i, j) at (i − i₀)·CHUNK + (j − j0), for j ≤ i &lt; L; the
     * rest of the tile is left undefined. Columns before bi's super-block come from its far factors; the
     * super-block's own columns have a middle factor per column block, folded into ws.scaled here.
     */
    void chunk(int c, int bi, int j0, int width, Factors f, Workspace ws) {
        int N = t.stateSize(), Q = BLOCK;
        int far = Math.clamp(bi / SUPER * SUPER * Q - j0, 0, width), near = width - far, diagonal = bi - (j0 + far) / Q;
        // The rows before L only (the last block's may be fewer), in whole groups of the product's rows.
        int rows = Math.ceilDiv(Math.min(t.length() - bi * Q, Q), AttentionKernels.PRODUCT_ROWS) * AttentionKernels.PRODUCT_ROWS;
        if (far > 0) {
            farFactors(bi, f, ws);
            AttentionKernels.product(ws.tile, 0, CHUNK, f.rowsFar, 0, rows, f.far, j0, f.stride, far, N, f.farStates, j0 / Q);
        }
        if (near == 0) return;
        boolean walk = diagonal < near / Q && f.largestRate * span(f, bi) > SAFE_SPAN;
        int live = middles(bi * Q, (j0 + far) / Q, walk ? diagonal : near / Q, f, ws, ws.states);   // a walked block's could overflow
        if (walk) {                                                                                  // the walk fills this block
            Arrays.fill(ws.middle, diagonal * N, (diagonal + 1) * N, 0f);
            ws.states[diagonal] = 0;
        }
        AttentionKernels.scaleBlocks(ws.scaled, 0, CHUNK, f.columns, j0 + far, f.stride, ws.middle, 0, near / Q, N, live);
        AttentionKernels.product(ws.tile, far, CHUNK, f.rows, bi * Q * N, rows, ws.scaled, 0, CHUNK, near, N, ws.states, 0);
        if (walk) walkBlock(c, bi, ws, far + diagonal * Q);
    }

    /**
     * ws.middle [count, N] = exp(A(S_s − S_{j₁})) from token s towards column blocks [b0, b0 + count): at most 1
     * before s, and for the diagonal block (s its first token) at most exp(SAFE_SPAN), the split at s alone (a
     * diagonal block of a wider span, which is walked, must not be among them: its exponential could overflow).
     * states[b] is where block b's factors end in zeros; returns the largest.
     */
    private int middles(int s, int b0, int count, Factors f, Workspace ws, int[] states) {
        int N = t.stateSize(), most = 0;
        for (int b = 0; b < count; b++) {
            int j1 = Math.min(t.length(), (b0 + b + 1) * BLOCK) - 1;
            Elementwise.expOfScaled(ws.middle, b * N, f.rates, 0, (float) (f.prefix[s] - f.prefix[j1]), N);
        }
        Elementwise.zeroBelow(ws.middle, 0, NEGLIGIBLE, count * N);
        for (int b = 0; b < count; b++) {
            states[b] = Elementwise.endOfNonZeros(ws.middle, b * N, N);
            most = Math.max(most, states[b]);
        }
        return most;
    }

    /** f.far for row block bi's super-block and f.rowsFar for bi, where they are not made yet. */
    private void farFactors(int bi, Factors f, Workspace ws) {
        int N = t.stateSize(), s = bi / SUPER * SUPER * BLOCK;
        if (f.farFor != bi / SUPER) {
            int live = middles(s, 0, s / BLOCK, f, ws, f.farStates);
            AttentionKernels.scaleBlocks(f.far, 0, f.stride, f.columns, 0, f.stride, ws.middle, 0, s / BLOCK, N, live);
            f.farFor = bi / SUPER;
        }
        if (f.rowsFarFor != bi) {
            Elementwise.expOfScaled(ws.middle, 0, f.rates, 0, (float) (f.prefix[bi * BLOCK] - f.prefix[s]), N);
            Elementwise.zeroBelow(ws.middle, 0, NEGLIGIBLE, N);
            Elementwise.multiplyRows(f.rowsFar, 0, f.rows, bi * BLOCK * N, ws.middle, 0, BLOCK, N);
            f.rowsFarFor = bi;
        }
    }

    /** S_last − S_first of block bi. */
    private double span(Factors f, int bi) {
        int i0 = bi * BLOCK, i1 = Math.min(t.length(), i0 + BLOCK);
        return f.prefix[i1 - 1] - f.prefix[i0];
    }

    /**
     * Diagonal block bi row by row into ws.tile from column `at`: α[i, j] = Δ_j·Σ_n C_i[n]·B_j[n]·Π_{k=j+1..i} Ā_k[n],
     * the product grown as j moves left.
     */
    private void walkBlock(int c, int bi, Workspace ws, int at) {
        int N = t.stateSize(), E = t.channels(), i0 = bi * BLOCK, i1 = Math.min(t.length(), i0 + BLOCK);
        double[] decay = ws.walkDecay, chain = ws.walkChain;
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
                ws.tile[(i - i0) * CHUNK + at + (j - i0)] = (float) (sum * t.delta(j, c));
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
