package org.mambalens.engine.kernels;

import java.util.Arrays;

/**
 * Causal softmax attention of T new tokens (positions P … P + T − 1) over the keys and values of the
 * positions before them, kept in a ring cache, and their own: query t of head h (key/value head
 * g = h / (H/KV)) sees the positions max(0, P + t − window + 1) … P + t, and
 * context_t = Σ_s softmax_s(q·k_s · scale)·v_s. The ring holds position p at row p mod capacity.
 */
public final class SlidingWindowAttention {
    private SlidingWindowAttention() {
    }

    /** The queries [T, H·dh] and the new tokens' keys and values [T, KV·dh], each with its row stride. */
    public record Rows(float[] q, int qOff, int ldq, float[] k, int kOff, float[] v, int vOff, int ldkv) {
    }

    /** The ring [capacity, KV·dh] of keys and values of earlier positions (null when there are none). */
    public record Ring(float[] keys, int keysOff, float[] values, int valuesOff, int capacity) {
    }

    /**
     * context [T, H·dh] (rows ldc apart from cOff) for the T tokens from {@code position}; {@code probs} (may be
     * null) receives the weights [H, T, P + T] from pOff, zero for positions a query does not see.
     * Work is split over (query, head) pairs.
     */
    public static void apply(float[] context, int cOff, int ldc, Rows in, Ring ring, int position, int tokens, int heads,
                             int kvHeads, int headSize, int window, float scale, float[] probs, int pOff) {
        int P = position, T = tokens, H = heads, KV = kvHeads, dh = headSize, perGroup = H / KV, row = KV * dh, span = P + T;
        Parallel.forRange(T * H, Math.max(1, T * H / (4 * Parallel.THREADS)), (u0, u1) -> {
            float[] scores = new float[Math.min(window, span)];
            for (int u = u0; u < u1; u++) {                                // query token t, head h
                int t = u / H, h = u % H, p = P + t, g = h / perGroup, qOff = in.qOff() + t * in.ldq() + h * dh;
                int first = Math.max(0, p - window + 1), n = p - first + 1, cRow = cOff + t * ldc + h * dh;
                float max = Float.NEGATIVE_INFINITY;
                for (int s = 0; s < n; s++) {
                    int key = first + s;
                    scores[s] = (key >= P ? MatMul.dot(in.q(), qOff, in.k(), in.kOff() + (key - P) * in.ldkv() + g * dh, dh)
                            : MatMul.dot(in.q(), qOff, ring.keys(), ring.keysOff() + (key % ring.capacity()) * row + g * dh, dh)) * scale;
                    max = Math.max(max, scores[s]);
                }
                float sum = 0;
                for (int s = 0; s < n; s++) sum += scores[s] = (float) Math.exp(scores[s] - max);
                Arrays.fill(context, cRow, cRow + dh, 0f);
                int pRow = pOff + (h * T + t) * span;
                if (probs != null) Arrays.fill(probs, pRow, pRow + span, 0f);
                for (int s = 0; s < n; s++) {
                    int key = first + s;
                    float pr = scores[s] / sum;
                    if (key >= P) MatMul.axpy(pr, in.v(), in.vOff() + (key - P) * in.ldkv() + g * dh, context, cRow, dh);
                    else MatMul.axpy(pr, ring.values(), ring.valuesOff() + (key % ring.capacity()) * row + g * dh, context, cRow, dh);
                    if (probs != null) probs[pRow + key] = pr;
                }
            }
        });
    }

    /** Writes the T new keys and values (rows ldkv apart) into the ring at their positions' rows, the last capacity of them. */
    public static void append(Ring ring, float[] k, int kOff, float[] v, int vOff, int ldkv, int width, int position, int tokens) {
        for (int t = Math.max(0, tokens - ring.capacity()); t < tokens; t++) {
            int slot = (position + t) % ring.capacity();
            System.arraycopy(k, kOff + t * ldkv, ring.keys(), ring.keysOff() + slot * width, width);
            System.arraycopy(v, vOff + t * ldkv, ring.values(), ring.valuesOff() + slot * width, width);
        }
    }
}
