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
// e < N/32 ≤ 8) for the whole call. A block is WKV6_ROWS_WARPS warps on consecutive columns of ONE head (blocks =
// H · ⌈N/8⌉; warps past column N only help stage). The head's r, k, w (and the block's 8 values) of `chunk` tokens at
// a time are staged in shared memory by the whole block, double-buffered (chunk c+1 loaded into registers before
// chunk c is computed, stored after), so global-memory latency is paid once per chunk instead of once per token.
// Per token: S[i,j] ← w_i·S[i,j] + k_i·v_j (the same fmaf as wkv6_f32), y_j = Σ_i (scale·r_i)·S[i,j] summed per lane
// then across the warp (a different order from wkv6_f32's sequential sum: equal within the recurrence tolerance).
// State [H, N_k, N_v] key-major; y must not alias r, k, v or w. Shared memory: 2 · (3·N + 8) · chunk floats, with
// (3·N + 8) · chunk ≤ 256 · WKV6_ROWS_STAGE (CudaOps.Wkv6RowsGeometry).
#define WKV6_MAX_PER_LANE 8
#define WKV6_ROWS_WARPS 8
#define WKV6_ROWS_STAGE 24

// Staged element q of the chunk starting at token t0 (layout [3][chunk][N] for r, k, w, then [chunk][8] values), 0 past the end.
__device__ __forceinline__ float wkv6_rows_element(int q, const float* r, const float* k, const float* w, const float* v,
    int t0, int tokens, int chunk, int n, i64 width, i64 base, int j0)
{
    int head = n * chunk;
    if (q < 3 * head)
    {
        int vec = q / head, rem = q - vec * head;
        int t = rem / n, i = rem - t * n;
        if (t0 + t >= tokens) return 0.f;
        const float* src = vec == 0 ? r : vec == 1 ? k : w;
        return src[(i64)(t0 + t) * width + base + i];
    }

    q -= 3 * head;
    int t = q / WKV6_ROWS_WARPS, col = j0 + (q - t * WKV6_ROWS_WARPS);
    return t0 + t < tokens && col < n ? v[(i64)(t0 + t) * width + base + col] : 0.f;
}

extern "C" __global__ void __launch_bounds__(256) wkv6_rows_f32(const float* r, const float* k, const float* v, const float* w,
    float* state, float scale, int tokens, int heads, int n, int chunk, float* y)
{
    pdl_begin();
    {
        // blockIdx.y is the sequence (CudaBackwardOps.Wkv6Sequences): windows of `tokens` rows each, states heads·n·n
        // apart; 0 for one sequence.
        const i64 rows = (i64)blockIdx.y * tokens * heads * n;
        r += rows; k += rows; v += rows; w += rows; y += rows;
        state += (i64)blockIdx.y * heads * n * n;
    }
    extern __shared__ float stage[];
    const int parts = (n + WKV6_ROWS_WARPS - 1) / WKV6_ROWS_WARPS;
    const int h = blockIdx.x / parts;
    const int j0 = (blockIdx.x - h * parts) * WKV6_ROWS_WARPS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int j = j0 + warp;
    const bool active = j < n;
    const i64 width = (i64)heads * n;
    const i64 base = (i64)h * n;
    const int per = (3 * n + WKV6_ROWS_WARPS) * chunk;
    const int head = n * chunk;
    float* column = state + (i64)h * n * n + (active ? j : 0);
    float s[WKV6_MAX_PER_LANE];
#pragma unroll
    for (int e = 0; e < WKV6_MAX_PER_LANE; e++)
    {
        int i = lane + 32 * e;
        s[e] = active && i < n ? column[(i64)i * n] : 0.f;
    }

    float staged[WKV6_ROWS_STAGE];
#pragma unroll
    for (int m = 0; m < WKV6_ROWS_STAGE; m++)
    {
        int q = threadIdx.x + 256 * m;
        staged[m] = q < per ? wkv6_rows_element(q, r, k, w, v, 0, tokens, chunk, n, width, base, j0) : 0.f;
    }

#pragma unroll
    for (int m = 0; m < WKV6_ROWS_STAGE; m++)
    {
        int q = threadIdx.x + 256 * m;
        if (q < per) stage[q] = staged[m];
    }

    __syncthreads();
    const int chunks = (tokens + chunk - 1) / chunk;
    for (int c = 0; c < chunks; c++)
    {
        const int t0 = c * chunk;
        const bool more = c + 1 < chunks;
        if (more)
        {
#pragma unroll
            for (int m = 0; m < WKV6_ROWS_STAGE; m++)
            {
                int q = threadIdx.x + 256 * m;
                staged[m] = q < per ? wkv6_rows_element(q, r, k, w, v, t0 + chunk, tokens, chunk, n, width, base, j0) : 0.f;
            }
        }

        const float* cur = stage + (c & 1) * per;
        const int steps = min(chunk, tokens - t0);
        if (active)
        {
            for (int t = 0; t < steps; t++)
            {
                const float* rt = cur + t * n;
                const float* kt = rt + head;
                const float* wt = kt + head;
                float vj = cur[3 * head + t * WKV6_ROWS_WARPS + warp];
                float acc = 0.f;
#pragma unroll
                for (int e = 0; e < WKV6_MAX_PER_LANE; e++)
                {
                    int i = lane + 32 * e;
                    if (i < n)
                    {
                        s[e] = fmaf(vj, kt[i], s[e] * wt[i]);
                        acc = fmaf(s[e], scale * rt[i], acc);
                    }
                }

                acc = warp_sum(acc);
                if (lane == 0) y[(i64)(t0 + t) * width + base + j] = acc;
            }
        }

        if (more)
        {
            float* next = stage + ((c + 1) & 1) * per;
#pragma unroll
            for (int m = 0; m < WKV6_ROWS_STAGE; m++)
            {
                int q = threadIdx.x + 256 * m;
                if (q < per) next[q] = staged[m];
            }
        }

        __syncthreads();
    }

    if (active)
    {
#pragma unroll
        for (int e = 0; e < WKV6_MAX_PER_LANE; e++)
        {
            int i = lane + 32 * e;
            if (i < n) column[(i64)i * n] = s[e];
        }
    }
}
