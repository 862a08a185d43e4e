// MambaLens CUDA kernels of the causal-attention language models (GPT-NeoX / Pythia): the head-major
// key/value cache, and causal softmax attention over it (rotary is griffin.cu's rotary_rows). Same conventions as mambalens.cu:
// row-major F32, a leading dimension ld is the distance in floats between consecutive rows, optional
// pointers are null. No #include: the file compiles on its own (nvcc --ptx, or NVRTC at run time).

typedef long long attn_i64;

#define ATTN_NEG_INF __int_as_float(0xff800000)

// Keys whose dot products a warp takes at once (their loads in flight together).
#define ATTN_KEYS 8

static __device__ __forceinline__ float attn_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ __forceinline__ float attn_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum (or max) over the whole block, through `partial` (32 floats of shared memory); blockDim.x is a
// multiple of 32. Every thread gets the result.
static __device__ __forceinline__ float attn_block_reduce(float v, bool max, float* partial) {
    v = max ? attn_warp_max(v) : attn_warp_sum(v);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();                       // partial[] may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < warps ? partial[lane] : (max ? ATTN_NEG_INF : 0.f);
        w = max ? attn_warp_max(w) : attn_warp_sum(w);
        if (lane == 0) partial[0] = w;
    }
    __syncthreads();
    return partial[0];
}

// cache[g, first + r, :] = x[r, g·headStride … + dh) into a head-major cache [heads, capacity, dh]. One thread per value.
// Here and in causal_attention, firstAt (may be null) holds `first` instead, in device memory: a replayed decode step's
// graph reads the step's own position.
extern "C" __global__ void store_heads(float* cache, int capacity, int first, const float* x, attn_i64 ldx, int headStride,
                                       int rows, int heads, int dh, const int* firstAt) {
    AFTER_INPUTS();
    if (firstAt) first = *firstAt;
    attn_i64 i = (attn_i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (attn_i64) rows * heads * dh) return;
    int j = (int) (i % dh);
    attn_i64 rg = i / dh;
    int g = (int) (rg % heads), r = (int) (rg / heads);
    cache[((attn_i64) g * capacity + first + r) * dh + j] = x[r * ldx + (attn_i64) g * headStride + j];
}

// Causal softmax attention of L queries at positions first + t over a head-major cache [kvHeads, capacity, dh]
// (see Backend.causalAttention). Grid (L, heads); block a multiple of 32 (of at least 32); dynamic shared memory
// (dh + blockDim.x + 32) floats. The probabilities of query t and head h go to scores[(h·L + t)·T …+ T),
// T = first + L, 0 outside the visible range [lo, p] (the caller's probs, or scratch).
extern "C" __global__ void causal_attention(float* context, attn_i64 ldContext, const float* q, attn_i64 ldq, int qHeadStride,
                                            const float* keys, const float* values, int capacity, int L, int heads, int kvHeads,
                                            int dh, float scale, int first, int window, float* scores, const int* firstAt) {
    AFTER_INPUTS();
    if (firstAt) first = *firstAt;
    extern __shared__ float attn_shared[];
    float* qs = attn_shared;                       // [dh]
    float* partial = attn_shared + dh;             // [blockDim.x]: the context's partial sums
    float* reduce = partial + blockDim.x;          // [32]
    int t = blockIdx.x, h = blockIdx.y, g = h / (heads / kvHeads), T = first + L;
    int p = first + t, lo = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
    const float* k = keys + (attn_i64) g * capacity * dh;
    const float* v = values + (attn_i64) g * capacity * dh;
    float* row = scores + ((attn_i64) h * L + t) * T;
    const float* qh = q + t * ldq + (attn_i64) h * qHeadStride;
    for (int j = threadIdx.x; j < dh; j += blockDim.x) qs[j] = qh[j];
    __syncthreads();

    // Warp w takes keys lo + w, lo + w + warps, …, ATTN_KEYS of them at a time (warp_key_dots: their loads in flight together).
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    float m = ATTN_NEG_INF;
    for (int s0 = lo + warp; s0 <= p; s0 += warps * ATTN_KEYS) {
        const float* rows[ATTN_KEYS];
#pragma unroll
        for (int u = 0; u < ATTN_KEYS; u++) rows[u] = k + (attn_i64) min(s0 + u * warps, p) * dh;
        float dot[ATTN_KEYS];
        warp_key_dots<ATTN_KEYS>(dot, rows, qs, dh);
#pragma unroll
        for (int u = 0; u < ATTN_KEYS; u++) {
            int s = s0 + u * warps;
            float score = dot[u] * scale;
            if (s <= p) {
                if (lane == 0) row[s] = score;
                m = fmaxf(m, score);
            }
        }
    }
    m = attn_block_reduce(m, true, reduce);
    float sum = 0.f;
    for (int s = lo + threadIdx.x; s <= p; s += blockDim.x) {
        float e = expf(row[s] - m);
        row[s] = e;
        sum += e;
    }
    float inv = 1.f / attn_block_reduce(sum, false, reduce);
    for (int s = threadIdx.x; s < T; s += blockDim.x) row[s] = s >= lo && s <= p ? row[s] * inv : 0.f;
    __syncthreads();                               // the row, written by every thread, is read by all below

    float* out = context + t * ldContext + (attn_i64) h * dh;
    if (dh <= blockDim.x) {                        // groups of dh threads take every groups-th position
        int groups = blockDim.x / dh, j = threadIdx.x % dh, group = threadIdx.x / dh;
        float acc = 0.f;
        if (group < groups) {
            for (int s0 = lo + group; s0 <= p; s0 += groups * ATTN_KEYS) {   // ATTN_KEYS keys' loads in flight, summed in order
                float weight[ATTN_KEYS], value[ATTN_KEYS];
#pragma unroll
                for (int u = 0; u < ATTN_KEYS; u++) {
                    int s = min(s0 + u * groups, p);
                    weight[u] = row[s];
                    value[u] = v[(attn_i64) s * dh + j];
                }
#pragma unroll
                for (int u = 0; u < ATTN_KEYS; u++) if (s0 + u * groups <= p) acc += weight[u] * value[u];
            }
        }
        partial[threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.x < dh) {
            float total = 0.f;
            for (int q2 = 0; q2 < groups; q2++) total += partial[q2 * dh + threadIdx.x];
            out[threadIdx.x] = total;
        }
    } else {
        for (int j = threadIdx.x; j < dh; j += blockDim.x) {
            float acc = 0.f;
#pragma unroll 8
            for (int s = lo; s <= p; s++) acc += row[s] * v[(attn_i64) s * dh + j];
            out[j] = acc;
        }
    }
}
