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
// a time are staged in shared memory by asynchronous copies, double-buffered (chunk c+1 in flight while chunk c is
// computed), so global-memory latency is paid once per chunk instead of once per token.
// Per token: S[i,j] ← w_i·S[i,j] + k_i·v_j (the same fmaf as wkv6_f32), y_j = Σ_i (scale·r_i)·S[i,j] summed per lane
// then across the warp (a different order from wkv6_f32's sequential sum: equal within the recurrence tolerance).
// State [H, N_k, N_v] key-major; y must not alias r, k, v or w. Shared memory: 2 · (3·N + 8) · chunk floats
// (CudaOps.RowsGeometry keeps it within 48 KiB).
#define WKV6_MAX_PER_LANE 8
#define WKV6_ROWS_WARPS 8

// Queues the copies of the chunk starting at token t0 into dst ([3][chunk][N] for r, k, w, then [chunk][8] values of
// columns j0 … j0 + 7); elements past the last token or column become 0.
__device__ __forceinline__ void wkv6_rows_stage(float* dst, const float* r, const float* k, const float* w, const float* v,
    int t0, int tokens, int chunk, int n, i64 width, i64 base, int j0)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int head = n * chunk;
#pragma unroll 1
    for (int row = warp; row < 3 * chunk; row += WKV6_ROWS_WARPS)
    {
        int vec = row / chunk, t = row - vec * chunk;
        bool in = t0 + t < tokens;
        const float* src = (vec == 0 ? r : vec == 1 ? k : w) + (in ? (i64)(t0 + t) * width + base : 0);
        float* d = dst + vec * head + t * n;
        for (int i = lane; i < n; i += 32) copy_async_f32(d + i, src + (in ? i : 0), in);
    }

    for (int q = threadIdx.x; q < chunk * WKV6_ROWS_WARPS; q += blockDim.x)
    {
        int t = q / WKV6_ROWS_WARPS, j = j0 + (q - t * WKV6_ROWS_WARPS);
        bool in = t0 + t < tokens && j < n;
        copy_async_f32(dst + 3 * head + q, v + (in ? (i64)(t0 + t) * width + base + j : 0), in);
    }

    copy_async_commit();
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

    wkv6_rows_stage(stage, r, k, w, v, 0, tokens, chunk, n, width, base, j0);
    copy_async_wait_all();
    __syncthreads();
    const int chunks = (tokens + chunk - 1) / chunk;
    for (int c = 0; c < chunks; c++)
    {
        const int t0 = c * chunk;
        if (c + 1 < chunks)
        {
            // The other buffer was last read in chunk c − 1, which every warp has finished (the barrier below).
            wkv6_rows_stage(stage + ((c + 1) & 1) * per, r, k, w, v, t0 + chunk, tokens, chunk, n, width, base, j0);
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

        copy_async_wait_all();
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
