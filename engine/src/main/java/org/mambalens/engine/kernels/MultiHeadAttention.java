package org.mambalens.engine.kernels;

import java.util.Arrays;

import static org.mambalens.engine.kernels.Vectors.LANES;

/**
 * Bidirectional multi-head softmax attention (ViT, DESIGN §6.1) for a batch of sequences, every head of every sequence in
 * one parallel region: each head's q (scaled), kᵀ and v are gathered once, then blocks of query rows make their scores,
 * softmax and context with {@link AttentionKernels#product}, the blocks spread over the threads. A score sums its dh
 * products in one FMA chain from zero, a context value its T products likewise, whichever thread computes it.
 */
public final class MultiHeadAttention {
    /** Query rows a task takes (whole groups of the product's rows): DeiT's 197 tokens and 3 heads make 21 tasks an image. */
    private static final int ROWS = 32;

    /**
     * The calling thread's gathered operands, kept between calls (a batch of 8 DeiT images gathers 4 MB a layer) and
     * grown to the largest seen; gather writes every element of its heads, padding included.
     */
    private static final ThreadLocal<float[]> GATHERED = ThreadLocal.withInitial(() -> new float[0]);

    private MultiHeadAttention() {
    }

    private static float[] gathered(int length) {
        if (GATHERED.get().length < length) GATHERED.set(new float[length]);
        return GATHERED.get();
    }

    /**
     * context[b·T + t, h·dh + j] = Σ_s softmax_s(q_h·k_hᵀ/√dh)[t, s]·v_h[s, j] for each of B sequences of T tokens.
     *
     * @param context [B·T, H·dh] from context[contextOff]
     * @param qkv     [B·T, 3·H·dh] from qkv[qkvOff]: q, k, v blocks side by side, each head's dh columns in turn
     * @param bias    [3·H·dh], added to qkv, or null
     * @param probs   [B, H, T, T] from probs[probsOff], receives the probabilities; or null
     */
    public static void apply(float[] context, int contextOff, float[] qkv, int qkvOff, float[] bias, int batch, int tokens, int heads,
                             int headSize, float[] probs, int probsOff) {
        int T = tokens, dh = headSize, D = heads * dh, sequenceHeads = batch * heads, blocks = (T + ROWS - 1) / ROWS;
        Layout at = new Layout(T, dh);
        float[] gathered = gathered(sequenceHeads * at.perHead());
        Parallel.forRange(sequenceHeads, 1, (s0, s1) -> {
            for (int s = s0; s < s1; s++) gather(gathered, s, at, qkv, qkvOff + s / heads * T * 3 * D, bias, s % heads, D);
        });
        Parallel.forRange(sequenceHeads * blocks, 1, (j0, j1) -> {
            float[] scores = new float[ROWS * at.keys()], weights = new float[ROWS * T], out = new float[ROWS * at.width()];
            for (int j = j0; j < j1; j++) {
                int s = j / blocks, r0 = j % blocks * ROWS, rows = Math.min(ROWS, T - r0), count = roundUp(rows, AttentionKernels.PRODUCT_ROWS);
                AttentionKernels.product(scores, 0, at.keys(), gathered, at.queries(s) + r0 * dh, count, gathered, at.keysT(s), at.keys(), at.keys(), dh);
                for (int i = 0; i < rows; i++) {
                    Elementwise.softmaxRows(scores, i * at.keys(), 1, T);
                    System.arraycopy(scores, i * at.keys(), weights, i * T, T);
                    if (probs != null) System.arraycopy(scores, i * at.keys(), probs, probsOff + (s * T + r0 + i) * T, T);
                }
                AttentionKernels.product(out, 0, at.width(), weights, 0, count, gathered, at.values(s), at.width(), at.width(), T);
                int b = s / heads, h = s % heads;
                for (int i = 0; i < rows; i++) System.arraycopy(out, i * at.width(), context, contextOff + (b * T + r0 + i) * D + h * dh, dh);
            }
        });
    }

    /**
     * Where the gathered operands of head s (of all the sequences' heads) lie: q·scale [T rounded up to whole groups of
     * the product's rows, dh], kᵀ [dh, keys] and v [T, width], keys and width rounded up to whole vectors; zeros in the
     * padding.
     */
    private record Layout(int tokens, int headSize, int keys, int width, int perHead) {
        Layout(int tokens, int headSize) {
            this(tokens, headSize, roundUp(tokens, LANES), roundUp(headSize, LANES),
                    roundUp(tokens, AttentionKernels.PRODUCT_ROWS) * headSize + headSize * roundUp(tokens, LANES) + tokens * roundUp(headSize, LANES));
        }

        int queries(int s) {
            return s * perHead;
        }

        int keysT(int s) {
            return queries(s) + roundUp(tokens, AttentionKernels.PRODUCT_ROWS) * headSize;
        }

        int values(int s) {
            return keysT(s) + headSize * keys;
        }
    }

    private static int roundUp(int n, int multiple) {
        return (n + multiple - 1) / multiple * multiple;
    }

    /** Head h of one sequence's qkv rows (from qkv[from], 3·D apart) plus the bias, into head s's place in out, zeros in its padding. */
    private static void gather(float[] out, int s, Layout at, float[] qkv, int from, float[] bias, int h, int D) {
        int dh = at.headSize(), q = at.queries(s), kT = at.keysT(s), v = at.values(s), c = h * dh;
        float scale = (float) (1 / Math.sqrt(dh));
        for (int t = 0; t < at.tokens(); t++) {
            int row = from + t * 3 * D + c, qt = q + t * dh, vt = v + t * at.width();
            System.arraycopy(qkv, row, out, qt, dh);
            System.arraycopy(qkv, row + 2 * D, out, vt, dh);
            if (bias != null) {
                Elementwise.addInPlace(out, qt, bias, c, dh);
                Elementwise.addInPlace(out, vt, bias, 2 * D + c, dh);
            }
            Elementwise.scale(out, qt, out, qt, scale, dh);
            Arrays.fill(out, vt + dh, vt + at.width(), 0f);
            for (int j = 0; j < dh; j++) out[kT + j * at.keys() + t] = qkv[row + D + j] + (bias == null ? 0f : bias[D + c + j]);
        }
        Arrays.fill(out, q + at.tokens() * dh, kT, 0f);
        for (int j = 0; j < dh; j++) Arrays.fill(out, kT + j * at.keys() + at.tokens(), kT + (j + 1) * at.keys(), 0f);
    }
}
