package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;

import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/**
 * The selective scan of DESIGN §2, gated, vectorised over channels and split across threads by channel
 * block (channels are independent). The state H [N, E] is read and updated in place, so prefill
 * (len tokens) and decode (one token) are the same kernel.
 */
public final class SelectiveScan {
    private SelectiveScan() {
    }

    /** Where B, C and the gate z live in the wider matrices the model already holds. */
    public record Inputs(float[] u, float[] delta, float[] bc, int ldbc, int bOff, int cOff, float[] z, int zOff, int ldz) {
    }

    /**
     * For t < len, every channel c:
     * H[n, c] ← exp(Δ[t,c]·A[n,c])·H[n, c] + Δ[t,c]·B[t,n]·u[t,c];
     * y[t, c] = (Σ_n C[t,n]·H[n, c] + D[c]·u[t,c]) · silu(z[t,c]).
     *
     * @param y  output [len, E]
     * @param in u, Δ [len, E]; B, C at bc[t·ldbc + bOff/cOff + n]; z at z[zOff + t·ldz + c]
     * @param aT A = −exp(A_log), transposed to [N, E]
     * @param d  D [E]
     * @param h  state [N, E]
     */
    public static void scan(float[] y, Inputs in, float[] aT, float[] d, float[] h, int len, int e, int n) {
        scan(y, 0, in, aT, d, h, 0, len, e, n);
    }

    /** As above, with y [len, E] from y[yOff] and the state [N, E] from h[hOff] (a decode state among others). */
    public static void scan(float[] y, int yOff, Inputs in, float[] aT, float[] d, float[] h, int hOff, int len, int e, int n) {
        int vectors = e / LANES;
        // Blocks of about 384 channels (state N × 384 floats fits L1). A scan worth splitting (≥ 8k state
        // updates) gets a multiple of the thread count, so that no thread is left with an extra block.
        int work = 8192;
        int blocks = Math.max(1, (int) Math.round(vectors * LANES / 384.0));
        if (len * n * e >= work) blocks = (blocks + Parallel.THREADS - 1) / Parallel.THREADS * Parallel.THREADS;
        int perBlock = Math.max(1, (vectors + blocks - 1) / blocks);
        int used = (vectors + perBlock - 1) / perBlock;
        Parallel.forRange(used, Math.max(1, work / Math.max(1, len * n * perBlock * LANES)), (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int c0 = b * perBlock * LANES, c1 = Math.min(vectors, (b + 1) * perBlock) * LANES;
                scanBlock(y, yOff, in, aT, d, h, hOff, len, e, n, c0, c1);
                gateBlock(y, yOff, in, len, e, c0, c1);
            }
        });
        for (int c = vectors * LANES; c < e; c++) scanChannel(y, yOff, in, aT, d, h, hOff, len, e, n, c);
    }

    /**
     * Channels [c0, c1) over all tokens, y before its gate ({@link #gateBlock} follows). For each vector of channels the
     * N states run innermost, so that y's sum stays in a register (Σ_n in n order, as the scalar channel sums it) and u,
     * Δ and Δ·u are loaded once; the N exponentials of one vector are independent, so they overlap instead of forming
     * one chain.
     */
    private static void scanBlock(float[] y, int yOff, Inputs in, float[] aT, float[] d, float[] h, int hOff, int len, int e, int n,
                                  int c0, int c1) {
        float[] u = in.u(), delta = in.delta(), bc = in.bc();
        for (int t = 0; t < len; t++) {
            int row = t * e, yRow = yOff + row, bt = t * in.ldbc() + in.bOff(), ct = t * in.ldbc() + in.cOff();
            for (int c = c0; c < c1; c += LANES) {
                FloatVector ut = FloatVector.fromArray(F, u, row + c), dt = FloatVector.fromArray(F, delta, row + c), du = dt.mul(ut);
                FloatVector acc = FloatVector.fromArray(F, d, c).mul(ut), dtLog2e = dt.mul(Vectors.LOG2E);
                for (int i = 0, hi = hOff + c, ai = c; i < n; i++, hi += e, ai += e) {
                    // exp(Δ·A) = 2^(Δ·log2 e·A). Δ ≥ 0 (a softplus) and A < 0: the argument is never above 0.
                    FloatVector decay = Vectors.exp2NonPositive(dtLog2e.mul(FloatVector.fromArray(F, aT, ai)));
                    FloatVector hv = FloatVector.fromArray(F, h, hi).fma(decay, du.mul(bc[bt + i]));
                    hv.intoArray(h, hi);
                    acc = hv.fma(FloatVector.broadcast(F, bc[ct + i]), acc);
                }
                acc.intoArray(y, yRow + c);
            }
        }
    }

    /** y[t, c] ·= silu(z[t, c]) for channels [c0, c1) of every token. */
    private static void gateBlock(float[] y, int yOff, Inputs in, int len, int e, int c0, int c1) {
        for (int t = 0; t < len; t++) Elementwise.multiplyBySilu(y, yOff + t * e + c0, in.z(), in.zOff() + t * in.ldz() + c0, c1 - c0);
    }

    private static void scanChannel(float[] y, int yOff, Inputs in, float[] aT, float[] d, float[] h, int hOff, int len, int e, int n, int c) {
        for (int t = 0; t < len; t++) {
            float dt = in.delta()[t * e + c], ut = in.u()[t * e + c], acc = d[c] * ut;
            int bt = t * in.ldbc() + in.bOff(), ct = t * in.ldbc() + in.cOff();
            for (int i = 0; i < n; i++) {
                float hv = (float) Math.exp(dt * aT[i * e + c]) * h[hOff + i * e + c] + dt * ut * in.bc()[bt + i];
                h[hOff + i * e + c] = hv;
                acc += in.bc()[ct + i] * hv;
            }
            y[yOff + t * e + c] = acc * Scalar.silu(in.z()[in.zOff() + t * in.ldz() + c]);
        }
    }
}
