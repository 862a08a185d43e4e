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

    /**
     * {@link #replay} for a step whose work depends on its token position only through the position-taking operations
     * ({@link #rotary}, {@link #storeHeads}, {@link #causalAttention}, {@link #slidingWindowAttention}, {@link #ringAppend},
     * {@link #rgLru}), each given this {@code position}: a GPU keeps the position in device memory, so one capture
     * serves every step. Everything else the work does must be the same from step to step (buffer sizes included);
     * whatever depends on more than the position (a cache that grows) is done before, and a change of it is followed
     * by a fresh slot. By default, runs it.
     */
    default void replayAt(ReplaySlot slot, int position, Runnable work) {
        work.run();
    }

    /**
     * The most rows whose products this backend computes each as it computes a single row (the GPU's GEMV kernels), so that
     * sequences decoded together in a batch of up to this many get the bits each gets alone; 1 where a single row is its own
     * kernel (the CPU's matrix-vector product, whose sums run in another order than its GEMM's).
     */
    default int rowsAlikeAlone() {
        return 1;
    }

    // ---- dense algebra ---------------------------------------------------------------------------

    /**
     * out[r, :] = alpha · in[r, :] · Wᵀ (+ bias) for r < rows: W [outFeatures, inFeatures], in's rows ldIn
     * apart, out's ldOut apart. With BF16 precision the GPU rounds the operands to bfloat16.
     */
    void linear(Buffer out, int ldOut, Buffer in, int ldIn, int rows, Matrix w, Buffer bias, float alpha);

    default void linear(Buffer out, int ldOut, Buffer in, int ldIn, int rows, Matrix w, Buffer bias) {
        linear(out, ldOut, in, ldIn, rows, w, bias, 1f);
    }

    /** out[r, :] += in[r, :] · Wᵀ + bias for r < rows: a block's branch added into the residual stream (rows ldOut apart). */
    void linearAdd(Buffer out, int ldOut, Buffer in, int ldIn, int rows, Matrix w, Buffer bias);

    /**
     * out = (RMSNorm(x) ⊙ norm) · Wᵀ + bias for `rows` packed rows of x [rows, dim]: the norm in front of a block's
     * first projection. {@code normed} [rows, dim] is scratch; a GPU folds the norm into a decode step's GEMV and leaves it unwritten.
     */
    default void rmsnormLinear(Buffer out, int ldOut, Buffer x, Buffer norm, float eps, Buffer normed, int rows, int dim, Matrix w,
                               Buffer bias) {
        rmsnorm(normed, x, norm, rows, dim, eps);
        linear(out, ldOut, normed, dim, rows, w, bias);
    }

    /**
     * out += (RMSNorm(y ⊙ silu(z)) ⊙ norm) · Wᵀ + bias for `rows` rows of y and z [rows, dim] (ldy and ldz apart): Mamba-2's
     * gated norm and out_proj, added into the residual stream. By default {@link #gatedRmsnorm} into {@code normed} [rows, dim]
     * (scratch), then {@link #linearAdd}; a GPU folds the norm into a decode step's GEMV, with the same values.
     */
    default void gatedRmsnormLinearAdd(Buffer out, int ldOut, Buffer y, int ldy, Buffer z, int ldz, Buffer norm, float eps, Buffer normed,
                                       int rows, int dim, Matrix w, Buffer bias) {
        gatedRmsnorm(normed, dim, y, ldy, z, ldz, norm, rows, dim, eps);
        linearAdd(out, ldOut, normed, dim, rows, w, bias);
    }

    /**
     * out = (LayerNorm(x) ⊙ lnW + lnB) · Wᵀ (+ bias) for `rows` packed rows of x [rows, dim], as {@link #rmsnormLinear} for
     * RMSNorm: by default {@link #layernorm} into {@code normed} (scratch), then the product; a backend may normalise
     * inside the product instead (a GPU's decode step), with the same values.
     */
    default void layernormLinear(Buffer out, int ldOut, Buffer x, Buffer lnW, Buffer lnB, float eps, Buffer normed, int rows, int dim,
                                 Matrix w, Buffer bias) {
        layernorm(normed, dim, x, dim, lnW, lnB, rows, dim, eps);
        linear(out, ldOut, normed, dim, rows, w, bias);
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

    /**
     * Per row of x [rows, cols]: the indices of its largest and second-largest values (the lower index first among equal
     * values), [rows, 2], or −1, −1 for a row that holds a NaN or an infinity: a greedy decoder's choice (and its choice
     * when the first is banned) without moving the rows off the device.
     */
    default int[] topTwo(Buffer x, int rows, int cols) {
        return TopTwo.of(read(x, Math.multiplyExact(rows, cols)), rows, cols);
    }

    // ---- Mamba -----------------------------------------------------------------------------------

    /**
     * u = act(s), s = bias + Σ_k taps[k]·x[t−K+1+k] per channel, for `batch` sequences of T tokens (x's
     * rows ldx apart, sequences T rows apart; out packed [batch·T, channels]). {@code reverse} convolves
     * each token-reversed sequence (rows keep their places). {@code window} [batch, K−1, channels] (null:
     * zeros) supplies each sequence's inputs before its start and is only read: {@link #rollWindow} (or the
     * scan that follows, see {@link Scan}) moves it on. {@code preActivation} (may be null) receives s.
     * taps [K, channels], tap-major.
     */
    void causalConv(Buffer out, Buffer preActivation, Buffer x, int ldx, Buffer taps, Buffer bias, Buffer window,
                    int batch, int tokens, int channels, int kernel, boolean reverse, boolean silu);

    /** window [K−1, channels] (one sequence's) becomes the last K−1 of its old rows followed by the T new inputs x (rows ldx apart). */
    void rollWindow(Buffer window, Buffer x, int ldx, int tokens, int channels, int kernel);

    /**
     * One sequence's {@link #causalConv} (forward) from its {@code window}, then {@link #rollWindow} over the same inputs, as a
     * decoding model keeps its conv state. A GPU does one token's in one launch (each channel's thread reads its window,
     * then moves it on).
     */
    default void causalConvAndRoll(Buffer out, Buffer preActivation, Buffer x, int ldx, Buffer taps, Buffer bias, Buffer window,
                                   int tokens, int channels, int kernel, boolean silu) {
        causalConv(out, preActivation, x, ldx, taps, bias, window, 1, tokens, channels, kernel, false, silu);
        if (kernel > 1) rollWindow(window, x, ldx, tokens, channels, kernel);
    }

    /**
     * Where the selective scan reads and writes (row strides in floats): u, dt (dt_proj's output before
     * its bias) [T, E]; B and C [T, N] (in the x_proj output, {@code ldbc} apart, C right after B); the
     * gate z; A = −exp(A_log) as {@link #ssmWeights} lays it out; D [E]; the state [batch, E, N] (null: zeros, not kept); {@code deltaOut}
     * (may be null) receives Δ = softplus(dt + dtBias). When {@code window} [batch, K−1, E] is given, the scan also
     * rolls each sequence's conv window over the conv's input x (as {@link #rollWindow}; one launch fewer per layer on a GPU).
     */
    record Scan(Buffer y, int ldy, Buffer u, int ldu, Buffer dt, int lddt, Buffer dtBias, Buffer bc, int ldbc,
                Buffer z, int ldz, Buffer a, Buffer d, Buffer state, Buffer deltaOut, Buffer window, Buffer x, int ldx, int kernel) {
    }

    /**
     * y = (C·h + D·u) ⊙ silu(z) with h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t·u_t, for `batch` sequences of T
     * tokens (DESIGN §2); {@code reverse} scans each sequence from its end; {@code accumulate} adds into y.
     */
    void selectiveScan(Scan scan, int batch, int tokens, int channels, int states, boolean reverse, boolean accumulate);

    /**
     * A Mamba mixer's SSM branch (DESIGN §2): conv taps [K, E] tap-major and bias [E] (may be null), x_proj [R + 2N, E],
     * dt_proj [E, R] and its bias [E], A = −exp(A_log) (in the layout of {@link #ssmWeights}), D [E].
     */
    record SsmWeights(Buffer convTaps, Buffer convBias, Matrix xProj, Matrix dtProj, Buffer dtBias, Buffer a, Buffer d,
                      int channels, int states, int rank, int kernel) {
    }

    /**
     * An SSM branch's weights in this backend's memory, A = −exp(A_log) given as [E, N] and kept in the layout this
     * backend's scans read: [E, N] by default.
     */
    default SsmWeights ssmWeights(float[] taps, float[] convBias, Matrix xProj, Matrix dtProj, float[] dtBias, float[] a, float[] d,
                                  int channels, int states, int rank, int kernel) {
        return new SsmWeights(constant(taps), convBias == null ? null : constant(convBias), xProj, dtProj, constant(dtBias), constant(a),
                constant(d), channels, states, rank, kernel);
    }

    /**
     * One token of each of `batch` sequences through an SSM branch in one fused pass, where this backend has one: from
     * in_proj's output xz [batch, 2E] (x' then z, rows ldxz apart) into y [batch, E], the values of {@link #causalConv}
     * (window [batch, K−1, E]) → x_proj → dt_proj → {@link #selectiveScan} (state [batch, E, N]), window and state moved
     * on. Returns false, having done nothing, where it has none: the caller then runs those operations. {@code upcoming}:
     * weights the step's next operations read (out_proj, the next layer's in_proj), which a GPU asks its cache for while
     * the step's latency-bound kernels run; a hint, with no effect on the values.
     */
    default boolean ssmStep(SsmWeights w, Buffer y, Buffer xz, int ldxz, Buffer window, Buffer state, int batch, Matrix... upcoming) {
        return false;
    }

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

    // ---- RWKV ------------------------------------------------------------------------------------

    /**
     * Token shift: out[t, j] = x[t, j]·mix[j] + x[t−1, j]·(1 − mix[j]) for `rows` tokens of `dim` values
     * (x's rows ldx apart, out packed [rows, dim]), with x[−1] = shift [dim], which is only read (a caller
     * that continues a sequence copies x's last row there afterwards). out must not overlap x.
     */
    void tokenShift(Buffer out, Buffer x, int ldx, Buffer mix, Buffer shift, int rows, int dim);

    /**
     * RWKV-4's WKV recurrence, gated: out[t, a] = gate[t, a]·wkv_t[a] for T tokens of A channels, with
     * wkv_t = (Σ_{i<t} e^{(t−1−i)·w + k_i}·v_i + e^{u + k_t}·v_t) / (Σ_{i<t} e^{(t−1−i)·w + k_i} + e^{u + k_t}),
     * w = decay [A] (−exp(time_decay)), u = bonus [A] (time_first). out, gate, k, v packed [T, A]. state
     * [3A] holds each channel's numerator, denominator and maximum exponent (fresh: 0, 0, −1e38); it is
     * continued from and left after the last token.
     */
    void wkv(Buffer out, Buffer gate, Buffer k, Buffer v, Buffer decay, Buffer bonus, Buffer state, int tokens, int channels);

    // ---- Attention with rotary positions (Griffin, GPT-NeoX) and Griffin's RG-LRU ------------------

    /**
     * Rotary position embedding in place, in the rotate_half convention (GPT-NeoX, Llama, Gemma): for each of
     * `rows` rows (ldx apart) at positions firstPosition + r and each of `heads` heads (head h from column
     * h·headStride of its row), the pairs (j, j + R/2) of the head's first R = rotaryDims values, j < R/2, are
     * turned by the angle position·f_j (the product in F32, as transformers computes it), f = inverseFrequencies [R/2].
     */
    void rotary(Buffer x, int ldx, int rows, int heads, int headStride, Buffer inverseFrequencies, int rotaryDims, int firstPosition);

    /**
     * A ring of keys and values [capacity, width] each (width = KV·dh): position p lives at row p mod
     * capacity, so it holds the last {@code capacity} positions (a sliding window's cache; a capacity of
     * the longest sequence for unlimited attention).
     */
    record KeyValueRing(Buffer keys, Buffer values, int capacity) {
        /** Refuses {@code ring} (null: none) when it cannot hold the earlier positions that tokens from {@code position} see through {@code window}. */
        public static void check(KeyValueRing ring, int position, int window) {
            int needed = Math.min(position, window - 1);
            if (needed > 0 && (ring == null || ring.capacity() < needed)) {
                throw new IllegalArgumentException("a key/value ring of " + (ring == null ? 0 : ring.capacity()) + " rows cannot hold the "
                        + needed + " earlier positions a window of " + window + " sees");
            }
        }
    }

    /**
     * Causal softmax attention over a ring of cached keys and values (a sliding window's; with a window of
     * {@link Integer#MAX_VALUE} and a ring as long as the sequence, plain causal attention): T new tokens at
     * positions [P, P + T), H query heads over KV key/value heads (head h reads group h / (H/KV)) of headSize dh;
     * query t sees the positions max(0, P + t − window + 1) … P + t (itself and the window − 1 before it), and
     * context_t,h = Σ_s softmax_s(q·k_s · scale)·v_s, [T, H·dh] (rows ldContext apart). q [T, H·dh] (rows ldq
     * apart); k and v [T, KV·dh] (rows ldkv apart): the new tokens' own keys and values; earlier positions
     * come from {@code ring} (only read; may be null when P = 0; {@link #ringAppend} adds the new ones
     * afterwards), so a ring of window − 1 rows serves chunks of any length. {@code probs} (may be null)
     * receives the weights [H, T, P + T], 0 where a query does not see.
     */
    void slidingWindowAttention(Buffer context, int ldContext, Buffer q, int ldq, Buffer k, Buffer v, int ldkv, KeyValueRing ring,
                                int position, int tokens, int heads, int kvHeads, int headSize, int window, float scale, Buffer probs);

    /** Writes the keys k and values v [T, width] (rows ldkv apart) of positions [P, P + T) into their rows of the ring (the last capacity of them). */
    void ringAppend(KeyValueRing ring, Buffer k, Buffer v, int ldkv, int width, int position, int tokens);

    /** The RG-LRU's gate weights [H, W/H, W/H] (in, out) and biases [W], and softplus(Λ) [W] (see {@link #rgLru}). */
    record RgLruWeights(Buffer inputGate, Buffer inputGateBias, Buffer recurrentGate, Buffer recurrentGateBias,
                        Buffer softplusLambda) {
    }

    /**
     * Griffin's RG-LRU over T tokens of W channels in H gate blocks of W/H (block-diagonal gates), from x [T, W]
     * (rows ldx apart) at positions [P, P + T): r_t = σ(x_t·W_a + b_a), i_t = σ(x_t·W_x + b_x), log a_t =
     * −8·r_t·softplus(Λ), h_t = a_t ⊙ h_{t−1} + √(1 − a_t²) ⊙ i_t ⊙ x_t (position 0 resets: h_0 = i_0 ⊙ x_0).
     * y [T, W] receives h_t; a and b [T, W] (may be null) receive a_t and the input factor i_t·√(1 − a_t²)
     * (i_t at position 0); state h [W] is continued and updated (null: zeros, not kept). y must not overlap x.
     */
    void rgLru(Buffer y, Buffer x, int ldx, RgLruWeights weights, Buffer state, Buffer a, Buffer b, int tokens, int channels,
               int blocks, int position);

    /** x[i] = cap · tanh(x[i] / cap) for i < n: a logit soft cap. */
    void softCap(Buffer x, float cap, long n);

    /**
     * Appends `rows` positions of `heads` head vectors to a head-major cache [heads, capacity, headSize]:
     * cache[g, firstPosition + r, :] = x[r, g·headStride … g·headStride + headSize) for r < rows, x's rows ldx apart.
     */
    void storeHeads(Buffer cache, int capacity, int firstPosition, Buffer x, int ldx, int headStride, int rows, int heads, int headSize);

    /**
     * Causal softmax attention of L = `tokens` new queries over a head-major key/value cache [kvHeads, capacity, dh]
     * ({@link #storeHeads}) that holds positions [0, firstPosition + L): query t sits at position p = firstPosition + t and
     * sees the positions s in [lo, p], lo = max(0, p − window + 1) when window > 0 (a sliding window), else 0. For head h
     * (of `heads`; it reads kv head g = h / (heads / kvHeads), so kvHeads = heads is multi-head, 1 multi-query),
     * a[h, t, s] = softmax_s(scale · q_h[t] · keys[g, s]) and context[t, h·dh + j] = Σ_s a[h, t, s] · values[g, s, j].
     * q_h[t] is q[t·ldq + h·qHeadStride …+ dh) (the q block of a fused projection, say); context's rows ldContext apart.
     * {@code probs} (may be null) receives a [heads, L, firstPosition + L], 0 outside [lo, p].
     */
    void causalAttention(Buffer context, int ldContext, Buffer q, int ldq, int qHeadStride, Buffer keys, Buffer values, int capacity,
                         int tokens, int heads, int kvHeads, int headSize, float scale, int firstPosition, int window, Buffer probs);

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

    /**
     * Closes this backend on its own thread, then runs {@code afterwards} (closing what its buffers were made
     * from, such as a model's mapped checkpoint): how every model closes.
     */
    default void closeWith(Runnable afterwards) {
        call(() -> {
            close();
            afterwards.run();
            return null;
        });
    }
}
