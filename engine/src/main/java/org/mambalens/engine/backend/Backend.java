package org.mambalens.engine.backend;

import org.mambalens.engine.tensor.Tensor;

/**
 * The operations the model families are written over, on buffers this backend owns, so that a forward
 * pass keeps its activations where it computes them: {@link CpuBackend} (the Vector API kernels, heap
 * arrays) or the CUDA backend (FFM to the driver and cuBLAS, device memory). A family's forward pass is
 * written once against this interface and runs on either.
 *
 * <p>Conventions: matrices are row-major; a row stride ({@code ld…}) is in floats; a {@link Buffer}
 * is a view starting at some element of a backend allocation ({@link Buffer#at}); an optional input is
 * {@code null}. Work may run asynchronously (the GPU's stream); {@link #read} waits for it. A backend
 * is used by one model; the CPU backend may be called from several threads at once, a GPU model
 * serialises its calls.
 */
public interface Backend extends AutoCloseable {

    /** Where the work runs, for messages: "CPU", or the GPU's name. */
    String name();

    boolean isGpu();

    /**
     * Runs {@code work} (a model's entry point) with this backend bound to the calling thread. A GPU runs
     * one call at a time (a frame and a stream are shared); the CPU lets threads share a model.
     */
    <T> T call(java.util.function.Supplier<T> work);

    /** The precision of the weight GEMMs' operands (activations and everything else are F32). */
    Precision precision();

    // ---- memory ----------------------------------------------------------------------------------

    /** A weight [rows, cols] for {@link #linear}, from a checkpoint tensor (F32, F16 or BF16), kept until close. */
    Matrix matrix(Tensor weight, int rows, int cols);

    /** A lookup table [rows, cols] for {@link #embed}: F32 whatever the precision (shared with an F32 {@link #matrix} of the same tensor). */
    Matrix table(Tensor weight, int rows, int cols);

    /** Tensors of {@code cols} columns stacked on top of each other as one weight (a fused q/k/v projection). */
    Matrix stack(int cols, Tensor... parts);

    /** A copy of {@code values} kept until close (per-channel parameters). */
    Buffer constant(float[] values);

    /** {@code floats} zeros kept until close (recurrent states, caches). */
    Buffer allocate(long floats);

    /**
     * Opens a scope for a forward pass's activations: buffers from {@link Frame#floats} live until it
     * closes. Frames do not nest; the GPU reuses the same memory from one frame to the next.
     */
    Frame frame();

    /** Activations of one forward pass; see {@link #frame}. */
    interface Frame extends AutoCloseable {
        /** {@code floats} values, contents undefined. */
        Buffer floats(long floats);

        @Override
        void close();
    }

    /** {@code count} values from the start of {@code b}, once the work queued so far has finished. */
    float[] read(Buffer b, int count);

    /** Copies {@code values} to the start of {@code b}. */
    void write(Buffer b, float[] values);

    /** Copies equal-length arrays (a batch of images) to the start of {@code b}, back to back. */
    void write(Buffer b, float[][] parts);

    /** dst[0, count) = src[0, count). */
    void copy(Buffer dst, Buffer src, long count);

    /** b[0, count) = value. */
    void fill(Buffer b, long count, float value);

    /**
     * Runs {@code work}, a decode step whose launches and buffers are the same every time, through
     * {@code slot}: the GPU runs it once, then captures it as a graph and replays that; the CPU runs it.
     */
    void replay(ReplaySlot slot, Runnable work);

    // ---- dense algebra ---------------------------------------------------------------------------

    /**
     * out[r, :] = alpha · in[r, :] · Wᵀ (+ bias) for r < rows: W [outFeatures, inFeatures], in's rows ldIn
     * apart, out's ldOut apart. With BF16 precision the GPU rounds the operands to bfloat16.
     */
    void linear(Buffer out, int ldOut, Buffer in, int ldIn, int rows, Matrix w, Buffer bias, float alpha);

    default void linear(Buffer out, int ldOut, Buffer in, int ldIn, int rows, Matrix w, Buffer bias) {
        linear(out, ldOut, in, ldIn, rows, w, bias, 1f);
    }

    /** out[t, :] = table[ids[t], :] for every id: [ids, D] from the table [V, D]. */
    void embed(Buffer out, Matrix table, int[] ids);

    // ---- element-wise ----------------------------------------------------------------------------

    /** What {@link #biasActivation} applies after adding the bias. */
    enum Activation { NONE, GELU, GELU_TANH, SILU, SIGMOID, RELU_SQUARED, SOFTPLUS }

    /** x = act(x + bias) over [rows, cols] packed; bias [cols] may be null. */
    void biasActivation(Buffer x, Buffer bias, int rows, int cols, Activation activation);

    /** x[i] += y[i] for i < n. */
    void add(Buffer x, Buffer y, long n);

    /** x[i] *= y[i] for i < n. */
    void multiply(Buffer x, Buffer y, long n);

    /** x[i] *= factor for i < n. */
    void scale(Buffer x, float factor, long n);

    /**
     * For `rows` rows (each buffer's rows its own stride apart): residual += hidden (when hidden is not
     * null), then out = residual / rms(residual) ⊙ w.
     */
    void addRmsnorm(Buffer out, int ldOut, Buffer residual, int ldResidual, Buffer hidden, int ldHidden, Buffer w,
                    int rows, int dim, float eps);

    default void rmsnorm(Buffer out, Buffer x, Buffer w, int rows, int dim, float eps) {
        addRmsnorm(out, dim, x, dim, null, dim, w, rows, dim, eps);
    }

    /** out = LayerNorm(x) ⊙ w + b for `rows` rows, each buffer's rows its stride apart. */
    void layernorm(Buffer out, int ldOut, Buffer x, int ldx, Buffer w, Buffer b, int rows, int dim, float eps);

    /** Each of `rows` packed rows of `cols` values replaced by its softmax. */
    void softmaxRows(Buffer x, int rows, int cols);

    // ---- Mamba -----------------------------------------------------------------------------------

    /**
     * u = act(s), s = bias + Σ_k taps[k]·x[t−K+1+k] per channel, for `batch` sequences of T tokens (x's
     * rows ldx apart, sequences T rows apart; out packed [batch·T, channels]). {@code reverse} convolves
     * each token-reversed sequence (rows keep their places). {@code window} [K−1, channels] (batch 1;
     * null: zeros) supplies the inputs before the start and is only read: {@link #rollWindow} (or the
     * scan that follows, see {@link Scan}) moves it on. {@code preActivation} (may be null) receives s.
     * taps [K, channels], tap-major.
     */
    void causalConv(Buffer out, Buffer preActivation, Buffer x, int ldx, Buffer taps, Buffer bias, Buffer window,
                    int batch, int tokens, int channels, int kernel, boolean reverse, boolean silu);

    /** window [K−1, channels] becomes the last K−1 of its old rows followed by the T new inputs x (rows ldx apart). */
    void rollWindow(Buffer window, Buffer x, int ldx, int tokens, int channels, int kernel);

    /**
     * Where the selective scan reads and writes (row strides in floats): u, dt (dt_proj's output before
     * its bias) [T, E]; B and C [T, N] (in the x_proj output, {@code ldbc} apart, C right after B); the
     * gate z; A = −exp(A_log) [E, N]; D [E]; the state [E, N] (null: zeros, not kept); {@code deltaOut}
     * (may be null) receives Δ = softplus(dt + dtBias). When {@code window} is given, the scan also rolls
     * that conv window over the conv's input x (as {@link #rollWindow}; one launch fewer per layer on a GPU).
     */
    record Scan(Buffer y, int ldy, Buffer u, int ldu, Buffer dt, int lddt, Buffer dtBias, Buffer bc, int ldbc,
                Buffer z, int ldz, Buffer a, Buffer d, Buffer state, Buffer deltaOut, Buffer window, Buffer x, int ldx, int kernel) {
    }

    /**
     * y = (C·h + D·u) ⊙ silu(z) with h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t·u_t, for `batch` sequences of T
     * tokens (DESIGN §2); {@code reverse} scans each sequence from its end; {@code accumulate} adds into y.
     */
    void selectiveScan(Scan scan, int batch, int tokens, int channels, int states, boolean reverse, boolean accumulate);

    // ---- images and attention --------------------------------------------------------------------

    /** Pixels [B, C, S, S] → patches [B·G·G, C·P·P] (flattened in the conv weight's (c, i, j) order). */
    void im2col(Buffer out, Buffer pixels, int batch, int channels, int size, int patch, int stride, int grid);

    /** Rows [B·(M+1), D]: the M patch embeddings (+ bias) of each image with the cls token at clsPosition, plus position embeddings. */
    void assembleTokens(Buffer x, Buffer patches, Buffer patchBias, Buffer cls, Buffer position, int batch, int patchCount,
                        int dim, int clsPosition);

    /**
     * Bidirectional multi-head attention for `batch` sequences of T tokens: from qkv [B·T, 3·H·dh] (q, k, v
     * blocks side by side, plus bias [3·H·dh] when given), context [B·T, H·dh] = concat_h softmax(q_h·k_hᵀ/√dh)·v_h;
     * {@code probs} (may be null) receives the probabilities [B, H, T, T].
     */
    void attention(Buffer context, Buffer qkv, Buffer bias, int batch, int tokens, int heads, int headSize, Buffer probs);

    // ---- Mamba-2 ---------------------------------------------------------------------------------

    /**
     * Where Mamba-2's SSD scan reads and writes (row strides in floats): x [T, H·P] (rows ldx apart); B and C
     * [T, G·N] (rows ldbc apart, e.g. columns of the conv output); dt [T, H] (in_proj's output before
     * dt_bias, rows lddt apart); dt_bias [H]; Δ's limits (dtMax may be +∞); A = −exp(A_log) [H]; D [H]; the
     * state [H, P, N] (null: zeros, not kept); {@code deltaOut} [T, H] packed (may be null) receives Δ.
     */
    record Ssd(Buffer y, int ldy, Buffer x, int ldx, Buffer b, Buffer c, int ldbc, Buffer dt, int lddt, Buffer dtBias,
               float dtMin, float dtMax, Buffer a, Buffer d, Buffer state, Buffer deltaOut) {
    }

    /**
     * Mamba-2's scan with a scalar decay per head, for T tokens of one sequence: with Δ_t[h] =
     * clamp(softplus(dt_t[h] + dt_bias[h]), dtMin, dtMax) and g = h / (H / G) the group of head h,
     * S_t[h, p, n] = exp(Δ_t[h]·A[h])·S_{t−1}[h, p, n] + Δ_t[h]·x_t[h, p]·B_t[g, n] and
     * y_t[h, p] = Σ_n C_t[g, n]·S_t[h, p, n] + D[h]·x_t[h, p], y [T, H·P] (rows ldy apart).
     */
    void ssdScan(Ssd scan, int tokens, int heads, int headDim, int groups, int states);

    /**
     * The gated RMSNorm: out = RMSNorm(y ⊙ silu(z)) ⊙ w over rows of {@code dim} values, each buffer's rows
     * its own stride apart; w [dim].
     */
    void gatedRmsnorm(Buffer out, int ldOut, Buffer y, int ldy, Buffer z, int ldz, Buffer w, int rows, int dim, float eps);

    // ---- explanations ----------------------------------------------------------------------------

    /**
     * One Mamba layer's hidden attention (DESIGN §3) summed over its E channels without building [E, T, T]:
     * {@code sum} and {@code positive} [T, T] (Σ α and Σ max(α, 0); both directions α_fwd + flip(α_bwd) when
     * {@code backward} is given), and the smallest and largest α of any channel.
     */
    record HiddenAttentionSums(float[] sum, float[] positive, float min, float max) {
    }

    /** The sums on this backend, or null where it has no faster way than the caller's own loops (the CPU). */
    default HiddenAttentionSums hiddenAttentionSums(org.mambalens.engine.trace.MixerTrace forward, org.mambalens.engine.trace.MixerTrace backward) {
        return null;
    }

    @Override
    void close();
}
