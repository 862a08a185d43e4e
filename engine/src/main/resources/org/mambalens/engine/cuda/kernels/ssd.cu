// Mamba-2's SSD scan, with a scalar decay per head (its gated RMSNorm shares the GEMV prologue's helpers in mambalens.cu).
// Same conventions as mambalens.cu: row-major F32, rows are tokens, a leading dimension ld is the distance
// in floats between consecutive rows, absent pointers are null. No headers: compiled at run time by NVRTC.

// PyTorch's softplus (beta 1, threshold 20), as the CPU backend computes it.
static __device__ __forceinline__ float ssd_softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }

static __device__ __forceinline__ float ssd_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The most states a lane keeps in registers: N ≤ 32 · SSD_MAX_PER_LANE.
#define SSD_MAX_PER_LANE 8

// Mamba-2's scan for T tokens of one sequence: one warp per channel (h, p), each lane holding the states
// n ≡ lane (mod 32) of that channel in registers. With Δ_t = clamp(softplus(dt_t[h] + dtBias[h]), dtMin, dtMax)
// and g = h / (H / G):
//   S_t[h, p, n] = exp(Δ_t·A[h]) · S_{t−1}[h, p, n] + Δ_t · x_t[h, p] · B_t[g, n]
//   y_t[h, p]    = Σ_n C_t[g, n] · S_t[h, p, n] + D[h] · x_t[h, p]
// x [T, H·P] (ldx), B and C [T, G·N] (ldbc), dt [T, H] (lddt), y [T, H·P] (ldy); state [H, P, N] read and
// written back (null: zeros, not kept); deltaOut [T, H] packed (may be null). N ≤ 256.
// Grid (⌈H·P / warps per block⌉), block a multiple of 32.
extern "C" __global__ void ssd_scan(float* y, int ldy, const float* x, int ldx, const float* B, const float* C, int ldbc,
                                    const float* dt, int lddt, const float* dtBias, float dtMin, float dtMax,
                                    const float* A, const float* D, float* state, float* deltaOut,
                                    int T, int H, int P, int G, int N) {
    AFTER_INPUTS();
    int lane = threadIdx.x & 31;
    long long channel = (long long) blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (channel >= (long long) H * P) return;                 // the whole warp leaves together
    int h = (int) (channel / P), g = h / (H / G);
    float s[SSD_MAX_PER_LANE];
#pragma unroll
    for (int j = 0; j < SSD_MAX_PER_LANE; j++) {
        int n = lane + 32 * j;
        s[j] = state && n < N ? state[channel * N + n] : 0.f;
    }
    float a = A[h], skip = D[h], bias = dtBias[h];
    for (int t = 0; t < T; t++) {
        float delta = fminf(dtMax, fmaxf(dtMin, ssd_softplus(dt[(long long) t * lddt + h] + bias)));
        if (deltaOut && channel % P == 0 && lane == 0) deltaOut[(long long) t * H + h] = delta;
        float decay = expf(delta * a), xv = x[(long long) t * ldx + channel], dx = delta * xv;
        const float* b = B + (long long) t * ldbc + (long long) g * N;
        const float* c = C + (long long) t * ldbc + (long long) g * N;
        float acc = 0.f;
#pragma unroll
        for (int j = 0; j < SSD_MAX_PER_LANE; j++) {
            int n = lane + 32 * j;
            if (n < N) {
                s[j] = decay * s[j] + dx * b[n];
                acc += s[j] * c[n];
            }
        }
        acc = ssd_warp_sum(acc);
        if (lane == 0) y[(long long) t * ldy + channel] = acc + skip * xv;
    }
    if (state) {
#pragma unroll
        for (int j = 0; j < SSD_MAX_PER_LANE; j++) {
            int n = lane + 32 * j;
            if (n < N) state[channel * N + n] = s[j];
        }
    }
}
