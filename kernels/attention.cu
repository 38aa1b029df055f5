// Qwen2 attention pieces: Rope, RepeatKv, RopeExpand, ExpandKv, Attention. fp32.
#include "common.cuh"

// Rotate-half RoPE in place on x [T, heads·N]; one thread per (t, head, pair). Angles in float64, as the CPU
// reference computes them, then rounded to fp32 (rope_cos_sin, rope_pair in common.cuh). Row t is at position
// start + t, plus *start_offset when that pointer is not null (a recorded decode step reads its position from device
// memory).
extern "C" __global__ void rope_f32(float* x, int tokens, int heads, int n, int start, const int* start_offset, float theta)
{
    pdl_begin();
    int half = n / 2;
    if (start_offset != 0) start += *start_offset;
    GRID_STRIDE(idx, (i64)tokens * heads * half)
    {
        int i = (int)(idx % half);
        i64 th = idx / half;
        int h = (int)(th % heads);
        i64 t = th / heads;
        float cf, sf;
        rope_cos_sin((double)(start + t), i, n, theta, cf, sf);
        float a, b;
        rope_in_place(x + t * heads * n + (i64)h * n, i, half, cf, sf, a, b);
    }
}

// IOps.RopeExpand in one launch: rope_f32 on r [T, H·N] and k [T, KVH·N] (positions as rope_f32, including
// *start_offset), then, when kh is not null, repeat_kv_f32 of the rotated k and of v into kh, vh [T, H·N]: one thread
// per (t, query head, pair), rope_expand_head_pair. The same fp32 operations as the four unfused launches, so the
// same bits. (One thread per KV-head pair doing all its query heads was a single block at decode: 7 µs at 7B.)
extern "C" __global__ void rope_expand_f32(float* r, float* k, const float* v, float* kh, float* vh, int tokens, int kv_heads,
    int groups, int n, int start, const int* start_offset, float theta)
{
    pdl_begin();
    int half = n / 2;
    i64 heads = (i64)kv_heads * groups;
    if (start_offset != 0) start += *start_offset;
    GRID_STRIDE(idx, (i64)tokens * heads * half)
    {
        int i = (int)(idx % half);
        i64 th = idx / half;
        int h = (int)(th % heads);
        i64 t = th / heads;
        float cf, sf;
        rope_cos_sin((double)(start + t), i, n, theta, cf, sf);
        rope_expand_head_pair(r, k, v, kh, vh, t, h, i, kv_heads, groups, n, cf, sf);
    }
}

// IOps.ExpandKv in one launch: repeat_kv_f32 of k and of v [T, KVH·N] into kh, vh [T, KVH·groups·N].
extern "C" __global__ void expand_kv_f32(const float* k, const float* v, int tokens, int kv_heads, int n, int groups, float* kh,
    float* vh)
{
    pdl_begin();
    int heads = kv_heads * groups;
    GRID_STRIDE(idx, (i64)tokens * heads * n)
    {
        int i = (int)(idx % n);
        i64 r = idx / n;
        int h = (int)(r % heads);
        i64 t = r / heads;
        i64 from = t * kv_heads * n + (i64)(h / groups) * n + i;
        kh[idx] = k[from];
        vh[idx] = v[from];
    }
}

// y head h = x head ⌊h / groups⌋. x [T, KVH·N], y [T, KVH·groups·N].
extern "C" __global__ void repeat_kv_f32(const float* x, int tokens, int kv_heads, int n, int groups, float* y)
{
    pdl_begin();
    int heads = kv_heads * groups;
    GRID_STRIDE(idx, (i64)tokens * heads * n)
    {
        int i = (int)(idx % n);
        i64 r = idx / n;
        int h = (int)(r % heads);
        i64 t = r / heads;
        y[idx] = x[t * kv_heads * n + (i64)(h / groups) * n + i];
    }
}

// KV cache append: row start + t (plus *start_offset when not null, as rope_f32) of k_cache and v_cache [S, W] ← row t
// of k and v [T, W]; one thread per element of k. A recorded decode step writes the replayed position's row.
extern "C" __global__ void append_kv_f32(const float* k, const float* v, float* k_cache, float* v_cache, int tokens, int w,
    int start, const int* start_offset)
{
    pdl_begin();
    if (start_offset != 0) start += *start_offset;
    GRID_STRIDE(idx, (i64)tokens * w)
    {
        i64 t = idx / w;
        i64 o = (start + t) * w + idx % w;
        k_cache[o] = k[idx];
        v_cache[o] = v[idx];
    }
}

#define ATT_WARPS 4
#define ATT_MAX_PER_LANE 8 // head dim ≤ 256

// Causal attention of one query row against the KV cache: one block per (head, query row), four warps that
// take every fourth key with an online softmax each, merged at the end. q [T, H·N]; caches [S, KVH·N].
extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) attention_f32(const float* q, const float* k_cache,
    const float* v_cache, int heads, int kv_heads, int n, int start, float scale, float* y)
{
    pdl_begin();
    __shared__ float warp_max[ATT_WARPS];
    __shared__ float warp_sum_[ATT_WARPS];
    __shared__ float warp_acc[ATT_WARPS][ATT_MAX_PER_LANE * 32];
    int h = blockIdx.x;
    int t = blockIdx.y;
    int kvh = h / (heads / kv_heads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int length = start + t + 1;
    i64 kv_width = (i64)kv_heads * n;
    const float* qh = q + (i64)t * heads * n + (i64)h * n;
    float qr[ATT_MAX_PER_LANE];
    float acc[ATT_MAX_PER_LANE];
#pragma unroll
    for (int d = 0; d < ATT_MAX_PER_LANE; d++)
    {
        int i = lane + 32 * d;
        qr[d] = i < n ? qh[i] : 0.f;
        acc[d] = 0.f;
    }

    float m = neg_infinity();
    float l = 0.f;
    for (int j = warp; j < length; j += ATT_WARPS)
    {
        const float* kj = k_cache + j * kv_width + (i64)kvh * n;
        const float* vj = v_cache + j * kv_width + (i64)kvh * n;
        float s = 0.f;
#pragma unroll
        for (int d = 0; d < ATT_MAX_PER_LANE; d++)
        {
            int i = lane + 32 * d;
            if (i < n) s = fmaf(qr[d], kj[i], s);
        }

        s = warp_sum(s) * scale;
        float next = fmaxf(m, s);
        float correction = expf(m - next);
        float p = expf(s - next);
        l = l * correction + p;
#pragma unroll
        for (int d = 0; d < ATT_MAX_PER_LANE; d++)
        {
            int i = lane + 32 * d;
            if (i < n) acc[d] = acc[d] * correction + p * vj[i];
        }

        m = next;
    }

    if (lane == 0)
    {
        warp_max[warp] = m;
        warp_sum_[warp] = l;
    }

#pragma unroll
    for (int d = 0; d < ATT_MAX_PER_LANE; d++)
    {
        int i = lane + 32 * d;
        if (i < n) warp_acc[warp][i] = acc[d];
    }

    __syncthreads();
    if (warp != 0) return;
    float top = warp_max[0];
    for (int w = 1; w < ATT_WARPS; w++) top = fmaxf(top, warp_max[w]);
    float total = 0.f;
    float weight[ATT_WARPS];
    for (int w = 0; w < ATT_WARPS; w++)
    {
        // A warp that saw no key has m = −∞ and weight 0.
        weight[w] = expf(warp_max[w] - top);
        total += warp_sum_[w] * weight[w];
    }

    float* yh = y + (i64)t * heads * n + (i64)h * n;
    for (int i = lane; i < n; i += 32)
    {
        float o = 0.f;
        for (int w = 0; w < ATT_WARPS; w++) o += warp_acc[w][i] * weight[w];
        yh[i] = o / total;
    }
}

// The split of a decode over `length` keys, as CudaOps.AttentionDecode computes it on the host: at least `base`
// splits (⌈2·SMs / heads⌉), at most 256 keys a split, at most 8192 splits and at least 32 keys a split; then the chunk,
// and the splits that chunk needs. Returns the chunk; *splits gets the split count.
__device__ __forceinline__ int decode_chunk(int length, int base, int* splits)
{
    long long wanted = max((long long)base, (length + 255LL) / 256);
    int s = (int)min(min(wanted, 8192LL), (long long)((length + 31) / 32));
    s = max(s, 1);
    int chunk = (length + s - 1) / s;
    *splits = (length + chunk - 1) / chunk;
    return chunk;
}

// Decode (T = 1) split over the cache, flash-decoding style: grid (heads, splits), four warps per block. Block
// (h, s) takes keys [s·chunk, min((s + 1)·chunk, length)) of query head h: each warp keeps an online softmax over
// every fourth key, the warps merge, and the block writes partial[h, s] = (max, sum, acc[N]) for attention_combine.
// With length_offset not null (a recorded step) the length is length + *length_offset, read at replay, and the chunk
// and split count follow from it as on the host (decode_chunk with `base`); the grid then has the splits of the
// cache's capacity and blocks past the live splits exit at once (they write nothing; the combine reads only the live
// ones), so a replay computes bit for bit what an eager call at that length does.
extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) attention_split_f32(const float* q, const float* k_cache,
    const float* v_cache, int heads, int kv_heads, int n, int length, int chunk, float scale, float* partial,
    const int* length_offset, int base)
{
    pdl_begin();
    if (length_offset != 0)
    {
        int live;
        length += *length_offset;
        chunk = decode_chunk(length, base, &live);
        if ((int)blockIdx.y >= live) return;
    }

    __shared__ float warp_max[ATT_WARPS];
    __shared__ float warp_sum_[ATT_WARPS];
    __shared__ float warp_acc[ATT_WARPS][ATT_MAX_PER_LANE * 32];
    int h = blockIdx.x;
    int split = blockIdx.y;
    int kvh = h / (heads / kv_heads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int first = split * chunk;
    int end = min(length, first + chunk);
    i64 kv_width = (i64)kv_heads * n;
    const float* qh = q + (i64)h * n;
    float qr[ATT_MAX_PER_LANE];
    float acc[ATT_MAX_PER_LANE];
#pragma unroll
    for (int d = 0; d < ATT_MAX_PER_LANE; d++)
    {
        int i = lane + 32 * d;
        qr[d] = i < n ? qh[i] : 0.f;
        acc[d] = 0.f;
    }

    float m = neg_infinity();
    float l = 0.f;
    for (int j = first + warp; j < end; j += ATT_WARPS)
    {
        const float* kj = k_cache + j * kv_width + (i64)kvh * n;
        const float* vj = v_cache + j * kv_width + (i64)kvh * n;
        float s = 0.f;
#pragma unroll
        for (int d = 0; d < ATT_MAX_PER_LANE; d++)
        {
            int i = lane + 32 * d;
            if (i < n) s = fmaf(qr[d], kj[i], s);
        }

        s = warp_sum(s) * scale;
        float next = fmaxf(m, s);
        float correction = expf(m - next);
        float p = expf(s - next);
        l = l * correction + p;
#pragma unroll
        for (int d = 0; d < ATT_MAX_PER_LANE; d++)
        {
            int i = lane + 32 * d;
            if (i < n) acc[d] = acc[d] * correction + p * vj[i];
        }

        m = next;
    }

    if (lane == 0)
    {
        warp_max[warp] = m;
        warp_sum_[warp] = l;
    }

#pragma unroll
    for (int d = 0; d < ATT_MAX_PER_LANE; d++)
    {
        int i = lane + 32 * d;
        if (i < n) warp_acc[warp][i] = acc[d];
    }

    __syncthreads();
    if (warp != 0) return;
    float top = warp_max[0];
    for (int w = 1; w < ATT_WARPS; w++) top = fmaxf(top, warp_max[w]);
    float weight[ATT_WARPS];
    float total = 0.f;
    for (int w = 0; w < ATT_WARPS; w++)
    {
        // A warp that saw no key has m = −∞ and weight 0 (every block sees at least one key, so top is finite).
        weight[w] = expf(warp_max[w] - top);
        total += warp_sum_[w] * weight[w];
    }

    float* out = partial + ((i64)h * gridDim.y + split) * (n + 2);
    if (lane == 0)
    {
        out[0] = top;
        out[1] = total;
    }

    for (int i = lane; i < n; i += 32)
    {
        float o = 0.f;
        for (int w = 0; w < ATT_WARPS; w++) o += warp_acc[w][i] * weight[w];
        out[2 + i] = o;
    }
}

// y[h] = Σ_s acc_s·e^(m_s − M) / Σ_s l_s·e^(m_s − M) over the splits of attention_split_f32. One block per head:
// the split weights e^(m_s − M) go to shared memory (dynamic: splits floats), then each thread sums one element
// of the head over the splits, in order. With length_offset not null (a recorded step; see attention_split_f32)
// `splits` is the split grid's (the partials' stride) and only the first decode_chunk(length + *length_offset) are live.
extern "C" __global__ void attention_combine_f32(const float* partial, int heads, int splits, int n, float* y,
    const int* length_offset, int length, int base)
{
    pdl_begin();
    extern __shared__ float weights[];
    __shared__ float scratch[32];
    __shared__ float top_shared;
    int h = blockIdx.x;
    const float* p = partial + (i64)h * splits * (n + 2);
    if (length_offset != 0) decode_chunk(length + *length_offset, base, &splits);
    float top = neg_infinity();
    for (int s = threadIdx.x; s < splits; s += blockDim.x) top = fmaxf(top, p[(i64)s * (n + 2)]);
    for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = top;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        float t = scratch[0];
        for (int w = 1; w < (int)(blockDim.x >> 5); w++) t = fmaxf(t, scratch[w]);
        top_shared = t;
    }

    __syncthreads();
    top = top_shared;
    for (int s = threadIdx.x; s < splits; s += blockDim.x) weights[s] = expf(p[(i64)s * (n + 2)] - top);
    __syncthreads();
    float total = 0.f;
    for (int s = 0; s < splits; s++) total += p[(i64)s * (n + 2) + 1] * weights[s];
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        float o = 0.f;
        for (int s = 0; s < splits; s++) o += p[(i64)s * (n + 2) + 2 + i] * weights[s];
        y[(i64)h * n + i] = o / total;
    }
}

#define FA_ROWS 16        // query rows per block (4 warps × 4 rows)
#define FA_ROWS_PER_WARP 4
#define FA_KEYS 32        // keys per shared-memory tile: one per lane for the scores
// Prefill (T > 1), flash-attention style: grid (heads, ⌈T / 16⌉), four warps. A block takes 16 query rows of one
// query head and walks the causal keys in tiles of 32 staged in shared memory (K rows padded to N + 1 floats so that
// lane j reading key j is conflict-free), so each key and value is read from global memory once per 16 queries
// instead of once per query. Per row and tile: lane j computes the score of key j (a sequential dot product over N),
// masked to −∞ past the row's position; the tile's max and sum are two warp reductions; the output accumulates
// Σ_j p_j·v_j with lane d owning dims d + 32e and p_j broadcast by shuffle (online softmax across tiles). GQA: query
// head h reads KV head ⌊h / (H / KVH)⌋. q [T, H·N], caches [S, KVH·N], row t at position start + t.
// Dynamic shared memory: (16·N + 32·(N + 1) + 32·N) floats.
extern "C" __global__ void __launch_bounds__(128) attention_prefill_f32(const float* q, const float* k_cache,
    const float* v_cache, int tokens, int heads, int kv_heads, int n, int start, float scale, float* y)
{
    pdl_begin();
    extern __shared__ float shared[];
    float* qs = shared;                   // [16][N]
    float* ks = qs + FA_ROWS * n;         // [32][N + 1]
    float* vs = ks + FA_KEYS * (n + 1);   // [32][N]
    int h = blockIdx.x;
    int first = blockIdx.y * FA_ROWS;
    int kvh = h / (heads / kv_heads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    i64 width = (i64)heads * n;
    i64 kv_width = (i64)kv_heads * n;
    int rows = min(FA_ROWS, tokens - first);
    for (int e = threadIdx.x; e < FA_ROWS * n; e += blockDim.x)
    {
        int r = e / n;
        qs[e] = r < rows ? q[(i64)(first + r) * width + (i64)h * n + e % n] : 0.f;
    }

    float m[FA_ROWS_PER_WARP], l[FA_ROWS_PER_WARP], acc[FA_ROWS_PER_WARP][ATT_MAX_PER_LANE];
#pragma unroll
    for (int r = 0; r < FA_ROWS_PER_WARP; r++)
    {
        m[r] = neg_infinity();
        l[r] = 0.f;
#pragma unroll
        for (int d = 0; d < ATT_MAX_PER_LANE; d++) acc[r][d] = 0.f;
    }

    // Keys 0 … start + first + rows − 1 are seen by some row of the block.
    int keys = start + first + rows;
    for (int tile = 0; tile < keys; tile += FA_KEYS)
    {
        __syncthreads(); // the previous tile is consumed (and, the first time, qs is written)
        for (int e = threadIdx.x; e < FA_KEYS * n; e += blockDim.x)
        {
            int j = e / n, i = e % n;
            int key = tile + j;
            bool in = key < keys;
            ks[j * (n + 1) + i] = in ? k_cache[(i64)key * kv_width + (i64)kvh * n + i] : 0.f;
            vs[j * n + i] = in ? v_cache[(i64)key * kv_width + (i64)kvh * n + i] : 0.f;
        }

        __syncthreads();
        int key = tile + lane;
#pragma unroll
        for (int r = 0; r < FA_ROWS_PER_WARP; r++)
        {
            int row = warp * FA_ROWS_PER_WARP + r;
            if (row >= rows) continue; // warp-uniform
            int position = start + first + row;
            if (tile > position) continue; // the whole tile is in this row's future (warp-uniform)
            const float* qr = qs + row * n;
            const float* kr = ks + lane * (n + 1);
            float s = 0.f;
            for (int i = 0; i < n; i++) s = fmaf(qr[i], kr[i], s);
            s = key <= position ? s * scale : neg_infinity();
            float top = s;
            for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
            // Key `tile` ≤ position is always in: top and next are finite.
            float next = fmaxf(m[r], top);
            float correction = expf(m[r] - next);
            float p = expf(s - next);
            l[r] = l[r] * correction + warp_sum(p);
#pragma unroll
            for (int d = 0; d < ATT_MAX_PER_LANE; d++) acc[r][d] *= correction;
            for (int j = 0; j < FA_KEYS; j++)
            {
                float pj = __shfl_sync(0xffffffffu, p, j);
                const float* vr = vs + j * n;
#pragma unroll
                for (int d = 0; d < ATT_MAX_PER_LANE; d++)
                {
                    int i = lane + 32 * d;
                    if (i < n) acc[r][d] = fmaf(pj, vr[i], acc[r][d]);
                }
            }

            m[r] = next;
        }
    }

#pragma unroll
    for (int r = 0; r < FA_ROWS_PER_WARP; r++)
    {
        int row = warp * FA_ROWS_PER_WARP + r;
        if (row >= rows) continue;
        float* yr = y + (i64)(first + row) * width + (i64)h * n;
#pragma unroll
        for (int d = 0; d < ATT_MAX_PER_LANE; d++)
        {
            int i = lane + 32 * d;
            if (i < n) yr[i] = acc[r][d] / l[r];
        }
    }
}
