package org.mambalens.engine.cuda;

import org.mambalens.engine.backend.Precision;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

/**
 * The Java face of the CUDA kernels (resource {@code kernels/mambalens.cu}) and of the cuBLAS GEMMs: one typed
 * method per kernel, with the kernel's shapes named. Pointers are device addresses ({@link DeviceBuffer#at});
 * 0 stands for an absent optional input. Everything is queued on the device's stream.
 */
public final class CudaKernels {
    private static final int THREADS = 256;
    private static final int CONV_TOKENS = 8;                        // as mambalens.cu defines it: a conv thread's tokens
    private static final int SCAN_WARPS = 4, SCAN_LANE_CHANNELS = 8;  // as mambalens.cu defines them: a block's warps, a warp's channels
    /** Warps an SM the chunked scan aims at (its kernels' registers allow 16), and its shortest chunk. */
    private static final int SCAN_WARPS_PER_SM = 16, MIN_CHUNK_TOKENS = 64;
    private final Gpu gpu;
    private final DeviceArena workspace;
    private final boolean ssmStepByWarps = "warps".equals(System.getProperty("mambalens.cuda.ssmStep"));
    private final boolean prefetchWeights = !"false".equals(System.getProperty("mambalens.cuda.prefetch"));   // false: to compare
    private final boolean foldGatedNorm = !"false".equals(System.getProperty("mambalens.cuda.foldGatedNorm")); // false: to compare
    // Grown, never freed before the workspace (captured graphs may point at them):
    private DeviceBuffer operand;       // a BF16 GEMM's activation operand
    private DeviceBuffer chunkStates;   // the chunked scan's per-chunk end states, start states and ΣΔ

    /** Kernels on {@code gpu}; {@code workspace} holds their scratch (BF16 operands, the chunked scan's states). */
    public CudaKernels(Gpu gpu, DeviceArena workspace) {
        this.gpu = gpu;
        this.workspace = workspace;
    }

    public Gpu gpu() {
        return gpu;
    }

    private static int blocks(long elements) {
        return Math.toIntExact((elements + THREADS - 1) / THREADS);
    }

    /**
     * out[rows, W.rows] (row stride ldOut) = alpha · in[rows, W.cols] (row stride ldIn) · Wᵀ (+ bias) (+ out when
     * {@code accumulate}): a row-major linear layer. Up to {@link #GEMV_ROWS} rows (decode steps) go through the
     * gemv kernels, which keep each weight row in registers for all the rows and add the bias themselves, or from 16
     * rows through gemm_rows, which sums each row as gemv does from register tiles of 32 (row, feature) pairs a warp; more
     * rows through cuBLAS, which sees column-major W(ᵀ)·in: SGEMM for an F32 weight, GemmEx for a BF16 one after
     * in is rounded to a packed BF16 copy. bias may be 0.
     */
    public void linear(long out, int ldOut, long in, int ldIn, int rows, DeviceMatrix w, long bias, float alpha, boolean accumulate) {
        if (alpha == 1f && gemvTakes(w, in, ldIn, rows)) {
            gemv(out, ldOut, in, ldIn, rows, w, bias, 0, 0, 0, 0, 0f, accumulate);
            return;
        }
        int outFeatures = w.rows(), inFeatures = w.cols();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocateFrom(JAVA_FLOAT, alpha), b = arena.allocateFrom(JAVA_FLOAT, accumulate ? 1f : 0f);
            Cublas blas = gpu.blas;
            if (w.precision() == Precision.BF16) {
                long x = bfloat16Operand((long) rows * inFeatures);
                gpu.launch("to_bf16_rows", blocks((long) rows * inFeatures), 1, 1, THREADS, 0, x, in, (long) ldIn, (long) rows, inFeatures);
                blas.check("cublasGemmEx", blas.cublasGemmEx(gpu.blasHandle(), Cublas.OP_T, Cublas.OP_N, outFeatures, rows, inFeatures,
                        a, w.address(), Cublas.CUDA_R_16BF, inFeatures, x, Cublas.CUDA_R_16BF, inFeatures, b, out, Cublas.CUDA_R_32F, ldOut,
                        Cublas.CUBLAS_COMPUTE_32F, Cublas.CUBLAS_GEMM_DEFAULT));
            } else {
                blas.check("cublasSgemm", blas.cublasSgemm(gpu.blasHandle(), Cublas.OP_T, Cublas.OP_N, outFeatures, rows, inFeatures,
                        a, w.address(), inFeatures, in, ldIn, b, out, ldOut));
            }
        }
        if (bias == 0) return;
        if (ldOut == outFeatures) {
            biasActivation(out, bias, rows, outFeatures, 0);
        } else {
            for (int r = 0; r < rows; r++) biasActivation(out + 4L * r * ldOut, bias, 1, outFeatures, 0);
        }
    }

    public void linear(long out, int ldOut, long in, int ldIn, int rows, DeviceMatrix w) {
        linear(out, ldOut, in, ldIn, rows, w, 0, 1f, false);
    }

    /** The most rows the gemv kernels take: a batch of up to this many sequences decodes each with the bits it gets alone. */
    public static final int GEMV_ROWS = 64;
    /** The most rows a gemv normalises itself (every block recomputes their norms); see {@link #rmsnormLinear}. */
    private static final int GEMV_NORM_ROWS = 4;
    private static final int GEMV_FEATURES = 16;          // a gemv block's output features: 8 warps of GEMV_OUTPUTS
    private static final int GEMV_TILE_BYTES = 32 * 1024; // the input rows a gemv block stages at a time (a block gets 48 KiB by default, static shared memory included)
    private static final int GEMV_GROUP = 4;              // rows a warp sums together (mambalens.cu's GEMV_GROUP): tiles are made of whole groups
    // From this many rows the gemm_rows kernels take over: the same sums, from register tiles of 32 (row, feature) pairs, so
    // the weights stream from memory once for a block's rows (32 F32, 64 BF16) rather than once per tile of gemv.
    private static final int GEMM_ROWS_FROM = 16;
    // Products of at most this many features go to gemm_rows whatever their rows (mamba-130m's x_proj has 80).
    private static final int NARROW_FEATURES = 256;

    /**
     * Whether the gemv kernels take this product: few rows, or any rows of a narrow product (gemm_rows: cuBLAS leaves most
     * of the GPU idle on a product of a few features, such as x_proj's, where K is long); an input read 16 bytes at a time,
     * weight rows that fit the registers in slices.
     */
    private static boolean gemvTakes(DeviceMatrix w, long in, int ldIn, int rows) {
        return (rows <= GEMV_ROWS || w.rows() <= NARROW_FEATURES) && gemvSlices(w) > 0 && in % 16 == 0 && ldIn % 4 == 0;
    }

    /** The widest weight row a gemv lane holds in registers without spilling (elements). */
    private static int gemvWidest(DeviceMatrix w) {
        return w.precision() == Precision.BF16 ? 256 * 8 : 128 * 16;
    }

    /**
     * The equal column slices a gemv takes a weight in, each narrow enough for the registers and a whole number of
     * 16-byte chunks (up to 4 slices); 0 when none fit.
     */
    private static int gemvSlices(DeviceMatrix w) {
        int k = w.cols(), chunk = w.precision() == Precision.BF16 ? 8 : 4;
        for (int slices = (k + gemvWidest(w) - 1) / gemvWidest(w); slices <= 4; slices++) {
            if (k % (slices * chunk) == 0) return slices;
        }
        return 0;
    }

    /**
     * out = in · Wᵀ (+ bias) (+ out), in normalised first when normW ≠ 0: RMSNorm ⊙ normW, or LayerNorm ⊙ normW + normB when
     * normB ≠ 0 too, or RMSNorm(in ⊙ silu(gate)) ⊙ normW when gate ≠ 0 (rows ldGate apart); see gemv_f32 in mambalens.cu.
     * A weight too wide for a lane's registers goes in column slices, one launch each, the first adding the bias, the rest
     * adding into out (a fixed order, the same for any number of rows: a batch's rows keep their bits alone). Only a single
     * slice takes a norm, which needs the whole row.
     */
    private void gemv(long out, int ldOut, long in, int ldIn, int rows, DeviceMatrix w, long bias, long normW, long normB, long gate,
                      int ldGate, float eps, boolean accumulate) {
        int slices = gemvSlices(w), width = w.cols() / slices;
        if (slices > 1 && normW != 0) throw new IllegalArgumentException("a gemv norm over " + w.cols() + " inputs in " + slices + " slices");
        for (int s = 0; s < slices; s++) {
            gemvSlice(out, ldOut, in + 4L * s * width, ldIn, rows, w, s * width, width, s == 0 ? bias : 0, normW, normB, gate, ldGate, eps,
                    accumulate || s > 0);
        }
    }

    /** {@link #gemv} over W's columns [column0, column0 + width) and the same columns of in (in points at the first). */
    private void gemvSlice(long out, int ldOut, long in, int ldIn, int rows, DeviceMatrix w, int column0, int width, long bias, long normW,
                           long normB, long gate, int ldGate, float eps, boolean accumulate) {
        boolean bf16 = w.precision() == Precision.BF16;
        int elementBytes = bf16 ? 2 : 4, ldw = w.cols() * elementBytes / 16;    // in 16-byte chunks
        long weights = w.address() + (long) column0 * elementBytes;
        if (rows >= GEMM_ROWS_FROM && normW == 0) {
            // A warp's tile: 4 rows × 8 features for F32 weights, 8 × 4 for BF16 (4 × 8 spills there); a block up to 8 warps.
            int tileRows = bf16 ? 8 : 4, tileFeatures = 32 / tileRows, warps = Math.min(8, (rows + tileRows - 1) / tileRows);
            gpu.launch(bf16 ? "gemm_rows_bf16" : "gemm_rows_f32", (w.rows() + tileFeatures - 1) / tileFeatures,
                    (rows + tileRows * warps - 1) / (tileRows * warps), 1, 32 * warps, 0, out, ldOut, weights, in, ldIn, bias, rows,
                    w.rows(), width, accumulate ? 1 : 0, ldw);
            return;
        }
        int perChunk = bf16 ? 256 : 128, chunks = (width + perChunk - 1) / perChunk, registers = 1;   // a lane's 16-byte loads
        while (registers < chunks) registers *= 2;
        int fit = GEMV_TILE_BYTES / (4 * width);
        int tileRows = rows <= fit ? rows : fit >= GEMV_GROUP ? fit / GEMV_GROUP * GEMV_GROUP : Math.max(1, fit);
        String kernel = (bf16 ? "gemv_bf16_v" : "gemv_f32_v") + registers + (gate != 0 ? "_gated" : "");
        gpu.launch(kernel, (w.rows() + GEMV_FEATURES - 1) / GEMV_FEATURES, (rows + tileRows - 1) / tileRows, 1, THREADS,
                4 * tileRows * width, out, ldOut, weights, in, ldIn, bias, normW, normB, gate, ldGate, eps, rows, w.rows(), width,
                accumulate ? 1 : 0, tileRows, ldw);
    }

    /**
     * out = RMSNorm(x) ⊙ normW · Wᵀ (+ bias) for `rows` packed rows of x [rows, W.cols]: one gemv that normalises as
     * it reads for a few rows, else add_rmsnorm into {@code normed} and the product (the same bits either way).
     */
    public void rmsnormLinear(long out, int ldOut, long x, long normW, float eps, long normed, int rows, DeviceMatrix w, long bias) {
        normLinear(out, ldOut, x, normW, 0, eps, normed, rows, w, bias);
    }

    /** As {@link #rmsnormLinear}, with (LayerNorm(x) ⊙ lnW + lnB), layernorm's values, for the normalised input. */
    public void layernormLinear(long out, int ldOut, long x, long lnW, long lnB, float eps, long normed, int rows, DeviceMatrix w, long bias) {
        normLinear(out, ldOut, x, lnW, lnB, eps, normed, rows, w, bias);
    }

    /** The norm (RMSNorm; LayerNorm when normB ≠ 0) inside a gemv for a few rows, else its own kernel into normed, then the product. */
    private void normLinear(long out, int ldOut, long x, long normW, long normB, float eps, long normed, int rows, DeviceMatrix w, long bias) {
        int dim = w.cols();
        if (gemvNormalises(w, x, dim, rows, normW, normB)) {
            gemv(out, ldOut, x, dim, rows, w, bias, normW, normB, 0, 0, eps, false);
            return;
        }
        if (normB == 0) addRmsnorm(normed, dim, x, dim, 0, dim, normW, rows, dim, eps);
        else layernorm(normed, dim, x, dim, normW, normB, rows, dim, eps);
        linear(out, ldOut, normed, dim, rows, w, bias, 1f, false);
    }

    /** Whether a gemv takes this product with its norm in the prologue: a few rows, the whole row in one slice, the norm's weights 16-byte aligned. */
    private static boolean gemvNormalises(DeviceMatrix w, long x, int ldx, int rows, long normW, long normB) {
        return rows <= GEMV_NORM_ROWS && gemvTakes(w, x, ldx, rows) && gemvSlices(w) == 1 && normW % 16 == 0 && normB % 16 == 0;
    }

    /**
     * out += (RMSNorm(y ⊙ silu(z)) ⊙ normW) · Wᵀ (+ bias) for `rows` rows of y [rows, W.cols] (ldy apart) and z (ldz apart):
     * Mamba-2's gated norm and out_proj added into the residual stream. One gemv that normalises as it reads for a few rows,
     * else gated_rmsnorm into {@code normed} [rows, W.cols] and the product (the same bits either way).
     */
    public void gatedRmsnormLinearAdd(long out, int ldOut, long y, int ldy, long z, int ldz, long normW, float eps, long normed, int rows,
                                      DeviceMatrix w, long bias) {
        int dim = w.cols();
        if (foldGatedNorm && gemvNormalises(w, y, ldy, rows, normW, 0)) {
            gemv(out, ldOut, y, ldy, rows, w, bias, normW, 0, z, ldz, eps, true);
            return;
        }
        gatedRmsnorm(normed, dim, y, ldy, z, ldz, normW, rows, dim, eps);
        linear(out, ldOut, normed, dim, rows, w, bias, 1f, true);
    }

    /** Per row of x [rows, cols] the indices of its two largest values into out [rows, 2] (ints; see top_two_rows). */
    public void topTwo(long out, long x, int rows, int cols) {
        gpu.launch("top_two_rows", rows, 1, 1, 1024, 0, out, x, cols);
    }

    private static final int SSM_BATCH_ROWS = 16;         // from this many sequences ssm_step_scan takes 4 channels a warp, ssm_step_project 4 outputs
    private static final int SSM_PREFETCH_ROWS = 16;      // from this many, ssm_step_project asks L2 for the upcoming weights (H200, 64
                                                          // sequences: 36,425–36,513 tokens/s against 34,628–34,638; one: 2,243–2,248
                                                          // against 2,279–2,289)
    private static final int SSM_QUAD_ROWS = 8;           // from this many, ssm_step_channels where it may (H200: 1 sequence 2,337 tokens/s
                                                          // against 1,999; 8: 9,701 against 8,152)
    private static final int SSM_STEP_THREADS = 128;      // a block of ssm_step_channels: 32 channels, a quad of threads each
    private static final int SSM_STEP_MAXR = 64;          // the dt ranks ssm_step_channels sums (ssm_step_scan: two a lane)

    /** Whether {@link #ssmStep} takes these shapes (ssm_step_scan keeps at most two states and two dt ranks a lane). */
    public static boolean ssmStepTakes(int states, int kernel, int rank) {
        return states <= 64 && rank <= 64 && kernel >= 1 && kernel <= 9;
    }

    /** Floats of {@link #ssmStep}'s scratch for `rows` sequences: x_proj's partial sums, one set per slice of channels. */
    public static long ssmStepScratch(int rows, int channels, int states, int rank) {
        return (long) rows * ssmSlices(channels) * (rank + 2 * states);
    }

    /** The slices of SSM_SLICE channels (mambalens.cu's, 256) over which ssm_step_project splits x_proj's sums. */
    private static int ssmSlices(int channels) {
        return (channels + 255) / 256;
    }

    /**
     * Whether {@link #ssmStep} may run its second half a quad of threads per channel for a batch (ssm_step_channels: up
     * to 16 states, 64 dt ranks), unless -Dmambalens.cuda.ssmStep=warps; else always a warp per channel (ssm_step_scan).
     */
    public boolean ssmStepByChannel(int states, int rank) {
        return !ssmStepByWarps && states <= 16 && rank <= SSM_STEP_MAXR;
    }

    /**
     * A on the device as this backend's kernels read it: [E, N] for the scans, then, where a batch's decode step may go a
     * quad of threads per channel ({@link #ssmStepByChannel}), Aᵀ [N, E] and dt_projᵀ [R, E] (F32) for it, so that its
     * loads are coalesced.
     */
    public DeviceBuffer ssmStepWeights(DeviceArena arena, float[] a, DeviceMatrix dtProj, int channels, int states, int rank) {
        int E = channels, N = states, R = rank;
        if (!ssmStepByChannel(N, R)) return arena.upload(a);
        float[] both = Arrays.copyOf(a, 2 * E * N);
        for (int e = 0; e < E; e++) for (int n = 0; n < N; n++) both[E * N + n * E + e] = a[e * N + n];
        DeviceBuffer b = arena.floats(2L * E * N + (long) R * E);
        b.upload(both);
        gpu.launch("dt_proj_transposed", blocks((long) E * R), 1, 1, THREADS, 0, b.at(2L * E * N), dtProj.address(),
                dtProj.precision() == Precision.BF16 ? 1 : 0, E, R);
        return b;
    }

    /**
     * One token of each of `rows` sequences through a Mamba mixer's SSM branch (see ssm_step_project, then
     * ssm_step_channels or ssm_step_scan): from xz [rows, 2E] (rows ldxz apart) into y [rows, E] (rows ldy apart), rolling
     * window [rows, K−1, E] and state [rows, E, N] on; a is {@link #ssmStepWeights}'s; partial ({@link #ssmStepScratch}
     * floats) is scratch. One sequence goes a warp per channel (the most blocks); a batch of 8 or more a quad of threads
     * per channel where the shapes allow (H200, mamba-130m, 64 sequences: 23 against 70 µs), else from 16 rows 4 channels
     * a warp. All three layouts give a row the same bits, so a batch keeps each row's bits alone. For a batch of 16 or more
     * the first kernel asks L2 for up to two {@code upcoming} weights, which the kernels after the step read (see
     * ssm_step_project); the values do not depend on it.
     */
    public void ssmStep(long y, int ldy, long xz, int ldxz, long window, long state, long partial, long taps, long convBias, DeviceMatrix xProj,
                        DeviceMatrix dtProj, long dtBias, long a, long dSkip, int rows, int channels, int states, int rank, int kernel,
                        DeviceMatrix... upcoming) {
        ssmStep(y, ldy, xz, ldxz, window, state, partial, taps, convBias, xProj, dtProj, dtBias, a, dSkip, rows, channels, states, rank,
                kernel, rows >= SSM_QUAD_ROWS && ssmStepByChannel(states, rank) ? 0 : rows >= SSM_BATCH_ROWS ? 4 : 1, upcoming);
    }

    /**
     * {@link #ssmStep} with the second half's layout given: 0, a quad of threads per channel (ssm_step_channels; a must
     * then hold its transposed weights); or ssm_step_scan with 1 or 4 channels a warp (4: a warp's chains of loads
     * overlap). A row gets the same bits from each. Public for the benchmark that times them.
     */
    public void ssmStep(long y, int ldy, long xz, int ldxz, long window, long state, long partial, long taps, long convBias, DeviceMatrix xProj,
                        DeviceMatrix dtProj, long dtBias, long a, long dSkip, int rows, int channels, int states, int rank, int kernel,
                        int channelsPerWarp, DeviceMatrix... upcoming) {
        if (channelsPerWarp != 0 && channelsPerWarp != 1 && channelsPerWarp != 4) {
            throw new IllegalArgumentException("ssmStep: " + channelsPerWarp + " channels a warp");
        }
        if (upcoming.length > 2) throw new IllegalArgumentException("ssmStep: " + upcoming.length + " upcoming weights, at most 2");
        long[] prefetch = new long[4];                    // (address, bytes) twice; 0 where absent
        if (prefetchWeights && rows >= SSM_PREFETCH_ROWS) {
            for (int i = 0; i < upcoming.length; i++) {
                DeviceMatrix m = upcoming[i];
                prefetch[2 * i] = m.address();
                prefetch[2 * i + 1] = (long) m.rows() * m.cols() * (m.precision() == Precision.BF16 ? 2 : 4);
            }
        }
        int E = channels, P = rank + 2 * states, slices = ssmSlices(E), bf16 = dtProj.precision() == Precision.BF16 ? 1 : 0;
        int outputsPerWarp = rows < SSM_BATCH_ROWS ? 1 : 4, warpOutputs = 8 * outputsPerWarp;   // the same sums either way
        gpu.launch("ssm_step_project_q" + outputsPerWarp, (P + warpOutputs - 1) / warpOutputs, slices, rows, THREADS, 0, partial, xz, ldxz,
                window, taps, convBias, xProj.address(), xProj.precision() == Precision.BF16 ? 1 : 0, E, kernel, P, prefetch[0], prefetch[1],
                prefetch[2], prefetch[3]);
        if (channelsPerWarp == 0) {
            if (!ssmStepByChannel(states, rank)) {        // then ssmStepWeights laid out no transposed weights after A
                throw new IllegalArgumentException("ssm_step_channels: " + states + " states, rank " + rank + (ssmStepByWarps ? ", warps asked for" : ""));
            }
            if (states % 4 == 0 && state % 16 != 0) throw new IllegalArgumentException("ssm_step_channels: a state not 16-byte aligned");
            int blockChannels = SSM_STEP_THREADS / 4;
            gpu.launch("ssm_step_channels", (E + blockChannels - 1) / blockChannels, rows, 1, SSM_STEP_THREADS, 4 * P, y, ldy, xz, ldxz,
                    window, taps, convBias, a + 8L * E * states, bf16, dtBias, a + 4L * E * states, dSkip, state, partial, slices, E, states,
                    rank, kernel);
            return;
        }
        gpu.launch("ssm_step_scan_c" + channelsPerWarp, (E + 16 * channelsPerWarp - 1) / (16 * channelsPerWarp), rows, 1, 512,
                4 * P, y, ldy, xz, ldxz, window, taps, convBias, dtProj.address(), bf16, dtBias, a,
                dSkip, state, partial, slices, E, states, rank, kernel);
    }

    private long bfloat16Operand(long count) {
        operand = atLeast(operand, (count + 1) / 2);
        return operand.address();
    }

    /** {@code buffer} when it holds {@code floats}, else a new one from the workspace (the old one stays until it closes). */
    private DeviceBuffer atLeast(DeviceBuffer buffer, long floats) {
        return buffer != null && buffer.floats() >= floats ? buffer : workspace.floats(floats);
    }

    /** scores[b, i, j] = Σ_k q[b, i, k]·k[b, j, k] for `batch` [T, dh] pairs laid out back to back: [batch, T, T]. */
    public void attentionScores(long scores, long q, long k, int batch, int tokens, int headSize) {
        stridedBatched(Cublas.OP_T, Cublas.OP_N, tokens, tokens, headSize, k, headSize, (long) tokens * headSize,
                q, headSize, (long) tokens * headSize, scores, tokens, (long) tokens * tokens, batch);
    }

    /** context[b] = probs[b] [T, T] · v[b] [T, dh], for `batch` heads back to back: [batch, T, dh]. */
    public void attentionContext(long context, long probs, long v, int batch, int tokens, int headSize) {
        stridedBatched(Cublas.OP_N, Cublas.OP_N, headSize, tokens, tokens, v, headSize, (long) tokens * headSize,
                probs, tokens, (long) tokens * tokens, context, headSize, (long) tokens * headSize, batch);
    }

    private void stridedBatched(int ta, int tb, int m, int n, int k, long a, int lda, long strideA, long b, int ldb, long strideB,
                                long c, int ldc, long strideC, int batch) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocateFrom(JAVA_FLOAT, 1f), zero = arena.allocateFrom(JAVA_FLOAT, 0f);
            gpu.blas.check("cublasSgemmStridedBatched", gpu.blas.cublasSgemmStridedBatched(gpu.blasHandle(), ta, tb, m, n, k, one,
                    a, lda, strideA, b, ldb, strideB, zero, c, ldc, strideC, batch));
        }
    }

    /** out[r] = table[ids[r]] for `rows` ids; table [V, D]. */
    public void gatherRows(long out, long table, long ids, int rows, int dim) {
        gpu.launch("gather_rows", rows, 1, 1, THREADS, 0, out, table, ids, dim);
    }

    /**
     * For `rows` rows (each buffer's rows `stride` floats apart): residual += hidden (when hidden ≠ 0),
     * out = RMSNorm(residual) ⊙ weight.
     */
    public void addRmsnorm(long out, long outStride, long residual, long residualStride, long hidden, long hiddenStride,
                           long weight, int rows, int dim, float eps) {
        gpu.launch("add_rmsnorm", rows, 1, 1, THREADS, 0, out, outStride, residual, residualStride, hidden, hiddenStride, weight, dim, eps);
    }

    /** out = LayerNorm(x) ⊙ w + b for `rows` rows, `stride` floats apart in each buffer. */
    public void layernorm(long out, long outStride, long x, long xStride, long w, long b, int rows, int dim, float eps) {
        gpu.launch("layernorm", rows, 1, 1, THREADS, 0, out, outStride, x, xStride, w, b, dim, eps);
    }

    /** x += y + bias (bias may be 0) over [rows, cols]. */
    public void addBiasResidual(long x, long y, long bias, long rows, int cols) {
        gpu.launch("add_bias_residual", blocks(rows * cols), 1, 1, THREADS, 0, x, y, bias, rows, cols);
    }

    /** x = act(x + bias) over packed [rows, cols], act as {@code Backend.Activation}'s ordinal. */
    public void biasActivation(long x, long bias, long rows, int cols, int activation) {
        gpu.launch("bias_activation", blocks(rows * cols), 1, 1, THREADS, 0, x, bias, rows, cols, activation);
    }

    /**
     * u = causal conv of x [batch·T, E], then SiLU when {@code silu}, for `batch` sequences of T tokens (x's
     * rows ldx apart); reverse runs the conv of the token-reversed sequence; window [batch, K−1, E] supplies
     * inputs before each start (0: zeros); sOut (may be 0) receives the conv output before SiLU.
     */
    public void causalConv(long u, long sOut, long x, int ldx, long taps, long bias, long window, int batch, int tokens,
                           int channels, int kernel, boolean reverse, boolean silu) {
        if (kernel > 9) throw new IllegalArgumentException("conv kernel " + kernel + ": the CUDA conv takes at most 9 taps");
        if (tokens > 65535 * CONV_TOKENS || batch > 65535) {
            throw new IllegalArgumentException(batch + " sequences of " + tokens + " tokens in one conv launch; the grid takes at most 65,535 sequences of "
                    + 65535 * CONV_TOKENS + " tokens");
        }
        conv(u, sOut, x, ldx, taps, bias, window, batch, tokens, channels, kernel, reverse, silu, false);
    }

    /** {@link #causalConv} of one token of one sequence, then the window [K−1, E] moved on over it, in one launch (K ≤ 9). */
    public void causalConvStep(long u, long sOut, long x, int ldx, long taps, long bias, long window, int channels, int kernel, boolean silu) {
        if (kernel > 9) throw new IllegalArgumentException("conv kernel " + kernel + ": the CUDA decode state keeps at most 8 past inputs");
        conv(u, sOut, x, ldx, taps, bias, window, 1, 1, channels, kernel, false, silu, true);
    }

    /** The causal_conv launch: a block of 128 channels for each CONV_TOKENS tokens of each sequence. */
    private void conv(long u, long sOut, long x, int ldx, long taps, long bias, long window, int batch, int tokens, int channels, int kernel,
                      boolean reverse, boolean silu, boolean roll) {
        gpu.launch("causal_conv", (channels + 127) / 128, (tokens + CONV_TOKENS - 1) / CONV_TOKENS, batch, 128, 0, u, sOut, x, ldx, taps, bias, window, tokens,
                channels, kernel, reverse ? 1 : 0, silu ? 1 : 0, roll ? 1 : 0);
    }

    /** The conv window [(K−1), E] moved on over T new inputs x (rows ldx apart). */
    public void rollWindow(long window, long x, int ldx, int tokens, int channels, int kernel) {
        if (kernel > 9) throw new IllegalArgumentException("conv kernel " + kernel + ": the CUDA decode state keeps at most 8 past inputs");
        if (kernel > 1) gpu.launch("roll_conv_window", (channels + 127) / 128, 1, 1, 128, 0, window, x, ldx, kernel, tokens, channels);
    }

    /** x[i] *= y[i] for i < n. */
    public void multiply(long x, long y, long n) {
        gpu.launch("multiply", blocks(n), 1, 1, THREADS, 0, x, y, 1f, n);
    }

    /** x[i] *= factor for i < n. */
    public void scale(long x, float factor, long n) {
        gpu.launch("multiply", blocks(n), 1, 1, THREADS, 0, x, 0L, factor, n);
    }

    /** dst[i] = src[i] for i < n. */
    public void copy(long dst, long src, long n) {
        gpu.launch("copy_fill", blocks(n), 1, 1, THREADS, 0, dst, src, 0f, n);
    }

    /** dst[i] = value for i < n. */
    public void fill(long dst, float value, long n) {
        gpu.launch("copy_fill", blocks(n), 1, 1, THREADS, 0, dst, 0L, value, n);
    }

    /** Where the selective scan reads and writes; row strides in floats, optional pointers 0. */
    public record ScanArgs(long y, int ldy, long u, int ldu, long dt, int lddt, long dtBias, long bc, int ldbc, long z, int ldz,
                           long a, long dSkip, long state, long deltaOut, long window, long x, int ldx, int kernel) {
    }

    /**
     * The selective scan with softplus, D skip and gate fused (see mambalens.cu), for `batch` sequences of
     * T tokens, E channels, N states (N ≤ 64): a channel's states on 4 lanes of a warp. One forward sequence whose
     * channels alone would leave the GPU short of warps (a prompt) is cut into chunks scanned side by side, their
     * start states carried from one to the next; chunks of at least {@value #MIN_CHUNK_TOKENS} tokens.
     */
    public void selectiveScan(ScanArgs s, int batch, int tokens, int channels, int states, boolean reverse, boolean accumulate) {
        if (states > 64) throw new IllegalArgumentException("state size " + states + ": the CUDA scan keeps at most 64 states per channel");
        if (s.window() != 0 && s.kernel() > 9) throw new IllegalArgumentException("conv kernel " + s.kernel() + ": the CUDA decode state keeps at most 8 past inputs");
        if (batch > 65535) throw new IllegalArgumentException(batch + " sequences in one scan launch; the grid takes at most 65,535");
        if (tokens == 0) return;                                         // nothing to scan, and the state stays as it is
        int warps = (channels + SCAN_LANE_CHANNELS - 1) / SCAN_LANE_CHANNELS, chunks = batch == 1 && !reverse
                ? Math.min(tokens / MIN_CHUNK_TOKENS, (gpu.multiprocessors() * SCAN_WARPS_PER_SM + warps - 1) / warps) : 1;
        if (chunks > 1) {
            chunkedScan(s, tokens, channels, states, accumulate, chunks);
            return;
        }
        scanLaunch(s, batch, tokens, channels, states, reverse, accumulate, 0);
    }

    /** The chunks' end states from zero, then their start states carried, then the scan of each from its start (mambalens.cu). */
    private void chunkedScan(ScanArgs s, int tokens, int channels, int states, boolean accumulate, int chunks) {
        int chunk = (tokens + chunks - 1) / chunks;
        chunk = (chunk + 15) / 16 * 16;                                  // whole rounds of 16 tokens
        chunks = (tokens + chunk - 1) / chunk;
        long perChunk = (long) channels * states;
        chunkStates = atLeast(chunkStates, (2 * perChunk + channels) * chunks);
        long hEnd = chunkStates.address(), hStart = hEnd + 4 * perChunk * chunks, sumDelta = hStart + 4 * perChunk * chunks;
        gpu.launch("scan_chunk_ends" + scanSuffix(states), scanBlocks(channels), chunks, 1, 32 * SCAN_WARPS, 0, hEnd, sumDelta,
                s.u(), s.ldu(), s.dt(), s.lddt(), s.dtBias(), s.bc(), s.ldbc(), s.a(), tokens, channels, states, chunk);
        gpu.launch("scan_chunk_carry", blocks(perChunk), 1, 1, THREADS, 0, hStart, hEnd, sumDelta, s.a(), s.state(), s.window(), s.x(),
                s.ldx(), s.kernel(), tokens, chunks, channels, states);
        scanLaunch(new ScanArgs(s.y(), s.ldy(), s.u(), s.ldu(), s.dt(), s.lddt(), s.dtBias(), s.bc(), s.ldbc(), s.z(), s.ldz(), s.a(),
                s.dSkip(), hStart, s.deltaOut(), 0, 0, 0, 0), chunks, tokens, channels, states, false, accumulate, chunk);
    }

    private void scanLaunch(ScanArgs s, int gridY, int tokens, int channels, int states, boolean reverse, boolean accumulate, int chunk) {
        gpu.launch("selective_scan" + scanSuffix(states), scanBlocks(channels), gridY, 1, 32 * SCAN_WARPS, 0, s.y(), s.ldy(), s.u(), s.ldu(),
                s.dt(), s.lddt(), s.dtBias(), s.bc(), s.ldbc(), s.z(), s.ldz(), s.a(), s.dSkip(), s.state(), s.deltaOut(), s.window(), s.x(),
                s.ldx(), s.kernel(), tokens, channels, states, reverse ? 1 : 0, accumulate ? 1 : 0, chunk);
    }

    private static String scanSuffix(int states) {
        return states <= 16 ? "_n16" : states <= 32 ? "_n32" : "_n64";
    }

    private static int scanBlocks(int channels) {
        return (channels + SCAN_LANE_CHANNELS * SCAN_WARPS - 1) / (SCAN_LANE_CHANNELS * SCAN_WARPS);
    }

    /**
     * One layer's hidden-attention sums over E channels (see mambalens.cu): sum and positive [T, T], and per
     * block of 256 (i, j) pairs the minimum and maximum, [T · ⌈T/256⌉] each. Per direction: deltaT [E, T],
     * sumT [E, T] doubles (running sums of Δ), B and C [T, N], A [E, N]; the backward pointers 0 for a one-way layer.
     */
    public void hiddenAttentionSummary(long sum, long positive, long blockMin, long blockMax, long deltaT, long sumT, long b, long c, long a,
                                       long deltaTb, long sumTb, long bb, long cb, long ab, int tokens, int channels, int states) {
        if (states > 64) throw new IllegalArgumentException("state size " + states + ": the CUDA attention summary takes at most 64");
        gpu.launch(states <= 16 ? "hidden_attention_summary_n16" : "hidden_attention_summary_n64", summaryBlocks(tokens), tokens, 1, THREADS, 0,
                sum, positive, blockMin, blockMax, deltaT, sumT, b, c, a, deltaTb, sumTb, bb, cb, ab, tokens, channels, states);
    }

    /** Blocks per row of {@link #hiddenAttentionSummary}. */
    public static int summaryBlocks(int tokens) {
        return (tokens + THREADS - 1) / THREADS;
    }

    /** Fused qkv [B·T, 3D] (+ bias [3D], may be 0) → q (scaled), k, v [B, H, T, dh]. */
    public void qkvToHeads(long q, long k, long v, long qkv, long bias, int batch, int tokens, int heads, int headSize, float scale) {
        gpu.launch("qkv_to_heads", blocks((long) batch * tokens * 3 * heads * headSize), 1, 1, THREADS, 0, q, k, v, qkv, bias,
                batch, tokens, heads, headSize, scale);
    }

    /** context [B, H, T, dh] → [B·T, H·dh]. */
    public void headsToRows(long out, long context, int batch, int tokens, int heads, int headSize) {
        gpu.launch("heads_to_rows", blocks((long) batch * tokens * heads * headSize), 1, 1, THREADS, 0, out, context, batch, tokens, heads, headSize);
    }

    /** Each of `rows` packed rows of `cols` floats replaced by its softmax. */
    public void softmaxRows(long x, long rows, int cols) {
        gpu.launch("softmax_rows", Math.toIntExact(rows), 1, 1, THREADS, 0, x, cols);
    }

    /** Pixels [B, C, S, S] → patches [B·G·G, C·P·P]. */
    public void im2col(long out, long pixels, int batch, int channels, int size, int patch, int stride, int grid) {
        gpu.launch("im2col", blocks((long) batch * grid * grid * channels * patch * patch), 1, 1, THREADS, 0, out, pixels, batch, channels,
                size, patch, stride, grid);
    }

    // ---- Mamba-2 ----

    /** Where Mamba-2's SSD scan reads and writes (see ssd.cu); row strides in floats, optional pointers 0. */
    public record SsdArgs(long y, int ldy, long x, int ldx, long b, long c, int ldbc, long dt, int lddt, long dtBias,
                          float dtMin, float dtMax, long a, long d, long state, long deltaOut) {
    }

    /** Mamba-2's scan (ssd.cu's ssd_scan) over T tokens: one warp per channel of the H·P, N ≤ 256 states. */
    public void ssdScan(SsdArgs s, int tokens, int heads, int headDim, int groups, int states) {
        if (states > 256) throw new IllegalArgumentException("state size " + states + ": the CUDA SSD scan keeps at most 256 states per channel");
        int warps = THREADS / 32;
        gpu.launch("ssd_scan", Math.toIntExact(((long) heads * headDim + warps - 1) / warps), 1, 1, THREADS, 0, s.y(), s.ldy(), s.x(),
                s.ldx(), s.b(), s.c(), s.ldbc(), s.dt(), s.lddt(), s.dtBias(), s.dtMin(), s.dtMax(), s.a(), s.d(), s.state(), s.deltaOut(),
                tokens, heads, headDim, groups, states);
    }

    /** out = RMSNorm(y ⊙ silu(z)) ⊙ w for `rows` rows of {@code dim}, each buffer's rows its stride apart. */
    public void gatedRmsnorm(long out, long ldOut, long y, long ldy, long z, long ldz, long w, int rows, int dim, float eps) {
        gpu.launch("gated_rmsnorm", rows, 1, 1, THREADS, 0, out, ldOut, y, ldy, z, ldz, w, dim, eps);
    }

    // ---- RWKV ----

    /** out [T, D] packed = x·mix + x_{t−1}·(1 − mix), x's rows ldx apart, x[−1] = shift [D] (see wkv.cu). */
    public void tokenShift(long out, long x, int ldx, long mix, long shift, int tokens, int dim) {
        gpu.launch("token_shift", blocks((long) tokens * dim), 1, 1, THREADS, 0, out, x, ldx, mix, shift, tokens, dim);
    }

    /** out [T, A] = gate ⊙ WKV(k, v) from and into the state [3A] (numerator, denominator, maximum exponent); one thread per channel. */
    public void wkv(long out, long gate, long k, long v, long decay, long bonus, long state, int tokens, int channels) {
        gpu.launch("wkv_forward", (channels + 127) / 128, 1, 1, 128, 0, out, gate, k, v, decay, bonus, state, tokens, channels);
    }

    // ---- Griffin (griffin.cu) ---------------------------------------------------------------------

    /**
     * Threads of an attention block (one query and head): a decode step has one query a head, so its keys and the context's
     * sums are spread over many threads (8 groups of 64 for a head of 64).
     */
    private static final int ATTENTION_THREADS = 512;

    /**
     * Rotary position embedding in place over `rows` rows (ldx apart) at positions first + r, head h at column h·headStride.
     * Here and in the other methods that take a position, {@code positionAt} (0: none) is a device int that holds it
     * instead, for a decode step captured once and replayed at every position (see CudaBackend.replayAt).
     */
    public void rotary(long x, int ldx, int rows, int heads, int headStride, long inverseFrequencies, int rotaryDims, int firstPosition,
                       long positionAt) {
        int half = rotaryDims / 2;
        long n = (long) rows * heads * half;
        if (n > 0) {
            gpu.launch("rotary_rows", blocks(n), 1, 1, THREADS, 0, x, ldx, rows, heads, headStride, inverseFrequencies, half, firstPosition,
                    positionAt);
        }
    }

    /**
     * Causal attention of T tokens from position P over the ring of earlier keys/values and their own (see
     * griffin.cu); scores [T·H, nmax] is scratch, nmax ≥ min(window, P + T).
     */
    public void slidingWindowAttention(long context, int ldc, long q, int ldq, long k, long v, int ldkv, long keyRing, long valueRing,
                                       int capacity, int position, int tokens, int heads, int kvHeads, int headSize, int window,
                                       float scale, long scores, int nmax, long probs, long positionAt) {
        if (heads > 65535) throw new IllegalArgumentException(heads + " heads in one attention launch; the grid takes at most 65,535");
        gpu.launch("sliding_window_attention", tokens, heads, 1, ATTENTION_THREADS, 4 * ATTENTION_THREADS, context, ldc, q, ldq, k, v, ldkv,
                keyRing, valueRing, capacity, position, tokens, heads, kvHeads, headSize, window, scale, scores, nmax, probs, positionAt);
    }

    /** The keys and values [T, width] (rows ldkv apart) of positions [P, P + T) written into their ring rows. */
    public void ringAppend(long keyRing, long valueRing, long k, long v, int ldkv, int width, int capacity, int position, int tokens,
                           long positionAt) {
        long n = (long) Math.min(tokens, capacity) * width;
        if (n > 0) {
            gpu.launch("ring_append", blocks(n), 1, 1, THREADS, 0, keyRing, valueRing, k, v, ldkv, width, capacity, position, tokens,
                    positionAt);
        }
    }

    /**
     * The RG-LRU over T tokens of W channels in gate blocks of bw (see griffin.cu): the gates of every token at once
     * into a (scratch or the trace's) and b (may be 0), the input term into y, then the recurrence turns y into h.
     */
    public void rgLru(long y, long x, int ldx, long inputGate, long inputGateBias, long recurrentGate, long recurrentGateBias,
                      long softplusLambda, long state, long a, long b, int tokens, int channels, int blockWidth, int position, long positionAt) {
        if (tokens > 65535) throw new IllegalArgumentException(tokens + " tokens in one RG-LRU launch; the grid takes at most 65,535");
        gpu.launch("griffin_rg_lru_gates", (channels + 63) / 64, tokens, 1, 64, 0, a, b, y, x, ldx, inputGate, inputGateBias,
                recurrentGate, recurrentGateBias, softplusLambda, channels, blockWidth, position, positionAt);
        gpu.launch("griffin_rg_lru_scan", (channels + 127) / 128, 1, 1, 128, 0, y, a, state, tokens, channels, position, positionAt);
    }

    /** x = cap·tanh(x / cap) for n values. */
    public void softCap(long x, float cap, long n) {
        if (n > 0) gpu.launch("soft_cap", blocks(n), 1, 1, THREADS, 0, x, cap, n);
    }

    // ---- GPT-NeoX (attention.cu) ----

    /** cache [heads, capacity, dh] rows first … first + rows − 1 of every head from x (rows ldx apart, head g at g·headStride). */
    public void storeHeads(long cache, int capacity, int firstPosition, long x, int ldx, int headStride, int rows, int heads, int headSize,
                           long positionAt) {
        gpu.launch("store_heads", blocks((long) rows * heads * headSize), 1, 1, THREADS, 0, cache, capacity, firstPosition, x, (long) ldx,
                headStride, rows, heads, headSize, positionAt);
    }

    /**
     * Causal softmax attention of L queries over a head-major key/value cache (attention.cu causal_attention, one block per
     * (query, head)); {@code scores} [heads, L, first + L] receives the probabilities.
     */
    public void causalAttention(long context, int ldContext, long q, int ldq, int qHeadStride, long keys, long values, int capacity,
                                int tokens, int heads, int kvHeads, int headSize, float scale, int firstPosition, int window, long scores,
                                long positionAt) {
        if (heads > 65535) throw new IllegalArgumentException(heads + " heads in one attention launch; the grid takes at most 65,535");
        int block = ATTENTION_THREADS, shared = 4 * (headSize + block + 32);
        gpu.launch("causal_attention", tokens, heads, 1, block, shared, context, (long) ldContext, q, (long) ldq, qHeadStride, keys, values,
                capacity, tokens, heads, kvHeads, headSize, scale, firstPosition, window, scores, positionAt);
    }

    /** Token rows [B·(M+1), D]: patch embeddings + bias with the cls token at clsPosition, plus position embeddings. */
    public void assembleTokens(long x, long patches, long patchBias, long cls, long position, int batch, int patchCount, int dim, int clsPosition) {
        gpu.launch("assemble_tokens", blocks((long) batch * (patchCount + 1) * dim), 1, 1, THREADS, 0, x, patches, patchBias, cls, position,
                batch, patchCount, dim, clsPosition);
    }
}
