package org.mambalens.engine.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import static org.mambalens.engine.kernels.Vectors.F;
import static org.mambalens.engine.kernels.Vectors.LANES;

/**
 * The selective scan of SPEC §2, gated, vectorised over channels and split across threads by channel
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
        int vectors = e / LANES;
        Parallel.forRange(vectors, Math.max(1, 8192 / Math.max(1, len * n)), (v0, v1) -> {
            for (int c = v0 * LANES; c < v1 * LANES; c += LANES) scanVector(y, in, aT, d, h, len, e, n, c);
        });
        for (int c = vectors * LANES; c < e; c++) scanChannel(y, in, aT, d, h, len, e, n, c);
    }

    private static void scanVector(float[] y, Inputs in, float[] aT, float[] d, float[] h, int len, int e, int n, int c) {
        FloatVector dc = FloatVector.fromArray(F, d, c);
        for (int t = 0; t < len; t++) {
            FloatVector dt = FloatVector.fromArray(F, in.delta(), t * e + c);
            FloatVector ut = FloatVector.fromArray(F, in.u(), t * e + c);
            FloatVector du = dt.mul(ut);
            FloatVector acc = dc.mul(ut);
            int bt = t * in.ldbc() + in.bOff(), ct = t * in.ldbc() + in.cOff();
            for (int i = 0; i < n; i++) {
                FloatVector decay = Vectors.exp(dt.mul(FloatVector.fromArray(F, aT, i * e + c)));
                FloatVector hv = FloatVector.fromArray(F, h, i * e + c);
                hv = hv.fma(decay, du.mul(in.bc()[bt + i]));
                hv.intoArray(h, i * e + c);
                acc = hv.fma(FloatVector.broadcast(F, in.bc()[ct + i]), acc);
            }
            FloatVector z = FloatVector.fromArray(F, in.z(), in.zOff() + t * in.ldz() + c);
            acc.mul(z.div(z.neg().lanewise(VectorOperators.EXP).add(1f))).intoArray(y, t * e + c);
        }
    }

    private static void scanChannel(float[] y, Inputs in, float[] aT, float[] d, float[] h, int len, int e, int n, int c) {
        for (int t = 0; t < len; t++) {
            float dt = in.delta()[t * e + c], ut = in.u()[t * e + c], acc = d[c] * ut;
            int bt = t * in.ldbc() + in.bOff(), ct = t * in.ldbc() + in.cOff();
            for (int i = 0; i < n; i++) {
                float hv = (float) Math.exp(dt * aT[i * e + c]) * h[i * e + c] + dt * ut * in.bc()[bt + i];
                h[i * e + c] = hv;
                acc += in.bc()[ct + i] * hv;
            }
            y[t * e + c] = acc * Scalar.silu(in.z()[in.zOff() + t * in.ldz() + c]);
        }
    }
}
