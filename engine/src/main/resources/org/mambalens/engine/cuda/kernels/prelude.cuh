// Prepended to every kernel file before NVRTC compiles it (KernelSource), then a #line directive gives the file its own
// line numbers back. What every file needs and no header can give (NVRTC has no system headers).

#define KERNEL extern "C" __global__

typedef long long i64;

// Programmatic dependent launch (sm_90 and later): every kernel is launched so that it may start while the kernel before
// it on the stream finishes (Gpu.launch), and so every kernel calls wait_for_inputs() before it touches memory that an
// earlier kernel wrote or reads (a GEMV first loads its weights, which nothing writes); it returns once that kernel has
// finished and its writes are visible. let_dependents_start() lets the next kernel be launched in turn, its blocks
// scheduled once every block of this one has started. Elsewhere both do nothing.
__device__ __forceinline__ void wait_for_inputs() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void let_dependents_start() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// The first statement of a kernel that has nothing to load before its inputs are ready.
#define AFTER_INPUTS() \
    do {                           \
        let_dependents_start();    \
        wait_for_inputs();         \
    } while (0)

// The dot products of q [dh] with KEYS key rows (rows[u] points at row u's first dimension), one warp for all of them:
// lane l sums dimensions l, l + 32, … in order, then a butterfly adds the lanes' sums (every lane gets them). Every 128
// dimensions of all KEYS rows are loaded before their products are taken, so those loads are in flight together, and
// each row is read in coalesced passes.
template <int KEYS>
__device__ __forceinline__ void warp_key_dots(float (&dot)[KEYS], const float* const (&rows)[KEYS], const float* q, int dh) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < KEYS; u++) dot[u] = 0.f;
    for (int d0 = 0; d0 < dh; d0 += 128) {
        float kv[KEYS][4];
#pragma unroll
        for (int u = 0; u < KEYS; u++) {
#pragma unroll
            for (int i = 0; i < 4; i++) kv[u][i] = d0 + lane + 32 * i < dh ? rows[u][d0 + lane + 32 * i] : 0.f;
        }
#pragma unroll
        for (int u = 0; u < KEYS; u++) {
#pragma unroll
            for (int i = 0; i < 4; i++) if (d0 + lane + 32 * i < dh) dot[u] = fmaf(q[d0 + lane + 32 * i], kv[u][i], dot[u]);
        }
    }
#pragma unroll
    for (int u = 0; u < KEYS; u++) {
        for (int o = 16; o > 0; o >>= 1) dot[u] += __shfl_xor_sync(0xffffffffu, dot[u], o);
    }
}
