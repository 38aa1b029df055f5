// RAD-RWKV7: Rwkv7Decay, Rwkv7Keys, Rwkv7ValueResidual and the Wkv7 (generalised delta rule) recurrence.
#include "common.cuh"

// w = exp(scale · σ(w0 + z)), scale = −e^−0.5 passed from the host as the CPU rounds it.
extern "C" __global__ void rwkv7_decay_f32(const float* z, const void* w0, int w0_dtype, float scale, float* w, i64 n, int a)
{
    pdl_begin();
    GRID_STRIDE(i, n) w[i] = expf(sigmoid_(z[i] + load_any(w0, w0_dtype, i % a)) * scale);
}

// One warp per (token, head): κ = normalize(k or k ⊙ k_k) with eps 1e-12, removal = −κ, replacement = κ ⊙ a,
// k̃ = k ⊙ (1 − w + a) (balanced) or k ⊙ (1 + (a − 1) ⊙ k_a) (stock).
extern "C" __global__ void rwkv7_keys_f32(const float* k, const float* w, const float* a, const void* key_scale, int key_scale_dtype,
    const void* iclr_mix, int iclr_mix_dtype, int tokens, int width, int n, int balanced,
    float* removal, float* replacement, float* k_tilde)
{
    pdl_begin();
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    int heads = width / n;
    if (item >= (i64)tokens * heads) return;
    int h = (int)(item % heads);
    i64 o = item * n;
    float sum = 0.f;
    for (int i = lane; i < n; i += 32)
    {
        float kappa = balanced ? k[o + i] : k[o + i] * load_any(key_scale, key_scale_dtype, (i64)h * n + i);
        sum = fmaf(kappa, kappa, sum);
    }

    float inv = 1.f / fmaxf(sqrtf(warp_sum(sum)), 1e-12f);
    for (int i = lane; i < n; i += 32)
    {
        i64 p = o + i;
        float kj = k[p];
        float ai = a[p];
        float kappa = (balanced ? kj : kj * load_any(key_scale, key_scale_dtype, (i64)h * n + i)) * inv;
        k_tilde[p] = balanced ? kj * (1.f - w[p] + ai) : kj * (1.f + (ai - 1.f) * load_any(iclr_mix, iclr_mix_dtype, (i64)h * n + i));
        removal[p] = -kappa;
        replacement[p] = kappa * ai;
    }
}

// Rwkv7Keys and (has_residual) the value residual v ← v + (v_first − v) ⊙ ν in one launch, one warp per (token,
// head): 32-thread blocks for few items (at decode a 7B layer has 28 heads: 28 blocks on 28 SMs, not 7), 256-thread
// blocks for many (a prefill: 32-thread blocks hit the SM's block limit, 32 warps, and at head dim 64 ran at half the
// memory bandwidth). The body is common.cuh's rwkv7_keys_vres_head (shared with rwkv7_rope_keys_rows_f32 below).
// Head dim ≤ 256.
extern "C" __global__ void __launch_bounds__(256) rwkv7_keys_vres_f32(const float* k, const float* w, const float* a,
    const void* key_scale, int key_scale_dtype, const void* iclr_mix, int iclr_mix_dtype, int tokens, int width, int n,
    int balanced, float* removal, float* replacement, float* k_tilde, float* v, const float* v_first, const float* nu,
    int has_residual)
{
    i64 item = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    int heads = width / n;
    int h = (int)(item % heads);
    float ks[KEYS_PER_LANE], ka[KEYS_PER_LANE];
    rwkv7_keys_weights(key_scale, key_scale_dtype, iclr_mix, iclr_mix_dtype, h, n, lane, balanced, ks, ka);
    pdl_begin();
    if (item >= (i64)tokens * heads) return;
    rwkv7_keys_vres_head(k, w, a, ks, ka, item * n, n, lane, balanced, removal, replacement, k_tilde, v, v_first, nu, has_residual);
}

// Row positions of rwkv7_rope_keys_rows_f32 (64 rows a launch, decode_batch.cu's DECODE_ROWS), passed by value.
#define ROPE_KEYS_ROWS 64
struct RowPositions
{
    int value[ROPE_KEYS_ROWS];
};

// IOps.Rwkv7RopeKeysValueResidualRows: rope_expand_rows_f32 (decode_batch.cu) then rwkv7_keys_vres_f32 on the expanded
// k and v, one 32-thread block per (row b, query head h): H·B blocks (28 at batch 1 on a 7B layer, where rope_expand_f32 had 7).
// The warp rotates its r head in place and writes kh, vh of head h (k's pair of KV head h / groups rotated from k,
// which is only read: the composed path's in-place rotation of k would race between the group's blocks), then, after
// __syncwarp (the warp's own global writes are visible to it), runs rwkv7_keys_vres_head on kh, vh: the same fp32
// operations as the two kernels, so the same bits. Position of row b: table.value[b] (+ *position_offset when not null:
// a recorded batch-1 step reads its position from the step buffer, as rope_f32). r, kh, vh, w, a, removal,
// replacement, k_tilde, v_first, nu [rows, H·N]; k, v [rows, KVH·N]. N even, ≤ 256.
extern "C" __global__ void __launch_bounds__(32) rwkv7_rope_keys_rows_f32(float* r, const float* k, const float* v, float* kh,
    float* vh, int rows, int kv_heads, int groups, int n, RowPositions table, const int* position_offset, float theta,
    const float* w, const float* a, const void* key_scale, int key_scale_dtype, const void* iclr_mix, int iclr_mix_dtype,
    int balanced, float* removal, float* replacement, float* k_tilde, const float* v_first, const float* nu, int has_residual)
{
    int heads = kv_heads * groups;
    int item = blockIdx.x;
    int lane = threadIdx.x;
    int h = item % heads;
    int b = item / heads;
    float ks[KEYS_PER_LANE], ka[KEYS_PER_LANE];
    rwkv7_keys_weights(key_scale, key_scale_dtype, iclr_mix, iclr_mix_dtype, h, n, lane, balanced, ks, ka);
    pdl_begin();
    if (b >= rows) return;
    int position = table.value[b];
    if (position_offset != 0) position += *position_offset;
    int half = n / 2;
    i64 o = ((i64)b * heads + h) * n;
    const float* kp = k + ((i64)b * kv_heads + h / groups) * n;
    const float* vp = v + ((i64)b * kv_heads + h / groups) * n;
    for (int i = lane; i < half; i += 32)
    {
        float cf, sf;
        rope_cos_sin((double)position, i, n, theta, cf, sf);
        rwkv7_rope_head_pair(r + o, r + o, kp, vp, kh + o, vh + o, i, half, cf, sf);
    }

    __syncwarp();
    rwkv7_keys_vres_head(kh, w, a, ks, ka, o, n, lane, balanced, removal, replacement, k_tilde, vh, v_first, nu, has_residual);
}

extern "C" __global__ void rwkv7_value_residual_f32(const float* v, const float* v_first, const float* nu, float* y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float vi = v[i];
        y[i] = vi + (v_first[i] - vi) * nu[i];
    }
}

// Generalised delta rule, state S [H, N_v, N_k] value-major. One block per head, one thread per value row i,
// which owns S[i, :] in shared memory (rows padded to N + 1 floats against bank conflicts):
// sa = Σ_j a_j S[i,j]; S[i,j] ← S[i,j]·w_j + k_j·v_i + sa·b_j; y_i = Σ_j S[i,j]·r_j.
// Dynamic shared memory: (N·(N + 1) + 5N) floats. y must not alias the inputs. A grid of (H, S) blocks runs S sequences
// of `tokens` rows each (rows [s·T, (s+1)·T), state heads [s·H, (s+1)·H)) at once.
extern "C" __global__ void wkv7_f32(const float* r, const float* w, const float* k, const float* v, const float* a, const float* b,
    float* state, int tokens, int heads, int n, float* y)
{
    pdl_begin();
    // Sequence blockIdx.y of a batched call (gridDim.y independent sequences of `tokens` rows each, state [S·H, N, N]).
    i64 first = (i64)blockIdx.y * tokens * heads * n;
    r += first; w += first; k += first; v += first; a += first; b += first; y += first;
    state += (i64)blockIdx.y * heads * n * n;
    extern __shared__ float shared[];
    int pitch = n + 1;
    float* s = shared;
    float* rs = s + n * pitch;
    float* ws = rs + n;
    float* ks = ws + n;
    float* as = ks + n;
    float* bs = as + n;
    int h = blockIdx.x;
    int i = threadIdx.x;
    float* sg = state + (i64)h * n * n;
    for (int e = i; e < n * n; e += n) s[(e / n) * pitch + e % n] = sg[e];
    __syncthreads();
    float* row = s + i * pitch;
    i64 width = (i64)heads * n;
    for (int t = 0; t < tokens; t++)
    {
        i64 o = t * width + (i64)h * n + i;
        rs[i] = r[o];
        ws[i] = w[o];
        ks[i] = k[o];
        as[i] = a[o];
        bs[i] = b[o];
        float vi = v[o];
        __syncthreads();
        float sa = 0.f;
        for (int j = 0; j < n; j++) sa = fmaf(as[j], row[j], sa);
        float acc = 0.f;
        for (int j = 0; j < n; j++)
        {
            float value = fmaf(bs[j], sa, fmaf(ks[j], vi, row[j] * ws[j]));
            row[j] = value;
            acc = fmaf(value, rs[j], acc);
        }

        y[o] = acc;
        __syncthreads();
    }

    for (int e = i; e < n * n; e += n) sg[e] = s[(e / n) * pitch + e % n];
}

// The same recurrence for one token (decode): one warp per value row i of a head, the lanes across the row's
// N keys, so the state is read and written once, coalesced, by H·N warps instead of H blocks. A lane keeps
// N/32 (≤ 8) elements of the row in registers. y must not alias the inputs.
// gate not null (IOps.Wkv7DecodeScaleGate): y_i = (acc · scale) · gate_i, the two fp32 roundings of scale_multiply_f32,
// instead of y_i = acc; gate [H·N] like y, not aliasing it. The row's arithmetic is common.cuh's wkv7_decode_row.
extern "C" __global__ void __launch_bounds__(256) wkv7_decode_f32(const float* r, const float* w, const float* k, const float* v,
    const float* a, const float* b, float* state, int heads, int n, float* y, float scale, const float* gate)
{
    pdl_begin();
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (item >= (i64)heads * n) return;
    int h = (int)(item / n);
    int i = (int)(item % n);
    const i64 o = (i64)h * n;
    float* row = state + item * n;
    float s[WKV7_MAX_PER_LANE];
    wkv7_load_row(row, s, n, lane);
    float acc = wkv7_decode_row(row, s, r + o, w + o, k + o, a + o, b + o, v[o + i], n, lane);
    if (lane == 0) y[o + i] = gate ? (acc * scale) * gate[o + i] : acc;
}

// Prefill (T > 1), register-tiled: the same per-row arithmetic as wkv7_decode_f32 (so bit-identical to T decode
// calls). Every value row of every head evolves independently given the head's per-token r, w, k, a, b; the layout
// lets one shared-memory read of the token vectors feed several rows and a row need 3 shuffles per token (a warp per
// row, the previous kernel, read the vectors once per row and summed with two 5-level warp sums: 2.65 ms a 7B layer
// at T = 2048 against 0.67 ms here, H200).
// - Decode sums a row over 32 "virtual lanes" v (v holds keys j = v + 32e, e < NE, summed in e order), then
//   warp_sum's butterfly xor 16, 8, 4, 2, 1. Here a row lives on L (8 or 16) physical lanes p of one lane group; lane
//   p holds the Q = 32/L virtual lanes v = p + L·q, so the levels xor 16 … xor L are additions inside the lane
//   (wkv7_tile_fold) and xor L/2 … 1 are shuffles within the group: the same tree, the same bits.
// - A thread holds R rows × Q·NE keys of the state in registers; a warp is 32/L groups, a block WKV7_TILE_WARPS
//   warps: (32/L) · R · WARPS rows of ONE head. Blocks = H · ⌈N / block rows⌉ (× sequences in y).
// - The head's r, w, k, a, b of `chunk` tokens (and the block's values) are staged in shared memory by cp.async,
//   double-buffered, each vector permuted so that a lane group reads 128 consecutive bytes (a float4 a lane; see
//   wkv7_tile_key); keys j ≥ N are 0. s ← k·v_i + s·w is computed while sa's shuffles are in flight.
// - y: the per-token row sums of L tokens are reduced together by a reduce-scatter over the group (xor L/2 … 1:
//   the same tree as warp_sum, L − 1 shuffles for L tokens instead of L·log2 L); lane p ends with token p of the L.
// Padding keys (N not a multiple of 32, or NE rounded up) hold 0 in state and vectors: fmaf(0, 0, s) = s for every
// partial sum s (they start at +0 and round-to-nearest never produces −0 from a non-zero sum), so the bits match
// decode's `if (j < n)`; only a non-finite sa or v_i (every output already non-finite) can make a padding key NaN.
// State [H, N_v, N_k] value-major; y must not alias the inputs. Shared memory: 2 · chunk · (5 · 32·NE + rows) floats.
#define WKV7_TILE_WARPS 4

// A staged vector is permuted: lane p's c-th key (c = q·NE + e, key j = p + L·q + 32e) sits at (c / 4)·4L + 4p + c % 4,
// so the L lanes of a group read one float4 each from 16·L consecutive bytes (no bank conflicts; the groups of a
// warp read the same bytes). wkv7_tile_key inverts it: the key staged at position x < 32·NE.
template <int NE, int L> __device__ __forceinline__ int wkv7_tile_key(int x)
{
    int p = (x % (4 * L)) >> 2, c = ((x / (4 * L)) << 2) + (x & 3);
    return p + L * (c / NE) + 32 * (c % NE);
}

template <int NE, int R, int L> __device__ __forceinline__ void wkv7_tile_stage(float* dst, const float* r, const float* w,
    const float* k, const float* a, const float* b, const float* v, int t0, int tokens, int chunk, int n, i64 width,
    i64 base, int i0)
{
    constexpr int NP = 32 * NE;
    constexpr int ROWS = (32 / L) * R * WKV7_TILE_WARPS;
    const int vec_len = NP * chunk;
    // A thread stages fixed positions of every token's vectors (consecutive lanes, consecutive positions).
    for (int x = threadIdx.x; x < NP; x += blockDim.x)
    {
        const int j = wkv7_tile_key<NE, L>(x);
        const bool key = j < n;
        const i64 at = base + (key ? j : 0);
#pragma unroll 1
        for (int t = 0; t < chunk; t++)
        {
            const bool in = key && t0 + t < tokens;
            const i64 o = in ? (i64)(t0 + t) * width + at : 0;
            float* d = dst + t * NP + x;
            copy_async_f32(d, r + o, in);
            copy_async_f32(d + vec_len, w + o, in);
            copy_async_f32(d + 2 * vec_len, k + o, in);
            copy_async_f32(d + 3 * vec_len, a + o, in);
            copy_async_f32(d + 4 * vec_len, b + o, in);
        }
    }

    for (int q = threadIdx.x; q < chunk * ROWS; q += blockDim.x)
    {
        int t = q / ROWS, i = i0 + (q - t * ROWS);
        bool in = t0 + t < tokens && i < n;
        copy_async_f32(dst + 5 * vec_len + q, v + (in ? (i64)(t0 + t) * width + base + i : 0), in);
    }

    copy_async_commit();
}

// warp_sum's levels xor 16 … xor L inside the lane: Q = 4 (L = 8: virtual lanes p, p + 8, p + 16, p + 24 are
// q = 0 … 3, xor 16 pairs q with q ^ 2, xor 8 with q ^ 1) or Q = 2 (L = 16: xor 16 pairs q = 0 and 1).
template <int Q> __device__ __forceinline__ float wkv7_tile_fold(const float* part)
{
    if constexpr (Q == 4) return (part[0] + part[2]) + (part[1] + part[3]);
    else return part[0] + part[1];
}

template <int NE, int R, int L> __device__ __forceinline__ void wkv7_tile(const float* r, const float* w, const float* k,
    const float* v, const float* a, const float* b, float* state, int tokens, int heads, int n, int chunk, float* y)
{
    constexpr int Q = 32 / L;
    constexpr int E = Q * NE;
    constexpr int NP = 32 * NE;
    constexpr int ROWS = Q * R * WKV7_TILE_WARPS;
    static_assert(E % 4 == 0, "a lane reads its keys as float4");
    pdl_begin();
    {
        const i64 rows = (i64)blockIdx.y * tokens * heads * n;
        r += rows; w += rows; k += rows; v += rows; a += rows; b += rows; y += rows;
        state += (i64)blockIdx.y * heads * n * n;
    }
    extern __shared__ float stage[];
    const int parts = (n + ROWS - 1) / ROWS;
    const int h = blockIdx.x / parts;
    const int i0 = (blockIdx.x - h * parts) * ROWS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int p = lane & (L - 1);
    const int local = (warp * Q + lane / L) * R; // the thread's first row, within the block
    const i64 width = (i64)heads * n;
    const i64 base = (i64)h * n;
    const int per = (5 * NP + ROWS) * chunk;
    const int vec_len = NP * chunk;

    // s[rr][q·NE + e] = S[i0 + local + rr, p + L·q + 32e] (0 past N or past the last row).
    float s[R][E];
#pragma unroll
    for (int rr = 0; rr < R; rr++)
    {
        int i = i0 + local + rr;
#pragma unroll
        for (int c = 0; c < E; c++)
        {
            int j = p + L * (c / NE) + 32 * (c % NE);
            s[rr][c] = i < n && j < n ? state[(base + i) * n + j] : 0.f;
        }
    }

    wkv7_tile_stage<NE, R, L>(stage, r, w, k, a, b, v, 0, tokens, chunk, n, width, base, i0);
    copy_async_wait_all();
    __syncthreads();
    const int chunks = (tokens + chunk - 1) / chunk;
    for (int c = 0; c < chunks; c++)
    {
        const int t0 = c * chunk;
        if (c + 1 < chunks)
        {
            // The other buffer was last read in chunk c − 1, which every warp has finished (the barrier below).
            wkv7_tile_stage<NE, R, L>(stage + ((c + 1) & 1) * per, r, w, k, a, b, v, t0 + chunk, tokens, chunk, n, width, base, i0);
        }

        const float* cur = stage + (c & 1) * per;
        const int steps = min(chunk, tokens - t0);
#pragma unroll 1
        for (int g0 = 0; g0 < steps; g0 += L)
        {
            // acc[u][rr]: this lane's part (virtual lanes folded) of y for token g0 + u, row rr.
            float acc[L][R];
#pragma unroll
            for (int u = 0; u < L; u++)
            {
#pragma unroll
                for (int rr = 0; rr < R; rr++) acc[u][rr] = 0.f;
                if (g0 + u < steps)
                {
                    const int t = g0 + u;
                    const float* rt = cur + t * NP + 4 * p;
                    const float* wt = rt + vec_len;
                    const float* kt = wt + vec_len;
                    const float* at = kt + vec_len;
                    const float* bt = at + vec_len;
                    float vi[R], sa[R], part[R][Q];
#pragma unroll
                    for (int rr = 0; rr < R; rr++)
                    {
                        vi[rr] = cur[5 * vec_len + t * ROWS + local + rr];
#pragma unroll
                        for (int q = 0; q < Q; q++) part[rr][q] = 0.f;
                    }

                    // Keys in increasing c = q·NE + e: each virtual lane q sums its keys in e order, as decode does.
#pragma unroll
                    for (int c4 = 0; c4 < E; c4 += 4)
                    {
                        float4 x = *(const float4*)(at + L * c4);
                        const float xa[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
                        for (int rr = 0; rr < R; rr++)
                        {
#pragma unroll
                            for (int d = 0; d < 4; d++)
                            {
                                part[rr][(c4 + d) / NE] = fmaf(xa[d], s[rr][c4 + d], part[rr][(c4 + d) / NE]);
                            }
                        }
                    }

#pragma unroll
                    for (int rr = 0; rr < R; rr++)
                    {
                        sa[rr] = wkv7_tile_fold<Q>(part[rr]);
#pragma unroll
                        for (int q = 0; q < Q; q++) part[rr][q] = 0.f;
                    }

#pragma unroll
                    for (int o = L / 2; o > 0; o >>= 1)
                    {
#pragma unroll
                        for (int rr = 0; rr < R; rr++) sa[rr] += __shfl_xor_sync(0xffffffffu, sa[rr], o);
                    }

                    // s ← k·v_i + s·w does not need sa: it can issue while the shuffles above are in flight.
#pragma unroll
                    for (int c4 = 0; c4 < E; c4 += 4)
                    {
                        float4 xw = *(const float4*)(wt + L * c4), xk = *(const float4*)(kt + L * c4);
                        const float ww[4] = {xw.x, xw.y, xw.z, xw.w}, kk[4] = {xk.x, xk.y, xk.z, xk.w};
#pragma unroll
                        for (int rr = 0; rr < R; rr++)
                        {
#pragma unroll
                            for (int d = 0; d < 4; d++) s[rr][c4 + d] = fmaf(kk[d], vi[rr], s[rr][c4 + d] * ww[d]);
                        }
                    }

#pragma unroll
                    for (int c4 = 0; c4 < E; c4 += 4)
                    {
                        float4 xb = *(const float4*)(bt + L * c4), xr = *(const float4*)(rt + L * c4);
                        const float bb[4] = {xb.x, xb.y, xb.z, xb.w}, rv[4] = {xr.x, xr.y, xr.z, xr.w};
#pragma unroll
                        for (int rr = 0; rr < R; rr++)
                        {
#pragma unroll
                            for (int d = 0; d < 4; d++)
                            {
                                float value = fmaf(bb[d], sa[rr], s[rr][c4 + d]);
                                s[rr][c4 + d] = value;
                                part[rr][(c4 + d) / NE] = fmaf(value, rv[d], part[rr][(c4 + d) / NE]);
                            }
                        }
                    }

#pragma unroll
                    for (int rr = 0; rr < R; rr++) acc[u][rr] = wkv7_tile_fold<Q>(part[rr]);
                }
            }

            // Reduce-scatter over the group's L lanes, levels xor L/2 … 1: at level h a lane keeps the upper half of
            // its tokens if bit h of p is set and receives its partner's part of them; lane p ends with token g0 + p.
#pragma unroll
            for (int h = L / 2; h > 0; h >>= 1)
            {
                const bool up = p & h;
#pragma unroll
                for (int u = 0; u < h; u++)
                {
#pragma unroll
                    for (int rr = 0; rr < R; rr++)
                    {
                        float keep = up ? acc[h + u][rr] : acc[u][rr];
                        float send = up ? acc[u][rr] : acc[h + u][rr];
                        acc[u][rr] = keep + __shfl_xor_sync(0xffffffffu, send, h);
                    }
                }
            }

            if (g0 + p < steps)
            {
#pragma unroll
                for (int rr = 0; rr < R; rr++)
                {
                    int i = i0 + local + rr;
                    if (i < n) y[(i64)(t0 + g0 + p) * width + base + i] = acc[0][rr];
                }
            }
        }

        copy_async_wait_all();
        __syncthreads();
    }

#pragma unroll
    for (int rr = 0; rr < R; rr++)
    {
        int i = i0 + local + rr;
#pragma unroll
        for (int c = 0; c < E; c++)
        {
            int j = p + L * (c / NE) + 32 * (c % NE);
            if (i < n && j < n) state[(base + i) * n + j] = s[rr][c];
        }
    }
}

// wkv7_tile_f32_ne{NE}_r{R}_l{L}: CudaOps.Wkv7TileGeometry picks one (the list there matches this one).
#define WKV7_TILE(NE, R, L)                                                                                                    \
    extern "C" __global__ void __launch_bounds__(32 * WKV7_TILE_WARPS) wkv7_tile_f32_ne##NE##_r##R##_l##L(const float* r,     \
        const float* w, const float* k, const float* v, const float* a, const float* b, float* state, int tokens, int heads, \
        int n, int chunk, float* y)                                                                                         \
    {                                                                                                                       \
        wkv7_tile<NE, R, L>(r, w, k, v, a, b, state, tokens, heads, n, chunk, y);                                           \
    }
WKV7_TILE(1, 1, 8)
WKV7_TILE(2, 1, 8)
WKV7_TILE(4, 1, 8)
WKV7_TILE(8, 1, 8)
WKV7_TILE(1, 2, 8)
WKV7_TILE(2, 2, 8)
WKV7_TILE(4, 2, 8)
WKV7_TILE(8, 2, 8)
WKV7_TILE(2, 2, 16)
WKV7_TILE(4, 2, 16)
WKV7_TILE(8, 2, 16)
