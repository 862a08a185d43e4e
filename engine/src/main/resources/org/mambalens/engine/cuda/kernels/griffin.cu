// Griffin / RecurrentGemma kernels, and the general ones its local attention needs (rotary position
// embedding, causal attention over a ring of cached keys and values). Compiled at run time by NVRTC, so
// no #include. Conventions as mambalens.cu: row-major F32, rows are tokens, a leading dimension ld is
// the distance in floats between rows, absent pointers are null. Where the CPU kernel's arithmetic
// matters for the decode-equals-forward checks, the same float operations are spelled out (__f*_rn keep
// the compiler from fusing them, double exp/cos/sin as Java's Math).

// Keys whose dot products a warp of sliding_window_attention takes at once (their loads in flight together).
#define GRIFFIN_KEYS 8

// Sum (or max) over the whole block; blockDim.x is a multiple of 32, at most 1024. Every thread gets it.
static __device__ __forceinline__ float griffin_block_reduce(float v, bool max) {
    __shared__ float partial[32];
    for (int o = 16; o > 0; o >>= 1) {
        float other = __shfl_xor_sync(0xffffffffu, v, o);
        v = max ? fmaxf(v, other) : v + other;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();                       // partial[] may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < warps ? partial[lane] : (max ? __int_as_float(0xff800000) : 0.f);
        for (int o = 16; o > 0; o >>= 1) {
            float other = __shfl_xor_sync(0xffffffffu, w, o);
            w = max ? fmaxf(w, other) : w + other;
        }
        if (lane == 0) partial[0] = w;
    }
    __syncthreads();
    return partial[0];
}

// Java's Scalar.sigmoid: 1 / (1 + (float) exp(−x)).
static __device__ __forceinline__ float griffin_sigmoid(float x) {
    return __fdiv_rn(1.f, __fadd_rn(1.f, (float) exp(-(double) x)));
}

// Rotary position embedding (rotate_half) in place: row r of x (ldx apart) holds `heads` heads, head h from
// column h·headStride; in each, the pairs (j, j + half) for j < half turn by the angle (first + r)·f_j.
// One thread per (row, head, j): grid ⌈rows·heads·half / block⌉. Here and in the kernels below that take a position,
// positionAt (may be null) holds it instead, in device memory: a replayed decode step's graph reads the step's own.
extern "C" __global__ void rotary_rows(float* x, int ldx, int rows, int heads, int headStride, const float* f, int half,
                                       int first, const int* positionAt) {
    AFTER_INPUTS();
    if (positionAt) first = *positionAt;
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long) rows * heads * half) return;
    int j = (int) (i % half), head = (int) ((i / half) % heads), r = (int) (i / ((long long) half * heads));
    float angle = __fmul_rn((float) (first + r), f[j]);
    float c = (float) cos((double) angle), s = (float) sin((double) angle);
    float* base = x + (long long) r * ldx + (long long) head * headStride;
    float a = base[j], b = base[j + half];
    base[j] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    base[j + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

// Causal softmax attention over a ring of cached keys and values (Backend.slidingWindowAttention): T new
// tokens at positions [P, P + T), H query heads over KV key/value heads of dh (head h reads group h / (H/KV)): query t sees the positions max(0, P + t − window + 1) …
// P + t. A position ≥ P has its key/value in k/v (row p − P, ldkv apart), an earlier one in the ring
// (row p mod capacity, KV·dh wide). context [T, H·dh] rows ldc apart; scores [T·H, nmax] scratch
// (nmax ≥ the most positions a query sees); probs (may be null) [H, T, P + T], 0 where not seen.
// Grid (T, H), block a multiple of 32, dynamic shared memory block floats.
extern "C" __global__ void sliding_window_attention(float* context, int ldc, const float* q, int ldq, const float* k,
                                                    const float* v, int ldkv, const float* keyRing, const float* valueRing,
                                                    int capacity, int P, int T, int H, int KV, int dh, int window, float scale,
                                                    float* scores, int nmax, float* probs, const int* positionAt) {
    extern __shared__ float contextPartial[];          // [blockDim.x]
    AFTER_INPUTS();
    if (positionAt) P = *positionAt;
    int t = blockIdx.x, h = blockIdx.y, g = h / (H / KV), p = P + t;
    int first = p - window + 1 > 0 ? p - window + 1 : 0, n = p - first + 1;
    const float* qr = q + (long long) t * ldq + (long long) h * dh;
    float* sc = scores + ((long long) t * H + h) * nmax;
    long long ringRow = (long long) KV * dh;
    // Warp w takes keys w, w + warps, …, GRIFFIN_KEYS of them at a time (warp_key_dots: their loads in flight together).
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    float mx = __int_as_float(0xff800000);   // −∞
    for (int s0 = warp; s0 < n; s0 += warps * GRIFFIN_KEYS) {
        const float* rows[GRIFFIN_KEYS];
#pragma unroll
        for (int u = 0; u < GRIFFIN_KEYS; u++) {
            int key = first + min(s0 + u * warps, n - 1);
            rows[u] = (key >= P ? k + (long long) (key - P) * ldkv : keyRing + (long long) (key % capacity) * ringRow) + (long long) g * dh;
        }
        float dot[GRIFFIN_KEYS];
        warp_key_dots<GRIFFIN_KEYS>(dot, rows, qr, dh);
#pragma unroll
        for (int u = 0; u < GRIFFIN_KEYS; u++) {
            int s = s0 + u * warps;
            float score = __fmul_rn(dot[u], scale);
            if (s < n) {
                if (lane == 0) sc[s] = score;
                mx = fmaxf(mx, score);
            }
        }
    }
    mx = griffin_block_reduce(mx, true);
    float sum = 0.f;
    for (int s = threadIdx.x; s < n; s += blockDim.x) {
        float e = (float) exp((double) (sc[s] - mx));
        sc[s] = e;
        sum += e;
    }
    sum = griffin_block_reduce(sum, false);            // its barriers also make every sc[] write visible
    // The context: groups of dh threads take every groups-th key (a decode step's one query uses the whole block), their
    // partial sums added in group order; dimension d of group q sums its keys in order.
    float* out = context + (long long) t * ldc + (long long) h * dh;
    int groups = blockDim.x / dh;
    for (int d0 = 0; d0 < dh; d0 += blockDim.x) {      // one pass when dh ≤ blockDim.x
        int d = d0 + threadIdx.x % min(dh, (int) blockDim.x), group = groups > 0 ? threadIdx.x / dh : 0, stride = max(groups, 1);
        float acc = 0.f;
        if (group < stride && d < dh) {
            for (int s0 = group; s0 < n; s0 += stride * GRIFFIN_KEYS) {   // GRIFFIN_KEYS keys' loads in flight, summed in order
                float weight[GRIFFIN_KEYS], value[GRIFFIN_KEYS];
#pragma unroll
                for (int u = 0; u < GRIFFIN_KEYS; u++) {
                    int s = min(s0 + u * stride, n - 1), key = first + s;
                    const float* vr = key >= P ? v + (long long) (key - P) * ldkv + (long long) g * dh
                                               : valueRing + (long long) (key % capacity) * ringRow + (long long) g * dh;
                    weight[u] = sc[s];
                    value[u] = vr[d];
                }
#pragma unroll
                for (int u = 0; u < GRIFFIN_KEYS; u++) if (s0 + u * stride < n) acc = fmaf(weight[u] / sum, value[u], acc);
            }
        }
        contextPartial[threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.x < min(dh - d0, (int) blockDim.x)) {
            float total = 0.f;
            for (int q = 0; q < stride; q++) total += contextPartial[q * min(dh, (int) blockDim.x) + threadIdx.x];
            out[d0 + threadIdx.x] = total;
        }
        __syncthreads();
    }
    if (probs) {
        int span = P + T;
        float* row = probs + ((long long) h * T + t) * span;
        for (int j = threadIdx.x; j < span; j += blockDim.x) row[j] = j >= first && j <= p ? sc[j - first] / sum : 0.f;
    }
}

// Writes the keys k and values v [T, width] (rows ldkv apart) of positions [P, P + T) into rows
// (P + t) mod capacity of the rings, the last min(T, capacity) of them. One thread per value written.
extern "C" __global__ void ring_append(float* keyRing, float* valueRing, const float* k, const float* v, int ldkv, int width,
                                       int capacity, int P, int T, const int* positionAt) {
    AFTER_INPUTS();
    if (positionAt) P = *positionAt;
    int m = T < capacity ? T : capacity;
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long) m * width) return;
    int t = T - m + (int) (i / width), col = (int) (i % width);
    long long slot = (long long) ((P + t) % capacity) * width + col;
    keyRing[slot] = k[(long long) t * ldkv + col];
    valueRing[slot] = v[(long long) t * ldkv + col];
}

// The RG-LRU's gates for every token at once (they depend on x_t alone): per channel c of block
// c0 = ⌊c/bw⌋·bw, output o = c − c0, r = σ(b_a[c] + Σ_in x[t, c0 + in]·W_a[c0 + in, o]), likewise i;
// log a = −8·r·softplusΛ[c]; a[t, c] = exp(log a); b[t, c] (may be null) = i·√(1 − a²) (i at position 0);
// u[t, c] = x·i·√(1 − a²), the input term of the recurrence (the scan turns it into h). a, b, u [T, W]
// packed; gate weights [H, bw, bw] (in, out). Grid (⌈W/block⌉, T).
extern "C" __global__ void griffin_rg_lru_gates(float* a, float* b, float* u, const float* x, int ldx, const float* inputGate,
                                                const float* inputGateBias, const float* recurrentGate,
                                                const float* recurrentGateBias, const float* softplusLambda, int W, int bw,
                                                int position, const int* positionAt) {
    AFTER_INPUTS();
    if (positionAt) position = *positionAt;
    int c = blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
    if (c >= W) return;
    int c0 = c / bw * bw, o = c - c0;
    const float* xr = x + (long long) t * ldx;
    float inputPre = inputGateBias[c], recurrentPre = recurrentGateBias[c];
    for (int in0 = 0; in0 < bw; in0 += 32) {           // 32 inputs' loads written out first, in flight together; summed in order
        float value[32], wi[32], wr[32];
#pragma unroll
        for (int j = 0; j < 32; j++) {
            int in = min(in0 + j, bw - 1);
            long long w = (long long) (c0 + in) * bw + o;
            value[j] = xr[c0 + in];
            wi[j] = inputGate[w];
            wr[j] = recurrentGate[w];
        }
#pragma unroll
        for (int j = 0; j < 32; j++) {
            if (in0 + j < bw) {
                inputPre = __fadd_rn(inputPre, __fmul_rn(value[j], wi[j]));
                recurrentPre = __fadd_rn(recurrentPre, __fmul_rn(value[j], wr[j]));
            }
        }
    }
    float i = griffin_sigmoid(inputPre), logA = __fmul_rn(__fmul_rn(-8.f, griffin_sigmoid(recurrentPre)), softplusLambda[c]);
    float at = (float) exp((double) logA);
    float multiplier = position + t == 0 ? 1.f : (float) sqrt((double) __fsub_rn(1.f, (float) exp((double) __fmul_rn(2.f, logA))));
    long long k = (long long) t * W + c;
    a[k] = at;
    if (b) b[k] = __fmul_rn(i, multiplier);
    u[k] = __fmul_rn(__fmul_rn(xr[c], i), multiplier);
}

// The RG-LRU's recurrence over T tokens: h_t = a_t·h_{t−1} + u_t (position 0 resets: h = u), y holding
// u on entry and h on return, [T, W] packed; state [W] (null: zeros, not kept). One thread per channel.
extern "C" __global__ void griffin_rg_lru_scan(float* y, const float* a, float* state, int T, int W, int position, const int* positionAt) {
    AFTER_INPUTS();
    if (positionAt) position = *positionAt;
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= W) return;
    float h = state ? state[c] : 0.f;
    for (int t = 0; t < T; t++) {
        long long k = (long long) t * W + c;
        h = __fadd_rn(position + t == 0 ? 0.f : __fmul_rn(a[k], h), y[k]);
        y[k] = h;
    }
    if (state) state[c] = h;
}

// x = cap·tanh(x / cap) over n values: a logit soft cap.
extern "C" __global__ void soft_cap(float* x, float cap, long long n) {
    AFTER_INPUTS();
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = __fmul_rn((float) tanh((double) __fdiv_rn(x[i], cap)), cap);
}
