// Prepended to every kernel file before NVRTC compiles it (KernelSource), then a #line directive gives the file its own
// line numbers back. What every file needs and no header can give (NVRTC has no system headers).

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
