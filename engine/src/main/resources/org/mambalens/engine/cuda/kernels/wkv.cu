// RWKV-4's kernels: the token shift and the gated WKV recurrence (Backend.tokenShift, Backend.wkv).
// Conventions as in mambalens.cu: row-major F32, rows are tokens, ld = floats between rows. No headers:
// NVRTC compiles this file at run time.

// out[t, j] = x[t, j]·mix[j] + x[t−1, j]·(1 − mix[j]) for T rows of D (x's rows ldx apart, out packed),
// with x[−1] = shift[j] (only read). One thread per element.
extern "C" __global__ void token_shift(float* out, const float* x, int ldx, const float* mix, const float* shift, int T, int D) {
    AFTER_INPUTS();
    i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (i64) T * D) return;
    int t = (int) (i / D), j = (int) (i % D);
    float prev = t == 0 ? shift[j] : x[(i64) (t - 1) * ldx + j];
    out[i] = x[(i64) t * ldx + j] * mix[j] + prev * (1.f - mix[j]);
}

// out[t, a] = gate[t, a]·wkv_t[a] over T tokens of A channels (all packed [T, A]), from and into the state
// [3A]: numerator, denominator, maximum exponent per channel. decay w = −exp(time_decay), bonus u.
// One thread per channel, sequential over the tokens; the same steps as the CPU's Wkv.recurrence.
extern "C" __global__ void wkv_forward(float* out, const float* gate, const float* k, const float* v, const float* decay,
                                       const float* bonus, float* state, int T, int A) {
    AFTER_INPUTS();
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= A) return;
    float num = state[a], den = state[A + a], max = state[2 * A + a];
    float w = decay[a], u = bonus[a];
    for (int t = 0; t < T; t++) {
        i64 o = (i64) t * A + a;
        float kt = k[o], vt = v[o];
        float m = fmaxf(max, kt + u);                  // output: the past and the bonus-weighted present
        float e1 = expf(max - m), e2 = expf(kt + u - m);
        out[o] = gate[o] * (e1 * num + e2 * vt) / (e1 * den + e2);
        m = fmaxf(max + w, kt);                        // state: decay the past, add the present
        e1 = expf(max + w - m);
        e2 = expf(kt - m);
        num = e1 * num + e2 * vt;
        den = e1 * den + e2;
        max = m;
    }
    state[a] = num;
    state[A + a] = den;
    state[2 * A + a] = max;
}
