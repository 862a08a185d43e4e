// MambaLens CUDA kernels. Shipped as source, compiled at first use by NVRTC for the GPU present (Gpu,
// KernelCompiler) and launched from Java through the driver API (engine/cuda). NVRTC has no system
// headers: this file includes none, and what they would give is written out here.
//
// Layout conventions, shared with the Java side: every matrix is row-major F32; "rows" are tokens;
// a batch of B sequences of T tokens is B·T rows with sequence b at rows [b·T, (b+1)·T); a leading
// dimension ld is the distance in floats between consecutive rows (so a kernel can read a column
// block of a wider matrix, as the scan reads z out of in_proj's [T, 2E] output). Pointers that may be
// absent are null (0).

// math.h's INFINITY, as its float bits.
#define INFINITY_F __int_as_float(0x7f800000)

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The warp sums of G sets of lane partials at once (G a power of 2 up to 32), each by warp_sum's own tree (offsets 16,
// 8, 4, 2, 1; at each a lane adds its partner's value to its own), so every set gets warp_sum's bits. At the first
// log2(G) offsets a lane keeps half of its sets and hands the other half to its partner, which keeps the complementary
// half (one shuffle a kept set instead of one a set: 31 shuffles for 32 sets rather than 160); at the remaining
// offsets the single set left is summed as warp_sum does. Lane l ends with the sum of set (l / (32 / G)) % G: its top
// bits say which half it kept. Started at offset S < 16 (H = S), it sums within each group of 2S lanes instead, lane l
// ending with set l % 2S: the selective scan's per-channel lane groups.
// (The halving levels are a template recursion: as a loop over h /= 2 the compiler left them rolled, p in local memory
// and every access a branch, which made gemm_rows' epilogue cost more instructions than its products.)
template <int H, int S>
__device__ __forceinline__ void warp_fold_sets(float* p, int lane) {
    if constexpr (H >= 1) {
        bool upper = lane & S;
#pragma unroll
        for (int j = 0; j < H; j++) {
            float send = upper ? p[j] : p[j + H], keep = upper ? p[j + H] : p[j];
            p[j] = keep + __shfl_xor_sync(0xffffffffu, send, S);
        }
        warp_fold_sets<H / 2, S / 2>(p, lane);
    }
}

// Sum (or max) over the whole block; blockDim.x is a multiple of 32. Every thread gets the result.
__device__ float block_reduce(float v, bool max) {
    __shared__ float partial[32];
    v = max ? warp_max(v) : warp_sum(v);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();                       // partial[] may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < warps ? partial[lane] : (max ? -INFINITY_F : 0.f);
        w = max ? warp_max(w) : warp_sum(w);
        if (lane == 0) partial[0] = w;
    }
    __syncthreads();
    return partial[0];
}

__device__ __forceinline__ float silu(float x) { return x / (1.f + __expf(-x)); }

// PyTorch's softplus (beta 1, threshold 20), as the CPU kernels compute it.
__device__ __forceinline__ float softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }

// out[r, :] = table[ids[r], :]. Grid (rows), block any.
KERNEL void gather_rows(float* out, const float* table, const int* ids, int D) {
    AFTER_INPUTS();
    const float* src = table + (i64) ids[blockIdx.x] * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) out[(i64) blockIdx.x * D + i] = src[i];
}

// 1 / sqrt(mean(x²) + eps) over the D values of x, reduced over the block; every thread gets it. add_rmsnorm
// and the GEMV's norm prologue both use it, with blocks of 256 threads, so they give the same bits.
__device__ float rms_inverse(const float* x, int D, float eps) {
    float squares = 0.f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) { float v = x[i]; squares += v * v; }
    return rsqrtf(block_reduce(squares, false) / D + eps);
}

// For each of gridDim.x rows r: residual_r += hidden_r (when hidden is given), then
// out_r = residual_r / sqrt(mean(residual_r²) + eps) ⊙ weight. Rows are `stride` floats apart in
// each buffer, so the cls rows of a batch can be normalised alone. Block: 256 threads (see rms_inverse).
KERNEL void add_rmsnorm(float* out, i64 outStride, float* residual, i64 residualStride, const float* hidden,
                        i64 hiddenStride, const float* weight, int D, float eps) {
    AFTER_INPUTS();
    float* x = residual + blockIdx.x * residualStride;
    float* o = out + blockIdx.x * outStride;
    if (hidden) {                          // each thread adds the values it reads back in rms_inverse
        const float* h = hidden + blockIdx.x * hiddenStride;
        for (int i = threadIdx.x; i < D; i += blockDim.x) x[i] += h[i];
    }
    float inv = rms_inverse(x, D, eps);
    for (int i = threadIdx.x; i < D; i += blockDim.x) o[i] = x[i] * inv * weight[i];
}

// Mamba-2's gated norm, out = g / sqrt(mean(g²) + eps) ⊙ w with g = y ⊙ silu(z) (PyTorch's silu, with expf). Its
// kernel (gated_rmsnorm) and the GEMV prologue that folds it into out_proj for a decode step (stage_rows) share these
// helpers, roundings written out, and blocks of 256 threads, so they give the same bits.
__device__ __forceinline__ float gated_value(float y, float z) { return __fmul_rn(y, __fdiv_rn(z, __fadd_rn(1.f, expf(-z)))); }

__device__ __forceinline__ float gated_normed(float y, float z, float inverse, float w) {
    return __fmul_rn(__fmul_rn(gated_value(y, z), inverse), w);
}

// 1 / sqrt(mean(g²) + eps) over the D values g = gated_value(y, z), reduced over the block; every thread gets it.
__device__ float gated_rms_inverse(const float* y, const float* z, int D, float eps) {
    float squares = 0.f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) { float v = gated_value(y[i], z[i]); squares = __fmaf_rn(v, v, squares); }
    return rsqrtf(block_reduce(squares, false) / D + eps);
}

// The gated norm of each of gridDim.x rows; each buffer's rows its own stride apart. Block 256.
KERNEL void gated_rmsnorm(float* out, i64 ldOut, const float* y, i64 ldy, const float* z, i64 ldz, const float* w, int dim, float eps) {
    AFTER_INPUTS();
    const float* yr = y + blockIdx.x * ldy;
    const float* zr = z + blockIdx.x * ldz;
    float* o = out + blockIdx.x * ldOut;
    float inverse = gated_rms_inverse(yr, zr, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = gated_normed(yr[i], zr[i], inverse, w[i]);
}

// The mean of the D values of x (into mean) and 1 / sqrt(var + eps), reduced over the block; every thread gets them.
// layernorm and the GEMV's LayerNorm prologue both use it, with blocks of 256 threads, so they give the same bits.
__device__ float layernorm_inverse(const float* x, int D, float eps, float& mean) {
    float sum = 0.f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) sum += x[i];
    mean = block_reduce(sum, false) / D;
    float squares = 0.f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) { float c = x[i] - mean; squares += c * c; }
    return rsqrtf(block_reduce(squares, false) / D + eps);
}

// out_r = (x_r − mean) / sqrt(var + eps) ⊙ w + b, rows `stride` floats apart. Grid (rows), block 256 (see layernorm_inverse).
KERNEL void layernorm(float* out, i64 outStride, const float* x, i64 xStride, const float* w, const float* b,
                      int D, float eps) {
    AFTER_INPUTS();
    const float* xr = x + blockIdx.x * xStride;
    float* o = out + blockIdx.x * outStride;
    float mean;
    float inv = layernorm_inverse(xr, D, eps, mean);
    for (int i = threadIdx.x; i < D; i += blockDim.x) o[i] = (xr[i] - mean) * inv * w[i] + b[i];
}

// x[r, c] += y[r, c] + bias[c] (bias may be null) over rows·cols elements.
KERNEL void add_bias_residual(float* x, const float* y, const float* bias, i64 rows, int cols) {
    AFTER_INPUTS();
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * cols) return;
    x[i] += y[i] + (bias ? bias[i % cols] : 0.f);
}

// x[r, c] = act(x[r, c] + bias[c]), act as Backend.Activation's order: 0 identity, 1 exact (erf) GELU,
// 2 tanh-approximated GELU, 3 SiLU, 4 sigmoid, 5 relu², 6 softplus (linear above 20, as PyTorch).
KERNEL void bias_activation(float* x, const float* bias, i64 rows, int cols, int act) {
    AFTER_INPUTS();
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * cols) return;
    float v = x[i] + (bias ? bias[i % cols] : 0.f);
    switch (act) {
        case 1: v = 0.5f * v * (1.f + erff(v * 0.70710678118654752f)); break;
        case 2: v = (float) (0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * (double) v * v * v)))); break;
        case 3: v = silu(v); break;
        case 4: v = 1.f / (1.f + expf(-v)); break;
        case 5: v = v > 0.f ? v * v : 0.f; break;
        case 6: v = v > 20.f ? v : log1pf(expf(v)); break;
        default: break;
    }
    x[i] = v;
}

// x[i] *= y[i] (y given) or x[i] *= factor, for i < n.
KERNEL void multiply(float* x, const float* y, float factor, i64 n) {
    AFTER_INPUTS();
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= y ? y[i] : factor;
}

// dst[i] = src[i] (src given) or value, for i < n: copies and fills as launches, so graphs can hold them.
KERNEL void copy_fill(float* dst, const float* src, float value, i64 n) {
    AFTER_INPUTS();
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = src ? src[i] : value;
}

// x rounded to the nearest bfloat16 (ties to even), as its upper 16 bits. Written out rather than with
// cuda_bf16.h's __float2bfloat16_rn so that it is, bit for bit, the host's Scalar.roundToBfloat16.
__device__ __forceinline__ unsigned short to_bf16(float x) {
    unsigned int bits = __float_as_uint(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;   // NaN stays a (quiet) NaN
    return (unsigned short) ((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float from_bf16(unsigned int half) {
    return __uint_as_float(half << 16);
}

// The BF16 operand of a GEMM (cublasGemmEx with BF16 inputs, F32 accumulation): in [rows, cols] (rows ld_in
// floats apart) rounded to bfloat16 into packed out [rows, cols].
KERNEL void to_bf16_rows(unsigned short* out, const float* in, i64 ld_in, i64 rows, int cols) {
    AFTER_INPUTS();
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * cols) return;
    out[i] = to_bf16(in[i / cols * ld_in + i % cols]);
}

// The decode state of the conv after T more inputs x (row stride ldx), for channel e: the window [(K−1), E]
// (oldest first) becomes the last K−1 inputs, reaching back into the old window when T < K−1. K ≤ 9.
__device__ void roll_window(float* window, const float* x, int ldx, int K, int T, int E, int e) {
    float rolled[8];                                    // unrolled to its size, so that it stays in registers
#pragma unroll
    for (int r = 0; r < 8; r++) {
        int src = T - (K - 1) + r;                      // input index of new window row r
        if (r < K - 1) rolled[r] = src >= 0 ? x[(i64) src * ldx + e] : window[(i64) (K - 1 + src) * E + e];
    }
#pragma unroll
    for (int r = 0; r < 8; r++) {
        if (r < K - 1) window[(i64) r * E + e] = rolled[r];
    }
}

// Tokens a thread of causal_conv computes: their K − 1 + CONV_TOKENS inputs are loaded once, not K times each.
#define CONV_TOKENS 8

// Depthwise causal conv and SiLU over B sequences of T tokens: for token t, channel e,
//   s = bias[e] + Σ_j taps[j, e] · x[t − (K−1) + j, e]          (reverse = 0)
//   s = bias[e] + Σ_j taps[j, e] · x[t + (K−1) − j, e]          (reverse = 1: the conv of the
//                                           token-reversed sequence, written at the original index)
// Inputs before the sequence start read its `window` [B, K−1, E] (oldest first) when given, else 0.
// u = silu(s), or s when act = 0; sOut (may be null) receives s for the trace. With roll = 1 (one token of one sequence,
// forward) each channel's thread then moves its window on (roll_window), having read it. A thread takes CONV_TOKENS
// consecutive tokens of a channel, so each input is loaded once for all the outputs that read it; the sums are the same
// operations in the same order as one output at a time. K ≤ 9. Grid (⌈E/block⌉, ⌈T/CONV_TOKENS⌉, B).
KERNEL void causal_conv(float* u, float* sOut, const float* __restrict__ x, int ldx, const float* __restrict__ taps,
                        const float* __restrict__ bias, float* window, int T, int E, int K, int reverse, int act, int roll) {
    AFTER_INPUTS();
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    const int t0 = blockIdx.y * CONV_TOKENS;
    const i64 sequence = (i64) blockIdx.z * T;
    // Forward, in[i] is input t0 − (K−1) + i and token t0 + q sums tap[j]·in[q + j] for j = 0 … K−1. Reverse, in[i] is
    // input t0 + i, tap[i] = taps[K−1−i], and token t0 + q sums tap[i]·in[q + i] for i = K−1 … 0: taps j = 0 … K−1 in
    // order both ways, and every index a constant once the loops unroll (registers, not local memory).
    float tap[9], in[CONV_TOKENS + 8];
#pragma unroll
    for (int j = 0; j < 9; j++) tap[j] = j < K ? taps[(i64) (reverse ? K - 1 - j : j) * E + e] : 0.f;
#pragma unroll
    for (int i = 0; i < CONV_TOKENS + 8; i++) {
        int src = reverse ? t0 + i : t0 - (K - 1) + i;
        float v = 0.f;
        if (i < CONV_TOKENS + K - 1) {
            if (src >= 0 && src < T) v = x[(sequence + src) * ldx + e];
            else if (src < 0 && window) v = window[((i64) blockIdx.z * (K - 1) + K - 1 + src) * E + e];
        }
        in[i] = v;
    }
    const float b = bias ? bias[e] : 0.f;
#pragma unroll
    for (int q = 0; q < CONV_TOKENS; q++) {
        if (t0 + q >= T) break;
        float acc = b;
        if (!reverse) {
#pragma unroll
            for (int j = 0; j < 9; j++) if (j < K) acc += tap[j] * in[q + j];
        } else {
#pragma unroll
            for (int j = 8; j >= 0; j--) if (j < K) acc += tap[j] * in[q + j];
        }
        i64 o = (sequence + t0 + q) * E + e;
        if (sOut) sOut[o] = acc;
        u[o] = act ? silu(acc) : acc;
    }
    if (roll) roll_window(window, x, ldx, K, 1, E, e);
}

// Warps in one block of the selective scan; each holds SCAN_LANE_CHANNELS channels, a channel's states on 4 lanes.
#define SCAN_WARPS 4
#define SCAN_LANE_CHANNELS 8

// 2^x with denormal results flushed to zero: MUFU.EX2 alone (ex2.approx.f32 adds a rescaling around it for
// denormals). The scan's decays exp(Δ·A) ≤ 1 lose nothing that matters: a decay below 2^−126 is 0 either way to F32's
// sums, and __expf(x) = 2^(x·log2 e) rounds the same for every normal result.
__device__ __forceinline__ float exp2_ftz(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

// The selective scan of DESIGN §2 for B sequences of T tokens, E channels, N ≤ 4·S states:
//   Δ = softplus(dt + dtBias);  h = exp(Δ·A)·h + Δ·B_t·u;  y = C_t·h + D·u;  y ·= silu(z)
// dt is dt_proj's output without its bias; bc points at B (C follows N columns later) with row
// stride ldbc; z (may be null) is the gate. With reverse = 1 the scan walks the sequence from its
// end (the backward branch of Vision Mamba), writing y at the original index. accumulate = 1 adds
// into y. state [B, E, N] (may be null: start from 0 and keep nothing) is read and written back.
// deltaOut [B·T, E] (may be null) receives Δ for the trace. When window is given (decode state of
// the conv that ran before this kernel), each sequence's window [B, K−1, E] is rolled forward over its
// conv inputs x (row stride ldx): the conv has finished reading it, and this saves a launch per layer.
//
// Layout. A warp holds 8 channels, a channel's states on 4 lanes: lane l of channel c keeps states l·S … l·S + S − 1
// in registers, so a step of a token is S independent exp-and-FMA chains a lane, and the per-token work that is not
// per state (Δ's softplus, the loads of dt, u and z, the gate and the store of y) is shared out rather than repeated:
// in a round of R tokens lane l of channel c is also the lane of tokens l, l + 4, … of its channel. It computes their Δ
// and Δ·u and puts them in a slice of shared memory private to its warp, beside the round's B_t and C_t (which the
// warp's lanes load together, coalesced). For each token a lane then updates its states and keeps the sum of their
// C_t·h_t (in state order); every 4 tokens, warp_fold_sets sums the 4 lanes' values for those 4 tokens at once, lane l
// ending with token 4f + l's, its own: it adds the D skip, applies the gate and writes y. Nothing is shared beyond the
// warp, so warps never wait for each other (one __syncwarp a round; the shared slices have two buffers). The dt, u and
// z of the next D rounds, and B and C of the next, are in flight while one is computed. The sum over states (a lane's states in order, then the
// fold's tree) is the same operations whatever B, T and the token's place in a round: a sequence gets the same bits
// alone, in a batch, or as a longer prompt's prefix (unless it is cut into chunks: below).
// Tokens past T (the last round's) and states past N read clamped rows and columns, with Δ = 0 and B = 0, so that the
// states stay as they are and contribute nothing.
// Grid (⌈E / (SCAN_LANE_CHANNELS·SCAN_WARPS)⌉, B), block 32·SCAN_WARPS. With chunk > 0 the grid's y runs over the chunks
// of one sequence instead (pass 3 of the chunked scan below): chunk c covers tokens [c·chunk, min((c + 1)·chunk, T))
// and starts from state[c] (window is then null). With ENDS (pass 1), only the states: y receives ΣΔ [C, E] and state
// the end states, started from 0.
template <int S, int R, int D, bool ENDS>
__device__ void scan_lanes(float* __restrict__ y, int ldy, const float* __restrict__ u, int ldu, const float* __restrict__ dt,
                           int lddt, const float* __restrict__ dtBias, const float* __restrict__ bc, int ldbc,
                           const float* __restrict__ z, int ldz, const float* __restrict__ A, const float* __restrict__ Dskip,
                           float* __restrict__ state, float* __restrict__ deltaOut, float* __restrict__ window,
                           const float* __restrict__ x, int ldx, int K, int T, int E, int N, int reverse, int accumulate,
                           int chunk) {
    constexpr int W = SCAN_LANE_CHANNELS, NP = 4 * S;               // NP: the states padded to the lanes' share
    constexpr int MINE = R / 4;                                     // tokens a lane loads, and ends with, a round
    constexpr int BC = R * 2 * NP / 32;                             // B and C values a lane loads a round
    static_assert(R % 4 == 0 && (R * 2 * NP) % 32 == 0 && S % 4 == 0, "scan_lanes: rounds of whole folds, states in float4s");
    __shared__ float2 roundDelta[SCAN_WARPS][2][R][W];              // per warp, round parity, token, channel: (Δ, Δ·u)
    __shared__ __align__(16) float roundBC[SCAN_WARPS][2][R][2 * NP];   // per warp, round parity, token: B_t, then C_t
    AFTER_INPUTS();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, c = lane >> 2, l = lane & 3;
    const int e = (blockIdx.x * SCAN_WARPS + warp) * W + c, ec = min(e, E - 1);     // ec: a channel to read
    int first = blockIdx.y * T;                                                     // this sequence's (or chunk's) first row
    if (chunk > 0) {
        first = blockIdx.y * chunk;
        T = min(chunk, T - first);
    }
    const float bias = dtBias[ec], skip = ENDS ? 0.f : Dskip[ec];
    float a[S], h[S];                                               // a: A·log2(e), so that a decay is one exp2
#pragma unroll
    for (int j = 0; j < S; j++) {
        int n = l * S + j;
        bool real = e < E && n < N;
        a[j] = real ? A[(i64) e * N + n] * 1.44269504088896341f : 0.f;
        h[j] = real && state && !ENDS ? state[((i64) blockIdx.y * E + e) * N + n] : 0.f;
    }
    const int rounds = (T + R - 1) / R;
    auto row = [&](int k) { return first + (reverse ? T - 1 - k : k); };            // k < T (past T: clamped to T − 1)
    float dtAhead[D][MINE], uAhead[D][MINE], zAhead[D][MINE], bcAhead[BC];
    auto load = [&](int round, int slot) {                          // this lane's tokens' dt, u, z
#pragma unroll
        for (int q = 0; q < MINE; q++) {
            int r = row(min(round * R + l + 4 * q, T - 1));
            dtAhead[slot][q] = dt[(i64) r * lddt + ec];
            uAhead[slot][q] = u[(i64) r * ldu + ec];
            zAhead[slot][q] = !ENDS && z ? z[(i64) r * ldz + ec] : 0.f;
        }
    };
    auto loadBC = [&](int round) {                                  // the round's B_t and C_t, a row of 2·NP a token
#pragma unroll
        for (int i = 0; i < BC; i++) {
            int at = lane + 32 * i, t = at / (2 * NP), col = at % (2 * NP), n = col % NP;
            const float* r = bc + (i64) row(min(round * R + t, T - 1)) * ldbc;
            float v = r[(col < NP ? 0 : N) + min(n, N - 1)];
            bcAhead[i] = col >= NP || n < N ? v : 0.f;              // B past N is 0: those states stay 0
        }
    };
    float sumDelta = 0.f;                                           // ENDS: this lane's share of the chunk's ΣΔ
    auto step = [&](int round, int slot) {                          // one round: stage, run the states, write y
        int b2 = round & 1;
        float uMine[MINE], zMine[MINE];
#pragma unroll
        for (int q = 0; q < MINE; q++) {
            int t = l + 4 * q;
            float delta = round * R + t < T ? softplus(dtAhead[slot][q] + bias) : 0.f;    // 0 past T: the states stay
            if (ENDS) sumDelta += delta;
            uMine[q] = uAhead[slot][q];
            zMine[q] = zAhead[slot][q];
            if (deltaOut && e < E && round * R + t < T) deltaOut[(i64) row(round * R + t) * E + e] = delta;
            roundDelta[warp][b2][t][c] = make_float2(delta, delta * uMine[q]);
        }
#pragma unroll
        for (int i = 0; i < BC; i++) {
            int at = lane + 32 * i;
            roundBC[warp][b2][at / (2 * NP)][at % (2 * NP)] = bcAhead[i];
        }
        __syncwarp();
        if (round + 1 < rounds) loadBC(round + 1);
        if (round + D < rounds) load(round + D, slot);
        float yMine[MINE];
#pragma unroll
        for (int f = 0; f < MINE; f++) {                            // folds of 4 tokens
            float p[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int t = 4 * f + i;
                float2 du = roundDelta[warp][b2][t][c];             // (Δ, Δ·u) of token t
                const float4* bRow = reinterpret_cast<const float4*>(&roundBC[warp][b2][t][l * S]);
                const float4* cRow = reinterpret_cast<const float4*>(&roundBC[warp][b2][t][NP + l * S]);
                float sum = 0.f;
#pragma unroll
                for (int j4 = 0; j4 < S / 4; j4++) {
                    float4 b = bRow[j4];
                    float bs[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
                    for (int k = 0; k < 4; k++) h[4 * j4 + k] = exp2_ftz(du.x * a[4 * j4 + k]) * h[4 * j4 + k] + du.y * bs[k];
                    if constexpr (!ENDS) {
                        float4 cv = cRow[j4];
                        float cs[4] = {cv.x, cv.y, cv.z, cv.w};
#pragma unroll
                        for (int k = 0; k < 4; k++) sum = j4 == 0 && k == 0 ? cs[k] * h[4 * j4 + k] : sum + cs[k] * h[4 * j4 + k];
                    }
                }
                p[i] = sum;
            }
            if constexpr (!ENDS) {
                warp_fold_sets<2, 2>(p, lane);                      // lane l: token 4f + l's Σ C_t·h_t
                yMine[f] = p[0];
            }
        }
        if constexpr (!ENDS) {
#pragma unroll
            for (int q = 0; q < MINE; q++) {
                int k = round * R + l + 4 * q;
                if (e >= E || k >= T) continue;
                float v = yMine[q] + skip * uMine[q];
                if (z) v *= silu(zMine[q]);
                float* out = y + (i64) row(k) * ldy + e;
                *out = accumulate ? *out + v : v;
            }
        }
    };
#pragma unroll
    for (int q = 0; q < D; q++) if (q < rounds) load(q, q);
    loadBC(0);
    for (int r0 = 0; r0 < rounds; r0 += D) {
#pragma unroll
        for (int q = 0; q < D; q++) {                                // slot q holds round r0 + q (unrolled: registers)
            if (r0 + q < rounds) step(r0 + q, q);
        }
    }
    if constexpr (ENDS) {
        sumDelta += __shfl_xor_sync(0xffffffffu, sumDelta, 1);
        sumDelta += __shfl_xor_sync(0xffffffffu, sumDelta, 2);
    }
    if (e >= E) return;
    if (ENDS && l == 0) y[(i64) blockIdx.y * E + e] = sumDelta;
    if (state) {
#pragma unroll
        for (int j = 0; j < S; j++) {
            int n = l * S + j;
            if (n < N) state[((i64) blockIdx.y * E + e) * N + n] = h[j];
        }
    }
    if (window && l == 0) roll_window(window + (i64) blockIdx.y * (K - 1) * E, x + (i64) first * ldx, ldx, K, T, E, e);
}

// The conv's decode state moved on over T inputs without a scan (see roll_window), one thread per channel.
KERNEL void roll_conv_window(float* window, const float* x, int ldx, int K, int T, int E) {
    AFTER_INPUTS();
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e < E) roll_window(window, x, ldx, K, T, E, e);
}

#define SCAN_KERNEL(NAME, S, R, D)                                                                            \
    KERNEL void __launch_bounds__(32 * SCAN_WARPS) NAME(float* y, int ldy, const float* u, int ldu, const float* dt,      \
                     int lddt, const float* dtBias, const float* bc, int ldbc, const float* z, int ldz, const float* A, \
                     const float* Dskip, float* state, float* deltaOut, float* window, const float* x, int ldx, int K,   \
                     int T, int E, int N, int reverse, int accumulate, int chunk) {                             \
        scan_lanes<S, R, D, false>(y, ldy, u, ldu, dt, lddt, dtBias, bc, ldbc, z, ldz, A, Dskip, state, deltaOut, window, x, \
                                   ldx, K, T, E, N, reverse, accumulate, chunk);                                \
    }
SCAN_KERNEL(selective_scan_n16, 4, 16, 2)
SCAN_KERNEL(selective_scan_n32, 8, 8, 2)
SCAN_KERNEL(selective_scan_n64, 16, 4, 2)

// The chunked scan of one long sequence, for when its channels alone leave the GPU short of warps (each warp's round
// is a chain of dependent steps; more warps hide it). The recurrence h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t·u_t is linear in
// h, so chunk c's end state is
//   h_end(c) = exp(A · ΣΔ over c) · h_start(c) + (the chunk's scan from zero).
// Pass 1 (scan_chunk_ends) runs every chunk from zero side by side: scan_lanes' states alone (no C, no y), keeping each
// chunk's end state hEnd [C, E, N] and ΣΔ [C, E] (lane sums in token order, then a butterfly over the 4 lanes); pass 2
// (scan_chunk_carry) walks the C chunks per (channel, state) to each chunk's start state hStart [C, E, N], and the final
// state and conv window; pass 3 is selective_scan with chunk > 0, every chunk again side by side from its start state,
// writing y. Grid of pass 1 (⌈E / (SCAN_LANE_CHANNELS·SCAN_WARPS)⌉, C).
#define CHUNK_ENDS_KERNEL(NAME, S, R, D)                                                                      \
    KERNEL void __launch_bounds__(32 * SCAN_WARPS) NAME(float* hEnd, float* sumDelta, const float* u, int ldu,          \
                     const float* dt, int lddt, const float* dtBias, const float* bc, int ldbc, const float* A, int T, \
                     int E, int N, int chunk) {                                                                 \
        scan_lanes<S, R, D, true>(sumDelta, 0, u, ldu, dt, lddt, dtBias, bc, ldbc, nullptr, 0, A, nullptr, hEnd, nullptr, \
                                  nullptr, nullptr, 0, 0, T, E, N, 0, 0, chunk);                                \
    }
CHUNK_ENDS_KERNEL(scan_chunk_ends_n16, 4, 16, 2)
CHUNK_ENDS_KERNEL(scan_chunk_ends_n32, 8, 8, 2)
CHUNK_ENDS_KERNEL(scan_chunk_ends_n64, 16, 4, 2)

// Pass 2, one thread per (channel e, state n): hStart(c) for c = 0 … C−1 from state [E, N] (null: zeros),
// then the final state written back to it; the threads with n = 0 also roll the conv window (may be null)
// over the T inputs x (row stride ldx), as the one-pass scan does.
KERNEL void scan_chunk_carry(float* __restrict__ hStart, const float* __restrict__ hEnd, const float* __restrict__ sumDelta,
                             const float* __restrict__ A, float* __restrict__ state, float* window, const float* x, int ldx, int K,
                             int T, int chunks, int E, int N) {
    AFTER_INPUTS();
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (i64) E * N) return;
    int e = (int) (i / N);
    float a = A[i], h = state ? state[i] : 0.f;
#pragma unroll 8                                       // the chunks' loads in flight together (restrict: no store aliases them)
    for (int c = 0; c < chunks; c++) {
        hStart[(i64) c * E * N + i] = h;
        h = __expf(a * sumDelta[(i64) c * E + e]) * h + hEnd[(i64) c * E * N + i];
    }
    if (state) state[i] = h;
    if (window && i % N == 0) roll_window(window, x, ldx, K, T, E, e);
}

// Splits fused qkv [B·T, 3D] (+ bias [3D], may be null) into q, k, v [B, H, T, dh], q scaled.
KERNEL void qkv_to_heads(float* q, float* k, float* v, const float* qkv, const float* bias, int B, int T, int H,
                         int dh, float scale) {
    AFTER_INPUTS();
    int D = H * dh;
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (i64) B * T * 3 * D) return;
    int col = (int) (i % (3 * D));
    i64 row = i / (3 * D);                             // b·T + t
    int part = col / D, c = col - part * D, head = c / dh, j = c - head * dh;
    i64 b = row / T, t = row - b * T;
    float val = qkv[i] + (bias ? bias[col] : 0.f);
    i64 o = ((b * H + head) * T + t) * dh + j;
    if (part == 0) q[o] = val * scale;
    else if (part == 1) k[o] = val;
    else v[o] = val;
}

// context [B, H, T, dh] → rows [B·T, D] with the heads side by side.
KERNEL void heads_to_rows(float* out, const float* context, int B, int T, int H, int dh) {
    AFTER_INPUTS();
    int D = H * dh;
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (i64) B * T * D) return;
    int c = (int) (i % D);
    i64 row = i / D, b = row / T, t = row - b * T;
    int head = c / dh, j = c - head * dh;
    out[i] = context[((b * H + head) * T + t) * dh + j];
}

// In place, each of gridDim.x rows of `cols` floats: x = softmax(x).
KERNEL void softmax_rows(float* x, int cols) {
    AFTER_INPUTS();
    float* r = x + (i64) blockIdx.x * cols;
    float m = -INFINITY_F;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) m = fmaxf(m, r[i]);
    m = block_reduce(m, true);
    float sum = 0.f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) { float e = expf(r[i] - m); r[i] = e; sum += e; }
    float inv = 1.f / block_reduce(sum, false);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) r[i] *= inv;
}

// Pixels [B, C, S, S] → patches [B·G·G, C·P·P] flattened in the conv weight's (c, i, j) order.
KERNEL void im2col(float* out, const float* pixels, int B, int C, int S, int P, int stride, int G) {
    AFTER_INPUTS();
    int patchLen = C * P * P;
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (i64) B * G * G * patchLen) return;
    int k = (int) (i % patchLen);
    i64 patch = i / patchLen, b = patch / (G * G);
    int p = (int) (patch - b * G * G), py = p / G, px = p - py * G;
    int c = k / (P * P), rem = k - c * P * P, di = rem / P, dj = rem - di * P;
    out[i] = pixels[((b * C + c) * S + py * stride + di) * S + px * stride + dj];
}

// Token rows [B·T, D] from patch embeddings [B·M, D] (+ patchBias): the cls token inserted at
// clsPosition, then position embeddings [T, D] added. T = M + 1.
KERNEL void assemble_tokens(float* x, const float* patches, const float* patchBias, const float* cls,
                            const float* position, int B, int M, int D, int clsPosition) {
    AFTER_INPUTS();
    int T = M + 1;
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (i64) B * T * D) return;
    int c = (int) (i % D);
    i64 row = i / D, b = row / T;
    int t = (int) (row - b * T);
    float v = t == clsPosition ? cls[c] : patches[(b * M + (t < clsPosition ? t : t - 1)) * D + c] + patchBias[c];
    x[i] = v + position[(i64) t * D + c];
}

// One layer's hidden-attention summary (DESIGN §3, §7) without holding the [E, T, T] tensor: for every
// (i, j), over the E channels, the sum and the positive-part sum of
//   α_e[i, j] = Δ_j[e] · Σ_n C_i[n]·B_j[n]·exp(A[e, n]·(S_i[e] − S_j[e]))   for j ≤ i, else 0,
// S the inclusive running sum of Δ (double: the difference of two long sums must keep its digits).
// With a backward direction (Vision Mamba, its tensors in its own reversed token order) the value is
// α_fwd[i, j] + α_bwd[T−1−i, T−1−j]. Layouts: deltaT and sumT [E, T] (channel-major, so that a warp's
// consecutive j read consecutive addresses), B and C [T, N], A [E, N]. Outputs: sum and positive [T, T];
// blockMin/blockMax, one per block, reduced on the host. Grid (⌈T/256⌉, T), block 256.
template <int MAXN>
__device__ __forceinline__ float alpha_channel(const float* CB, const float* __restrict__ Ae, int N, double si, double sj, float dj) {
    float d = (float) (si - sj), acc = 0.f;
#pragma unroll
    for (int n = 0; n < MAXN; n++) if (n < N) acc += CB[n] * __expf(Ae[n] * d);
    return dj * acc;
}

template <int MAXN>
__device__ void attention_summary(float* __restrict__ sum, float* __restrict__ positive, float* __restrict__ blockMin,
                                     float* __restrict__ blockMax,
                                     const float* __restrict__ deltaT, const double* __restrict__ sumT, const float* __restrict__ B,
                                     const float* __restrict__ C, const float* __restrict__ A,
                                     const float* __restrict__ deltaTb, const double* __restrict__ sumTb, const float* __restrict__ Bb,
                                     const float* __restrict__ Cb, const float* __restrict__ Ab, int T, int E, int N) {
    AFTER_INPUTS();
    int i = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
    bool inside = j < T;
    bool forward = inside && j <= i, backward = inside && deltaTb && j >= i;
    int ib = T - 1 - i, jb = T - 1 - j;
    float cb[MAXN], cbb[MAXN];                      // C_i[n]·B_j[n] per direction
#pragma unroll
    for (int n = 0; n < MAXN; n++) {
        if (n >= N) { cb[n] = cbb[n] = 0.f; continue; }
        cb[n] = forward ? C[(i64) i * N + n] * B[(i64) j * N + n] : 0.f;
        cbb[n] = backward ? Cb[(i64) ib * N + n] * Bb[(i64) jb * N + n] : 0.f;
    }
    float s = 0.f, p = 0.f, lo = INFINITY_F, hi = -INFINITY_F;
    if (inside && !forward && !backward) lo = hi = 0.f;       // above the diagonal of a one-way layer: 0 in every channel
    if (forward || backward) {
        for (int e = 0; e < E; e++) {
            float v = 0.f;
            if (forward) v = alpha_channel<MAXN>(cb, A + (i64) e * N, N, sumT[(i64) e * T + i], sumT[(i64) e * T + j], deltaT[(i64) e * T + j]);
            if (backward) v += alpha_channel<MAXN>(cbb, Ab + (i64) e * N, N, sumTb[(i64) e * T + ib], sumTb[(i64) e * T + jb], deltaTb[(i64) e * T + jb]);
            s += v;
            p += fmaxf(v, 0.f);
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
        }
    }
    if (inside) {
        sum[(i64) i * T + j] = s;
        positive[(i64) i * T + j] = p;
    }
    lo = -block_reduce(-lo, true);
    hi = block_reduce(hi, true);
    if (threadIdx.x == 0) {
        blockMin[(i64) blockIdx.y * gridDim.x + blockIdx.x] = lo;
        blockMax[(i64) blockIdx.y * gridDim.x + blockIdx.x] = hi;
    }
}

#define SUMMARY_KERNEL(NAME, MAXN)                                                                                    \
    KERNEL void NAME(float* sum, float* positive, float* blockMin, float* blockMax, const float* deltaT, const double* sumT, \
                     const float* B, const float* C, const float* A, const float* deltaTb, const double* sumTb,             \
                     const float* Bb, const float* Cb, const float* Ab, int T, int E, int N) {                             \
        attention_summary<MAXN>(sum, positive, blockMin, blockMax, deltaT, sumT, B, C, A, deltaTb, sumTb, Bb, Cb, Ab, T, E, N); \
    }
SUMMARY_KERNEL(hidden_attention_summary_n16, 16)
SUMMARY_KERNEL(hidden_attention_summary_n64, 64)

// ---- The decode step: each row one token of its own sequence --------------------------------------------
// A Mamba decode step is bound by the chain of its launches, not by bytes: these kernels fold the norm into
// in_proj's GEMV, the conv into x_proj, dt_proj into the scan and the residual add into out_proj, four
// launches a layer instead of seven. Each row's arithmetic is the same whatever the number of rows, so a
// batch of sequences gives every sequence the bits it gets decoded alone.

#define GEMV_WARPS 8          // warps in a GEMV block of 256 threads
#define GEMV_OUTPUTS 2        // output features per warp

__device__ __forceinline__ float rounded(float v) { return from_bf16(to_bf16(v)); }

// n rows of x' (rows ldx apart; normalised as add_rmsnorm does when normW is given, as layernorm does with normW and normB
// when normB is given too, as gated_rmsnorm does with normW and a gate z (rows ldz apart, any alignment): x' = RMSNorm(x ⊙
// silu(z)) ⊙ normW; rounded to bfloat16 when asked) into staged [n, in/4], by the whole block, between barriers (so the
// previous tile's readers are done). GATED: the gated form, a kernel of its own (its code in every gemv kernel took
// gemv_f32_v8 from 108 to 135 registers, one block an SM instead of two).
template <bool GATED>
__device__ void stage_rows(float4* staged, const float* x, int ldx, const float* __restrict__ normW, const float* __restrict__ normB,
                           const float* __restrict__ gate, int ldGate, float eps, int n, int in, bool toBf16) {
    int in4 = in / 4;
    __syncthreads();
    for (int r = 0; r < n; r++) {
        const float* xr = x + (i64) r * ldx;
        const float* zr = GATED ? gate + (i64) r * ldGate : nullptr;
        float mean = 0.f;
        float s = GATED ? gated_rms_inverse(xr, zr, in, eps) : normB ? layernorm_inverse(xr, in, eps, mean) : normW ? rms_inverse(xr, in, eps) : 1.f;
        for (int c = threadIdx.x; c < in4; c += blockDim.x) {
            float4 v = ((const float4*) xr)[c];
            if constexpr (GATED) {
                float4 g = ((const float4*) normW)[c];
                const float* z = zr + 4 * c;
                v = make_float4(gated_normed(v.x, z[0], s, g.x), gated_normed(v.y, z[1], s, g.y), gated_normed(v.z, z[2], s, g.z),
                                gated_normed(v.w, z[3], s, g.w));
            } else if (normB) {
                float4 g = ((const float4*) normW)[c], h = ((const float4*) normB)[c];
                v = make_float4((v.x - mean) * s * g.x + h.x, (v.y - mean) * s * g.y + h.y, (v.z - mean) * s * g.z + h.z,
                                (v.w - mean) * s * g.w + h.w);
            } else if (normW) {
                float4 g = ((const float4*) normW)[c];
                v = make_float4(v.x * s * g.x, v.y * s * g.y, v.z * s * g.z, v.w * s * g.w);
            }
            if (toBf16) v = make_float4(rounded(v.x), rounded(v.y), rounded(v.z), rounded(v.w));
            staged[r * in4 + c] = v;
        }
    }
    __syncthreads();
}

// One lane's products of a weight chunk with the staged row x' at that chunk's place: 4 F32 weights (a float4), or
// 8 bfloat16 weights (a uint4; x' was rounded to bfloat16 when staged), summed in order. The multiply-adds are written
// out (the _rn intrinsics are never contracted or reordered), so the gemv and gemm_rows kernels, which both sum
// through here, do the same float operations whatever the compiler makes of their loops.
__device__ __forceinline__ float chunk_dot(float4 w, const float4* xr, int c) {
    float4 v = xr[c];
    return __fmaf_rn(w.w, v.w, __fmaf_rn(w.z, v.z, __fmaf_rn(w.y, v.y, __fmul_rn(w.x, v.x))));
}

__device__ __forceinline__ float chunk_dot(uint4 w, const float4* xr, int c) {
    float4 lo = xr[2 * c], hi = xr[2 * c + 1];
    float s = __fmul_rn(from_bf16(w.x & 0xffffu), lo.x);
    s = __fmaf_rn(from_bf16(w.x >> 16), lo.y, s);
    s = __fmaf_rn(from_bf16(w.y & 0xffffu), lo.z, s);
    s = __fmaf_rn(from_bf16(w.y >> 16), lo.w, s);
    s = __fmaf_rn(from_bf16(w.z & 0xffffu), hi.x, s);
    s = __fmaf_rn(from_bf16(w.z >> 16), hi.y, s);
    s = __fmaf_rn(from_bf16(w.w & 0xffffu), hi.z, s);
    return __fmaf_rn(from_bf16(w.w >> 16), hi.w, s);
}

__device__ constexpr int weights_per_chunk(float4) { return 4; }
__device__ constexpr int weights_per_chunk(uint4) { return 8; }

// One lane's share of a row's dot product: its chunks c = 32i + lane in order, each chunk's products summed first.
template <typename Chunk, int V>
__device__ __forceinline__ float lane_partial(const Chunk (&w)[V], const float4* xr, int lane, int chunks) {
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < V; i++) {
        int c = 32 * i + lane;
        if (c < chunks) sum = __fadd_rn(sum, chunk_dot(w[i], xr, c));
    }
    return sum;
}

#define GEMV_GROUP 4                          // rows whose lane partials one warp reduces together
#define GEMV_GROUP_LANES (32 / GEMV_GROUP)    // the lanes that end with each row's sum

template <int G>
__device__ __forceinline__ float warp_sum_rows(float (&p)[G], int lane) {
    warp_fold_sets<G / 2, 16>(p, lane);
    float v = p[0];
#pragma unroll
    for (int s = 16 / G; s > 0; s >>= 1) v += __shfl_xor_sync(0xffffffffu, v, s);
    return v;
}

// y[r, o] = Σ_k W[o, k]·x'[r, k] (+ bias[o]) (+ y[r, o] when accumulate) for r < rows, o < out, with x' = x, or
// RMSNorm(x) ⊙ normW (as add_rmsnorm computes it) when normW is given, or LayerNorm(x) ⊙ normW + normB (as layernorm
// computes it) when normB is given too, or RMSNorm(x ⊙ silu(z)) ⊙ normW (as gated_rmsnorm computes it) when normW and a
// gate z (rows ldGate apart) are given; for a bfloat16 W (cublasGemmEx's BF16 operands)
// x' rounded to bfloat16, F32 products and sums. W's rows are chunks of 16 bytes (Chunk: float4, or uint4 of 8
// bfloat16). Each warp computes GEMV_OUTPUTS features: lane l keeps their chunks c = 32i + l, i < V, in registers,
// loaded before the inputs are waited for (wait_for_inputs), and reuses them for every row of the block's tile of x',
// staged in shared memory (more rows: more blocks, each loading the weights again, from L2 after the first). A row's
// sum is the same float operations whatever the rows (lane partials in chunk order, then warp_sum's tree, for
// whole groups of GEMV_GROUP rows through warp_sum_rows), so a batch of sequences gives each the bits it gets alone.
// W's rows are ldw chunks apart (a slice of a wider weight: see CudaKernels.gemv). in a multiple of the chunk, in ≤ V chunks a lane; x 16-byte aligned,
// ldx % 4 == 0. Grid (⌈out / (GEMV_WARPS·GEMV_OUTPUTS)⌉, ⌈rows / tileRows⌉): blockIdx.y takes rows [y·tileRows,
// (y + 1)·tileRows); block 256, shared tileRows·in floats.
template <typename Chunk, int V, bool GATED>
__device__ void gemv(float* y, int ldy, const Chunk* __restrict__ W, const float* __restrict__ x, int ldx,
                     const float* __restrict__ bias, const float* __restrict__ normW, const float* __restrict__ normB,
                     const float* __restrict__ gate, int ldGate, float eps, int rows, int out, int in, int accumulate, int tileRows, int ldw) {
    extern __shared__ float4 gemvRows[];               // [tileRows, in/4]
    let_dependents_start();
    const bool bf16 = weights_per_chunk(Chunk()) == 8;
    int lane = threadIdx.x & 31, o0 = (blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5)) * GEMV_OUTPUTS;
    int in4 = in / 4, chunks = in / weights_per_chunk(Chunk());
    Chunk w[GEMV_OUTPUTS][V];
#pragma unroll
    for (int q = 0; q < GEMV_OUTPUTS; q++) {
        const Chunk* row = W + (i64) min(o0 + q, out - 1) * ldw;
#pragma unroll
        for (int i = 0; i < V; i++) w[q][i] = 32 * i + lane < chunks ? row[32 * i + lane] : Chunk();
    }
    wait_for_inputs();
    int r0 = blockIdx.y * tileRows, n = min(tileRows, rows - r0);
    stage_rows<GATED>(gemvRows, x + (i64) r0 * ldx, ldx, normW, normB, GATED ? gate + (i64) r0 * ldGate : nullptr, ldGate, eps, n, in, bf16);
    float b[GEMV_OUTPUTS];
#pragma unroll
    for (int q = 0; q < GEMV_OUTPUTS; q++) b[q] = bias && o0 + q < out ? bias[o0 + q] : 0.f;
    int r = 0;
    for (; r + GEMV_GROUP <= n; r += GEMV_GROUP) {        // whole groups: GEMV_GROUP rows' sums reduced together
        float part[GEMV_OUTPUTS][GEMV_GROUP];
#pragma unroll
        for (int k = 0; k < GEMV_GROUP; k++) {
            const float4* xr = gemvRows + (r + k) * in4;
#pragma unroll
            for (int q = 0; q < GEMV_OUTPUTS; q++) part[q][k] = lane_partial(w[q], xr, lane, chunks);
        }
        int j = (lane / GEMV_GROUP_LANES) & (GEMV_GROUP - 1);   // the row whose sum this lane ends with (see warp_sum_rows)
#pragma unroll
        for (int q = 0; q < GEMV_OUTPUTS; q++) {
            float sum = warp_sum_rows<GEMV_GROUP>(part[q], lane);
            if (o0 + q < out && lane % GEMV_GROUP_LANES == 0) {
                float* target = y + (i64) (r0 + r + j) * ldy + o0 + q;
                float v = sum + b[q];
                *target = accumulate ? *target + v : v;
            }
        }
    }
#pragma unroll 4
    for (; r < n; r++) {                                  // the rest one by one: their butterflies overlap
        const float4* xr = gemvRows + r * in4;
#pragma unroll
        for (int q = 0; q < GEMV_OUTPUTS; q++) {
            float sum = warp_sum(lane_partial(w[q], xr, lane, chunks));
            if (o0 + q < out && lane == 0) {
                float* target = y + (i64) (r0 + r) * ldy + o0 + q;
                float v = sum + b[q];
                *target = accumulate ? *target + v : v;
            }
        }
    }
}

// One kernel per register budget V (Java picks the smallest that holds a weight row), each plain and gated (the gate
// given: Mamba-2's out_proj); BF16 rows of more than 256·8 values would not fit the registers without spilling.
#define GEMV_KERNEL(NAME, CHUNK, WTYPE, V, GATED)                                                                          \
    KERNEL void NAME(float* y, int ldy, const WTYPE* W, const float* x, int ldx, const float* bias, const float* normW,     \
                     const float* normB, const float* gate, int ldGate, float eps, int rows, int out, int in, int accumulate, \
                     int tileRows, int ldw) {                                                                           \
        gemv<CHUNK, V, GATED>(y, ldy, (const CHUNK*) W, x, ldx, bias, normW, normB, gate, ldGate, eps, rows, out, in,        \
                              accumulate, tileRows, ldw);                                                               \
    }
#define GEMV_F32_KERNEL(V)                                \
    GEMV_KERNEL(gemv_f32_v##V, float4, float, V, false)   \
    GEMV_KERNEL(gemv_f32_v##V##_gated, float4, float, V, true)
#define GEMV_BF16_KERNEL(V)                                        \
    GEMV_KERNEL(gemv_bf16_v##V, uint4, unsigned short, V, false)   \
    GEMV_KERNEL(gemv_bf16_v##V##_gated, uint4, unsigned short, V, true)
GEMV_F32_KERNEL(1)
GEMV_F32_KERNEL(2)
GEMV_F32_KERNEL(4)
GEMV_F32_KERNEL(8)
GEMV_F32_KERNEL(16)
GEMV_BF16_KERNEL(1)
GEMV_BF16_KERNEL(2)
GEMV_BF16_KERNEL(4)
GEMV_BF16_KERNEL(8)

// ---- Many rows: register tiles that sum as the gemv does --------------------------------------------------
#define GEMM_THREADS 256     // at most 8 warps, one a tile of RT rows: a block covers up to 8·RT rows × 32/RT features

// y[r, o] as gemv computes it, bit for bit, for batches of many rows. gemv re-stages x' and reloads its weights once
// per tile of rows, and spends a butterfly per (row, feature); here each warp holds RT rows × FT = 32/RT features of
// lane partials (32 sums a lane), reads each weight chunk once for its RT rows and each input chunk once for its FT
// features, and ends with warp_sum_rows<32> (31 shuffles for 32 sums). Lane l sums chunks c = 32i + l in order, as
// gemv's lane_partial, and the tree is warp_sum's. The operands come straight from global memory: the warps of a block
// read the same weight rows at the same time (one trip from DRAM, the rest from L1), and every block reads the same
// inputs (from L1/L2). No norm prologue (add_rmsnorm first); x 16-byte aligned, ldx % 4 == 0, in a multiple of the
// chunk; W's rows ldw chunks apart. Grid (⌈out / FT⌉, ⌈rows / (RT·warps)⌉), block 32·warps, warps ≤ 8.
template <typename Chunk, int RT>
__device__ void gemm_rows(float* y, int ldy, const Chunk* __restrict__ W, const float* __restrict__ x, int ldx,
                          const float* __restrict__ bias, int rows, int out, int in, int accumulate, int ldw) {
    constexpr int XV = weights_per_chunk(Chunk()) / 4;            // float4s of x' a chunk: 1 (F32) or 2 (BF16)
    constexpr int FT = 32 / RT;                                   // a warp's tile: RT rows × FT features, 32 sums a lane
    let_dependents_start();
    int lane = threadIdx.x & 31, f0 = blockIdx.x * FT, r0 = (blockIdx.y * (blockDim.x >> 5) + (threadIdx.x >> 5)) * RT;
    int chunks = in / weights_per_chunk(Chunk());
    const Chunk* w = W + (i64) f0 * ldw;                          // feature f0 + f at w + f·ldw
    const float4* xr = (const float4*) (x + (i64) r0 * ldx);      // row r0 + r at xr + r·ldx4
    int ldx4 = ldx / 4, lastFeature = out - 1 - f0, lastRow = rows - 1 - r0;   // past them: read (clamped), not written
    float acc[32];                                                // [RT rows][FT features]: lane partials
#pragma unroll
    for (int j = 0; j < 32; j++) acc[j] = 0.f;
    wait_for_inputs();
    for (int c = lane; c < chunks; c += 32) {
        Chunk wc[FT];
#pragma unroll
        for (int f = 0; f < FT; f++) wc[f] = w[(i64) min(f, lastFeature) * ldw + c];
#pragma unroll
        for (int r = 0; r < RT; r++) {
            float4 v[XV];
#pragma unroll
            for (int q = 0; q < XV; q++) {
                v[q] = xr[(i64) min(r, lastRow) * ldx4 + XV * c + q];
                if (XV == 2) v[q] = make_float4(rounded(v[q].x), rounded(v[q].y), rounded(v[q].z), rounded(v[q].w));
            }
#pragma unroll
            for (int f = 0; f < FT; f++) acc[FT * r + f] = __fadd_rn(acc[FT * r + f], chunk_dot(wc[f], v, 0));
        }
    }
    float sum = warp_sum_rows<32>(acc, lane);                     // lane l: row l / FT, feature l % FT of the warp's
    int row = r0 + lane / FT, o = f0 + lane % FT;
    if (row < rows && o < out) {
        float* target = y + (i64) row * ldy + o;
        float v = sum + (bias ? bias[o] : 0.f);
        *target = accumulate ? *target + v : v;
    }
}

// F32: 4 rows × 8 features a warp, so that a block re-reads half as many input rows as with 8 × 4 (H200, 64 sequences:
// 36.6k → 37.3k tokens/s). BF16 keeps 8 × 4: its 8 weight chunks of a 4 × 8 tile spill.
KERNEL void __launch_bounds__(GEMM_THREADS, 2) gemm_rows_f32(float* y, int ldy, const float* W, const float* x, int ldx, const float* bias,
                                                             int rows, int out, int in, int accumulate, int ldw) {
    gemm_rows<float4, 4>(y, ldy, (const float4*) W, x, ldx, bias, rows, out, in, accumulate, ldw);
}

KERNEL void __launch_bounds__(GEMM_THREADS, 2) gemm_rows_bf16(float* y, int ldy, const unsigned short* W, const float* x, int ldx,
                                                              const float* bias, int rows, int out, int in, int accumulate, int ldw) {
    gemm_rows<uint4, 8>(y, ldy, (const uint4*) W, x, ldx, bias, rows, out, in, accumulate, ldw);
}

// The conv of one new token, channel e: s = bias[e] + Σ_{j<K−1} taps[j, e]·window[j, e] + taps[K−1, e]·x'[e]
// (causal_conv's order at t = 0), u = silu(s). window [K−1, E] and x' are the sequence's own. Its inputs are loaded
// apart from its arithmetic (conv_inputs, then conv_from), so that a kernel can have them in flight while it waits on
// other loads. K ≤ 9.
struct ConvInputs { float tap[8], win[8], tapLast, x, bias; };

__device__ __forceinline__ ConvInputs conv_inputs(const float* window, const float* xz, const float* taps, const float* bias, int E, int K,
                                                  int e) {
    ConvInputs c;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        c.tap[j] = j < K - 1 ? taps[(i64) j * E + e] : 0.f;
        c.win[j] = j < K - 1 ? window[(i64) j * E + e] : 0.f;
    }
    c.tapLast = taps[(i64) (K - 1) * E + e];
    c.x = xz[e];
    c.bias = bias ? bias[e] : 0.f;
    return c;
}

__device__ __forceinline__ float conv_from(const ConvInputs& c, int K) {
    float acc = c.bias;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        if (j < K - 1) acc = __fmaf_rn(c.tap[j], c.win[j], acc);
    }
    return silu(__fmaf_rn(c.tapLast, c.x, acc));
}

// The same operations with the loads in the loop, for K − 1 of them rather than 8 (fewer instructions and registers).
__device__ __forceinline__ float conv_step(const float* window, const float* xz, const float* taps, const float* bias, int E, int K, int e) {
    float acc = bias ? bias[e] : 0.f;
#pragma unroll 8
    for (int j = 0; j < K - 1; j++) acc = __fmaf_rn(taps[(i64) j * E + e], window[(i64) j * E + e], acc);
    return silu(__fmaf_rn(taps[(i64) (K - 1) * E + e], xz[e], acc));
}

// A channel's arithmetic in the decode step's second half, shared by its two layouts (ssm_step_scan: a warp per channel,
// ssm_step_channels: a quad of threads per channel) and written with explicitly rounded operations: left to itself the
// compiler contracts products into FMAs differently in each kernel. With these, and warp_sum's butterfly retraced over a
// quad (quad_butterfly_sum), both layouts give a channel the same bits, so a batch may take whichever is faster.
// Lane l's term of a sum over up to 64 products: x0·y[l] + x1·y[l + 32], a product 0 where absent (y is read only where present).
__device__ __forceinline__ float lane_term(const float* y, int l, bool low, float x0, bool high, float x1) {
    return __fadd_rn(low ? __fmul_rn(x0, y[l]) : 0.f, high ? __fmul_rn(x1, y[l + 32]) : 0.f);
}

// h' = exp(Δ·a)·h + (Δ·u)·B
__device__ __forceinline__ float ssm_state_update(float delta, float a, float h, float du, float B) {
    return __fadd_rn(__fmul_rn(__expf(__fmul_rn(delta, a)), h), __fmul_rn(du, B));
}

// y = (Σ_n C_n·h_n + D·u) ⊙ silu(z)
__device__ __forceinline__ float ssm_output(float sum, float D, float u, float z) {
    return __fmul_rn(__fadd_rn(sum, __fmul_rn(D, u)), silu(z));
}

// Sequence b's [δr, B, C] into shared memory: the slices' partial sums of x_proj added in slice order (δr rounded to
// bfloat16 for a BF16 dt_proj); then a barrier.
__device__ __forceinline__ void gather_projected(float* projected, const float* partial, int b, int slices, int P, int R, int bf16) {
    for (int i = threadIdx.x; i < P; i += blockDim.x) {
        float v = 0.f;
#pragma unroll 8
        for (int s = 0; s < slices; s++) v += partial[((i64) b * slices + s) * P + i];
        projected[i] = bf16 && i < R ? rounded(v) : v;
    }
    __syncthreads();
}

// Channel e's conv window [K−1, E] moves on by the one token x'[e] (roll_window for T = 1, written for it: measured
// 1 µs faster in the decode step on the H200).
__device__ __forceinline__ void shift_window(float* win, const float* xb, int E, int K, int e) {
    for (int j = 0; j + 2 < K; j++) win[(i64) j * E + e] = win[(i64) (j + 1) * E + e];
    if (K > 1) win[(i64) (K - 2) * E + e] = xb[e];
}

// The sum of 16 values s[l] spread over a quad of lanes (quarter q holds s[4q..4q+3]), added as warp_sum's lane 0 adds
// its lanes' values from offset 8 on (s[l] the sums after offset 16): at offset 8 quarters 0 and 1 take quarters 2 and
// 3's values, at offset 4 quarter 0 takes quarter 1's, then offsets 2 and 1 within quarter 0; every lane of the quad
// gets the sum. All 32 lanes of the warp must take part.
__device__ __forceinline__ float quad_butterfly_sum(float (&s)[4], int q) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float other = __shfl_down_sync(0xffffffffu, s[i], 2);
        if (q < 2) s[i] = __fadd_rn(s[i], other);
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float other = __shfl_down_sync(0xffffffffu, s[i], 1);
        if (q == 0) s[i] = __fadd_rn(s[i], other);
    }
    float sum = __fadd_rn(__fadd_rn(s[0], s[2]), __fadd_rn(s[1], s[3]));
    return __shfl_sync(0xffffffffu, sum, lane & ~3);
}

// Channels of one slice of x_proj's sum in the decode step: a block's conv outputs, a warp's share of a row.
#define SSM_SLICE 256

// Asks L2 for bytes [p, p + n) (p 0: nothing), a 128-byte line at a time, striped over every thread of the grid: weights
// that a later kernel of the decode step reads, fetched while the SSM step's kernels, bound by their chains of dependent
// loads, leave DRAM idle. Issued at a kernel's start, before it waits for its inputs.
__device__ __forceinline__ void prefetch_l2(const char* p, i64 n) {
    if (!p) return;
    i64 threads = (i64) gridDim.x * gridDim.y * gridDim.z * blockDim.x;
    i64 id = (((i64) blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;
    for (i64 at = id * 128; at < n; at += threads * 128) asm volatile("prefetch.global.L2 [%0];" ::"l"(p + at));
}

// Decode step, first half of the SSM branch, for sequence b = blockIdx.z and channels [s·256, s·256 + 256), s =
// blockIdx.y: u = silu(conv(x')) of those channels into shared memory (rounded to bfloat16 for a BF16 x_proj), then
// each warp the slice's part of Q outputs p of x_proj(u) = [δr, B, C]: partial [rows, S, P], S = ⌈E/256⌉ slices,
// which the second half sums in slice order. Lane l reads channels l + 32j, j < 8, all its loads at once: the latency
// of one round trip to memory, not of 48. An output's sum is the same whichever warp makes it, so Q only spreads the
// work: 1 for one sequence (the most blocks), 4 for a batch (the conv computed once for 32 outputs, not 8). x' is xz's
// first E columns (rows ldxz apart); window [rows, K−1, E] is only read. Grid (⌈P/(8Q)⌉, S, rows), block 256; warp w's
// outputs: 8Q·blockIdx.x + w + 8q, q < Q. First it asks L2 for up to two ranges of upcoming weights (prefetch_l2).
template <int Q>
__device__ void ssm_step_project(float* partial, const float* xz, int ldxz, const float* window, const float* taps, const float* convBias,
                                 const void* xProj, int bf16, int E, int K, int P, const char* upcoming0, i64 bytes0,
                                 const char* upcoming1, i64 bytes1) {
    __shared__ float us[SSM_SLICE];
    let_dependents_start();
    prefetch_l2(upcoming0, bytes0);
    prefetch_l2(upcoming1, bytes1);
    int b = blockIdx.z, slices = gridDim.y, c0 = blockIdx.y * SSM_SLICE, lane = threadIdx.x & 31;
    int p[Q];
    float w[Q][SSM_SLICE / 32];
#pragma unroll
    for (int q = 0; q < Q; q++) {
        p[q] = blockIdx.x * 8 * Q + (threadIdx.x >> 5) + 8 * q;
#pragma unroll
        for (int j = 0; j < SSM_SLICE / 32; j++) {
            int c = c0 + lane + 32 * j;
            w[q][j] = p[q] >= P || c >= E ? 0.f
                    : bf16 ? from_bf16(((const unsigned short*) xProj)[(i64) p[q] * E + c]) : ((const float*) xProj)[(i64) p[q] * E + c];
        }
    }
    wait_for_inputs();
    int e = c0 + threadIdx.x;
    if (e < E) {
        float u = conv_step(window + (i64) b * (K - 1) * E, xz + (i64) b * ldxz, taps, convBias, E, K, e);
        us[threadIdx.x] = bf16 ? rounded(u) : u;
    } else {
        us[threadIdx.x] = 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < Q; q++) {
        if (p[q] >= P) break;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < SSM_SLICE / 32; j++) sum = __fmaf_rn(w[q][j], us[lane + 32 * j], sum);
        sum = warp_sum(sum);
        if (lane == 0) partial[((i64) b * slices + blockIdx.y) * P + p[q]] = sum;
    }
}

#define SSM_STEP_PROJECT_KERNEL(Q)                                                                                          \
    KERNEL void ssm_step_project_q##Q(float* partial, const float* xz, int ldxz, const float* window, const float* taps,     \
                                      const float* convBias, const void* xProj, int bf16, int E, int K, int P,              \
                                      const char* upcoming0, i64 bytes0, const char* upcoming1, i64 bytes1) {               \
        ssm_step_project<Q>(partial, xz, ldxz, window, taps, convBias, xProj, bf16, E, K, P, upcoming0, bytes0, upcoming1,  \
                            bytes1);                                                                                        \
    }
SSM_STEP_PROJECT_KERNEL(1)
SSM_STEP_PROJECT_KERNEL(4)

// Decode step, second half, for sequence b = blockIdx.y: each warp C channels (C = 1, or 4 for batches, whose chains
// of loads then overlap), lane n keeping state n (and n + 32) of each: [δr, B, C] = the slices' partial sums added in
// order (δr rounded for a BF16 dt_proj), u again (conv_step's operations), dt = dt_proj(δr), Δ = softplus(dt + dtBias),
// h_n = exp(Δ·A_n)·h_n + Δ·u·B_n, y = (Σ_n C_n·h_n + D·u) ⊙ silu(z), into y [rows, E] (rows ldy apart); then the state
// [rows, E, N] and the conv window [rows, K−1, E] move on. The warp's sums (over r, over n) are butterflies: a channel's
// arithmetic is the same whatever the rows and C. N ≤ 64. Grid (⌈E/(16·C)⌉, rows), block 512 (the partial sums are
// added once per 16·C channels), shared R + 2N floats. Warp w's channels: 16·C·blockIdx.x + w + 16i, i < C.
template <int C>
__device__ void ssm_step_scan(float* __restrict__ y, int ldy, const float* __restrict__ xz, int ldxz, float* __restrict__ window,
                              const float* __restrict__ taps, const float* __restrict__ convBias, const void* __restrict__ dtProj, int bf16,
                              const float* __restrict__ dtBias, const float* __restrict__ A, const float* __restrict__ Dskip,
                              float* __restrict__ state, const float* __restrict__ partial, int slices, int E, int N, int R, int K) {
    extern __shared__ float projected[];               // this sequence's [δr, B, C]
    let_dependents_start();
    int b = blockIdx.y, P = R + 2 * N, lane = threadIdx.x & 31;
    int e[C];
    bool active[C];
    float w0[C], w1[C], a0[C], a1[C];                  // dt_proj[e, lane (+32)] and A[e, lane (+32)]: weights, read before the wait
#pragma unroll
    for (int i = 0; i < C; i++) {
        e[i] = blockIdx.x * 16 * C + (threadIdx.x >> 5) + 16 * i;
        active[i] = e[i] < E;
        w0[i] = w1[i] = a0[i] = a1[i] = 0.f;
        if (!active[i]) continue;
        if (lane < R) w0[i] = bf16 ? from_bf16(((const unsigned short*) dtProj)[(i64) e[i] * R + lane]) : ((const float*) dtProj)[(i64) e[i] * R + lane];
        if (lane + 32 < R) w1[i] = bf16 ? from_bf16(((const unsigned short*) dtProj)[(i64) e[i] * R + lane + 32]) : ((const float*) dtProj)[(i64) e[i] * R + lane + 32];
        if (lane < N) a0[i] = A[(i64) e[i] * N + lane];
        if (lane + 32 < N) a1[i] = A[(i64) e[i] * N + lane + 32];
    }
    wait_for_inputs();
    float* win = window + (i64) b * (K - 1) * E;
    const float* xb = xz + (i64) b * ldxz;
    float* h = state + (i64) b * E * N;
    float u[C], delta[C], h0[C], h1[C], z[C];
    ConvInputs conv;
    if (C == 1) {                                      // one channel's inputs: in flight with the gather's loads
        u[0] = h0[0] = h1[0] = z[0] = 0.f;
        if (active[0]) {
            conv = conv_inputs(win, xb, taps, convBias, E, K, e[0]);
            if (lane < N) h0[0] = h[(i64) e[0] * N + lane];
            if (lane + 32 < N) h1[0] = h[(i64) e[0] * N + lane + 32];
            z[0] = xb[E + e[0]];
        }
    }
    gather_projected(projected, partial, b, slices, P, R, bf16);
    const float* Bt = projected + R;
    const float* Ct = Bt + N;
#pragma unroll
    for (int i = 0; i < C; i++) {                      // 4 channels' loads after it (before: too many registers), all first
        if (C == 1) {
            if (active[0]) u[0] = conv_from(conv, K);
            continue;
        }
        u[i] = h0[i] = h1[i] = z[i] = 0.f;
        if (!active[i]) continue;
        u[i] = conv_step(win, xb, taps, convBias, E, K, e[i]);
        if (lane < N) h0[i] = h[(i64) e[i] * N + lane];
        if (lane + 32 < N) h1[i] = h[(i64) e[i] * N + lane + 32];
        z[i] = xb[E + e[i]];
    }
#pragma unroll
    for (int i = 0; i < C; i++) {
        float dt = warp_sum(lane_term(projected, lane, lane < R, w0[i], lane + 32 < R, w1[i]));
        delta[i] = active[i] ? softplus(dt + dtBias[e[i]]) : 0.f;
    }
#pragma unroll
    for (int i = 0; i < C; i++) {
        if (!active[i]) continue;
        float du = __fmul_rn(delta[i], u[i]), hn0 = 0.f, hn1 = 0.f;
        float* hc = h + (i64) e[i] * N;
        if (lane < N) hc[lane] = hn0 = ssm_state_update(delta[i], a0[i], h0[i], du, Bt[lane]);
        if (lane + 32 < N) hc[lane + 32] = hn1 = ssm_state_update(delta[i], a1[i], h1[i], du, Bt[lane + 32]);
        float yv = ssm_output(warp_sum(lane_term(Ct, lane, lane < N, hn0, lane + 32 < N, hn1)), Dskip[e[i]], u[i], z[i]);
        if (lane != 0) continue;
        y[(i64) b * ldy + e[i]] = yv;
        shift_window(win, xb, E, K, e[i]);
    }
}

// Bounded to two blocks an SM (64 registers): at 66 the 4-channel kernel ran one block an SM, 70 -> 118 µs for 64 rows.
#define SSM_STEP_SCAN_KERNEL(C)                                                                                                 \
    KERNEL void __launch_bounds__(512, 2) ssm_step_scan_c##C(float* y, int ldy, const float* xz, int ldxz, float* window,        \
                                   const float* taps, const float* convBias, const void* dtProj, int bf16, const float* dtBias, \
                                   const float* A, const float* Dskip, float* state, const float* partial, int slices, int E,   \
                                   int N, int R, int K) {                                                                       \
        ssm_step_scan<C>(y, ldy, xz, ldxz, window, taps, convBias, dtProj, bf16, dtBias, A, Dskip, state, partial, slices, E, N, R, K); \
    }
SSM_STEP_SCAN_KERNEL(1)
SSM_STEP_SCAN_KERNEL(4)

// dtT [R, E] (F32) = dt_proj [E, R] transposed, F32 or bfloat16 (its values as F32, which ssm_step_channels multiplies as
// ssm_step_scan multiplies the bfloat16 ones). One thread per value.
KERNEL void dt_proj_transposed(float* dtT, const void* dtProj, int bf16, int E, int R) {
    AFTER_INPUTS();
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (i64) E * R) return;
    int e = (int) (i / R), r = (int) (i - (i64) e * R);
    dtT[(i64) r * E + e] = bf16 ? from_bf16(((const unsigned short*) dtProj)[i]) : ((const float*) dtProj)[i];
}

// Decode step, second half, a quad of threads per channel, for models of N ≤ 16 states and R ≤ 64 dt ranks:
// ssm_step_scan's bits (its butterflies written out: the dt terms l and l + 16 added as warp_sum's first offset does,
// then quad_butterfly_sum), but a warp does 8 channels where ssm_step_scan's does one: faster for batches, slower for one
// sequence. Quarter q of a quad keeps states 4q..4q+3 and the dt terms of lanes 4q..4q+3 (and 16 on). The weights come
// transposed (dtT [R, E], aT [N, E], laid out when the model loads: CudaKernels.ssmStepWeights), so that the quads'
// loads are coalesced; this step's inputs are loaded before the partial sums are gathered, so that both round trips
// overlap. Grid (⌈E/(block/4)⌉, rows), shared P floats.
KERNEL void ssm_step_channels(float* __restrict__ y, int ldy, const float* __restrict__ xz, int ldxz, float* __restrict__ window,
                              const float* __restrict__ taps, const float* __restrict__ convBias, const float* __restrict__ dtT, int bf16,
                              const float* __restrict__ dtBias, const float* __restrict__ aT, const float* __restrict__ Dskip,
                              float* __restrict__ state, const float* __restrict__ partial, int slices, int E, int N, int R, int K) {
    extern __shared__ float projected[];               // this sequence's [δr, B, C]
    let_dependents_start();
    int b = blockIdx.y, P = R + 2 * N, q = threadIdx.x & 3, e0 = blockIdx.x * (blockDim.x >> 2) + (threadIdx.x >> 2);
    bool active = e0 < E;
    int e = active ? e0 : E - 1;                       // past E: a real channel's arithmetic, for the shuffles, never written
    wait_for_inputs();
    float* win = window + (i64) b * (K - 1) * E;
    const float* xb = xz + (i64) b * ldxz;
    float* hc = state + ((i64) b * E + e) * N + 4 * q; // this quarter's states
    float h[4];
    if ((N & 3) == 0 && 4 * q < N) {                   // whole float4s (the base is 16-byte aligned)
        float4 v = *(const float4*) hc;
        h[0] = v.x; h[1] = v.y; h[2] = v.z; h[3] = v.w;
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++) h[i] = 4 * q + i < N ? hc[i] : 0.f;
    }
    ConvInputs conv = conv_inputs(win, xb, taps, convBias, E, K, e);
    float z = xb[E + e];
    gather_projected(projected, partial, b, slices, P, R, bf16);
    float u = conv_from(conv, K);
    float s[4];                                        // dt terms l = 4q + i and l + 16, added
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int l = 4 * q + i;
        float w[4];                                    // dt_proj[e, l + 16j]
#pragma unroll
        for (int j = 0; j < 4; j++) w[j] = l + 16 * j < R ? dtT[(i64) (l + 16 * j) * E + e] : 0.f;
        s[i] = __fadd_rn(lane_term(projected, l, l < R, w[0], l + 32 < R, w[2]), lane_term(projected, l + 16, l + 16 < R, w[1], l + 48 < R, w[3]));
    }
    float delta = softplus(quad_butterfly_sum(s, q) + dtBias[e]), du = __fmul_rn(delta, u);
    const float* Bt = projected + R;
    const float* Ct = Bt + N;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int n = 4 * q + i;
        if (n < N) h[i] = ssm_state_update(delta, aT[(i64) n * E + e], h[i], du, Bt[n]);
        s[i] = __fadd_rn(lane_term(Ct, n, n < N, h[i], false, 0.f), 0.f);   // N ≤ 16: lanes 16-31 hold no state (+0)
    }
    float yv = ssm_output(quad_butterfly_sum(s, q), Dskip[e], u, z);
    if (!active) return;
    if ((N & 3) == 0 && 4 * q < N) {
        *(float4*) hc = make_float4(h[0], h[1], h[2], h[3]);
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++) if (4 * q + i < N) hc[i] = h[i];
    }
    if (q != 0) return;
    y[(i64) b * ldy + e] = yv;
    shift_window(win, xb, E, K, e);
}

// ---- A greedy decoder's choice ----------------------------------------------------------------------------

// The two largest of a row's values seen so far, ordered by value, then by the lower index; index 0x7fffffff: none yet.
struct TopTwo { float v1; int i1; float v2; int i2; };

__device__ __forceinline__ bool before(float v, int i, float w, int j) { return v > w || (v == w && i < j); }

__device__ __forceinline__ TopTwo top_two_add(TopTwo t, float v, int i) {
    if (before(v, i, t.v1, t.i1)) { t.v2 = t.v1; t.i2 = t.i1; t.v1 = v; t.i1 = i; }
    else if (before(v, i, t.v2, t.i2)) { t.v2 = v; t.i2 = i; }
    return t;
}

// Per row of x [rows, cols]: out[2r] and out[2r + 1] = the indices of its largest and second-largest values (the lower
// index first among equals; −1 for a row of one value), or −1, −1 when the row holds a NaN or an infinity. Grid (rows),
// block 1024 (a power of 2).
KERNEL void top_two_rows(int* out, const float* x, int cols) {
    AFTER_INPUTS();
    __shared__ TopTwo best[1024];
    __shared__ int nonFinite;
    if (threadIdx.x == 0) nonFinite = 0;
    __syncthreads();
    const float* row = x + (i64) blockIdx.x * cols;
    TopTwo t = {-INFINITY_F, 0x7fffffff, -INFINITY_F, 0x7fffffff};
    bool finite = true;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = row[c];
        finite = finite && (__float_as_uint(v) & 0x7f800000u) != 0x7f800000u;   // exponent all ones: NaN or ±∞
        t = top_two_add(t, v, c);
    }
    if (!finite) nonFinite = 1;
    best[threadIdx.x] = t;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) {
            TopTwo o = best[threadIdx.x + half];
            TopTwo m = top_two_add(top_two_add(best[threadIdx.x], o.v1, o.i1), o.v2, o.i2);
            best[threadIdx.x] = m;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[2 * (i64) blockIdx.x] = nonFinite ? -1 : best[0].i1;
        out[2 * (i64) blockIdx.x + 1] = nonFinite || cols < 2 ? -1 : best[0].i2;
    }
}
