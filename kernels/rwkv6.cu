// RAD-RWKV6: TokenShift, MixShift, Rwkv6Ddlerp, Rwkv6Decay, Rwkv6BalanceKeys and the Wkv6 (GLA) recurrence.
#include "common.cuh"

// delta[t] = x[t−1] − x[t] with x[−1] = state. The host then copies x[T−1] into the state (stream-ordered).
extern "C" __global__ void token_shift_f32(const float* x, const float* state, float* delta, int tokens, int c)
{
    pdl_begin();
    GRID_STRIDE(i, (i64)tokens * c)
    {
        float previous = i < c ? state[i] : x[i - c];
        delta[i] = previous - x[i];
    }
}

// y = x + delta ⊙ mix (fused multiply-add, as the CPU reference), mix [C] of any dtype.
extern "C" __global__ void mix_shift_f32(const float* x, const float* delta, const void* mix, int mix_dtype, float* y, i64 n, int c)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = fmaf(delta[i], load_any(mix, mix_dtype, i % c), x[i]);
}

// outputs[(i·T + t)·C + j] = x + delta ⊙ (mixes[i] + lora[t, i·R : (i+1)·R] · w2[i]), i = 0..4.
extern "C" __global__ void rwkv6_ddlerp_f32(const float* x, const float* delta, const float* lora, const void* w2, int w2_dtype,
    const void* mixes, int mixes_dtype, int tokens, int c, int rank, float* outputs)
{
    pdl_begin();
    GRID_STRIDE(idx, 5LL * tokens * c)
    {
        int j = (int)(idx % c);
        i64 rest = idx / c;
        int t = (int)(rest % tokens);
        int i = (int)(rest / tokens);
        float mix = load_any(mixes, mixes_dtype, (i64)i * c + j);
        const float* l = lora + (i64)t * 5 * rank + (i64)i * rank;
        for (int r = 0; r < rank; r++) mix = fmaf(load_any(w2, w2_dtype, ((i64)i * rank + r) * c + j), l[r], mix);
        outputs[idx] = fmaf(delta[(i64)t * c + j], mix, x[(i64)t * c + j]);
    }
}

// w = exp(max(−exp(bias + d), −5)); a NaN passes the clamp so that a broken run shows.
extern "C" __global__ void rwkv6_decay_f32(const float* d, const void* bias, int bias_dtype, float* w, i64 n, int a)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float log_decay = -expf(load_any(bias, bias_dtype, i % a) + d[i]);
        w[i] = expf(log_decay != log_decay ? log_decay : fmaxf(log_decay, -5.f));
    }
}

extern "C" __global__ void rwkv6_balance_keys_f32(const float* k, const float* w, float* y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = k[i] * (1.f - w[i]);
}

// GLA recurrence, state S [H, N_k, N_v] key-major. One block per head, one thread per value column j, which
// owns S[:, j] in shared memory: S[i,j] ← w_i·S[i,j] + k_i·v_j, then y_j = Σ_i (scale·r_i)·S[i,j].
// Dynamic shared memory: (N·N + 3N) floats. y must not alias r, k, v or w. A grid of (H, S) blocks runs S sequences
// of `tokens` rows each (rows [s·T, (s+1)·T), state heads [s·H, (s+1)·H)) at once.
extern "C" __global__ void wkv6_f32(const float* r, const float* k, const float* v, const float* w, float* state, float scale,
    int tokens, int heads, int n, float* y)
{
    pdl_begin();
    // Sequence blockIdx.y of a batched call (gridDim.y independent sequences of `tokens` rows each, state [S·H, N, N]).
    i64 first = (i64)blockIdx.y * tokens * heads * n;
    r += first; k += first; v += first; w += first; y += first;
    state += (i64)blockIdx.y * heads * n * n;
    extern __shared__ float shared[];
    float* s = shared;
    float* rs = s + n * n;
    float* ks = rs + n;
    float* ws = ks + n;
    int h = blockIdx.x;
    int j = threadIdx.x;
    float* sg = state + (i64)h * n * n;
    for (int e = j; e < n * n; e += n) s[e] = sg[e];
    i64 width = (i64)heads * n;
    for (int t = 0; t < tokens; t++)
    {
        i64 o = t * width + (i64)h * n + j;
        rs[j] = scale * r[o];
        ks[j] = k[o];
        ws[j] = w[o];
        float vj = v[o];
        __syncthreads();
        float acc = 0.f;
        for (int i = 0; i < n; i++)
        {
            float value = fmaf(vj, ks[i], s[i * n + j] * ws[i]);
            s[i * n + j] = value;
            acc = fmaf(value, rs[i], acc);
        }

        y[o] = acc;
        __syncthreads();
    }

    for (int e = j; e < n * n; e += n) sg[e] = s[e];
}

// The same recurrence for T > 1 on H·N warps instead of H blocks: each value column j evolves independently given
// the head's per-token r, k, w, so a warp owns column j in registers (lane holds key rows i = lane + 32e,
// e < N/32 ≤ 8) for the whole call and the next token's vectors are loaded before the current one is computed.
// Per token: S[i,j] ← w_i·S[i,j] + k_i·v_j (the same fmaf as wkv6_f32), y_j = Σ_i (scale·r_i)·S[i,j] summed per lane
// then across the warp (a different order from wkv6_f32's sequential sum: equal within the recurrence tolerance).
// State [H, N_k, N_v] key-major; y must not alias r, k, v or w.
#define WKV6_MAX_PER_LANE 8
extern "C" __global__ void __launch_bounds__(256) wkv6_rows_f32(const float* r, const float* k, const float* v, const float* w,
    float* state, float scale, int tokens, int heads, int n, float* y)
{
    pdl_begin();
    {
        // blockIdx.y is the sequence (CudaBackwardOps.Wkv6Sequences): windows of `tokens` rows each, states heads·n·n
        // apart; 0 for one sequence.
        const i64 rows = (i64)blockIdx.y * tokens * heads * n;
        r += rows; k += rows; v += rows; w += rows; y += rows;
        state += (i64)blockIdx.y * heads * n * n;
    }
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (item >= (i64)heads * n) return;
    int h = (int)(item / n);
    int j = (int)(item % n);
    const i64 width = (i64)heads * n;
    float* column = state + (i64)h * n * n + j;
    float s[WKV6_MAX_PER_LANE];
    float rn[WKV6_MAX_PER_LANE], kn[WKV6_MAX_PER_LANE], wn[WKV6_MAX_PER_LANE];
    i64 o = (i64)h * n;
#pragma unroll
    for (int e = 0; e < WKV6_MAX_PER_LANE; e++)
    {
        int i = lane + 32 * e;
        bool in = i < n;
        s[e] = in ? column[(i64)i * n] : 0.f;
        rn[e] = in ? scale * r[o + i] : 0.f;
        kn[e] = in ? k[o + i] : 0.f;
        wn[e] = in ? w[o + i] : 0.f;
    }

    float vn = v[o + j];
    for (int t = 0; t < tokens; t++)
    {
        float rc[WKV6_MAX_PER_LANE], kc[WKV6_MAX_PER_LANE], wc[WKV6_MAX_PER_LANE];
#pragma unroll
        for (int e = 0; e < WKV6_MAX_PER_LANE; e++)
        {
            rc[e] = rn[e];
            kc[e] = kn[e];
            wc[e] = wn[e];
        }

        float vj = vn;
        i64 oc = o;
        if (t + 1 < tokens)
        {
            o += width;
#pragma unroll
            for (int e = 0; e < WKV6_MAX_PER_LANE; e++)
            {
                int i = lane + 32 * e;
                if (i < n)
                {
                    rn[e] = scale * r[o + i];
                    kn[e] = k[o + i];
                    wn[e] = w[o + i];
                }
            }

            vn = v[o + j];
        }

        float acc = 0.f;
#pragma unroll
        for (int e = 0; e < WKV6_MAX_PER_LANE; e++)
        {
            if (lane + 32 * e < n)
            {
                s[e] = fmaf(vj, kc[e], s[e] * wc[e]);
                acc = fmaf(s[e], rc[e], acc);
            }
        }

        acc = warp_sum(acc);
        if (lane == 0) y[oc + j] = acc;
    }

#pragma unroll
    for (int e = 0; e < WKV6_MAX_PER_LANE; e++)
    {
        int i = lane + 32 * e;
        if (i < n) column[(i64)i * n] = s[e];
    }
}
