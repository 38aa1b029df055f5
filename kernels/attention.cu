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
// *start_offset), then, when kh is not null, repeat_kv_f32 of the rotated k and of v into kh, vh [T, H·N]
// (rope_expand_head_pair; the same fp32 operations as the four unfused launches, so the same bits). One thread per
// (t, slot of `per` consecutive query heads, pair): per = 1 at decode (one thread per KV-head pair doing all its query
// heads was a single block there: 7 µs at 7B), per = groups for prefill-sized calls, where the pair's angle (float64
// pow and sincos) is then computed once for the group — at one thread per query head it was most of the kernel, 69 µs
// for a 7B layer at T = 2048 against 16 µs of memory traffic.
extern "C" __global__ void rope_expand_f32(float* r, float* k, const float* v, float* kh, float* vh, int tokens, int kv_heads,
    int groups, int n, int start, const int* start_offset, float theta, int per)
{
    pdl_begin();
    int half = n / 2;
    i64 slots = (i64)kv_heads * groups / per;
    if (start_offset != 0) start += *start_offset;
    GRID_STRIDE(idx, (i64)tokens * slots * half)
    {
        int i = (int)(idx % half);
        i64 ts = idx / half;
        int slot = (int)(ts % slots);
        i64 t = ts / slots;
        float cf, sf;
        rope_cos_sin((double)(start + t), i, n, theta, cf, sf);
        // With a group's first query head, rope_expand_head_pair also does k's pair and the expansion.
        for (int h = slot * per; h < (slot + 1) * per; h++) rope_expand_head_pair(r, k, v, kh, vh, t, h, i, kv_heads, groups, n, cf, sf);
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

// ---- Prefill on tensor cores (sm_80+): bf16 operands, fp32 accumulation ----
// Fragment layouts of mma.m16n8k16.row.col (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"),
// lane = 4·g + c: A (16×16) regs {A[g][2c,2c+1], A[g+8][2c,2c+1], A[g][2c+8,2c+9], A[g+8][2c+8,2c+9]}; B (16×8)
// regs {B[2c,2c+1][g], B[2c+8,2c+9][g]}; C/D (16×8 f32) {C[g][2c], C[g][2c+1], C[g+8][2c], C[g+8][2c+1]}. Each 32-bit
// register packs two bf16, the lower column (A) or row (B) in the low half.

// Two floats rounded to bf16 (nearest even) and packed: lo in the low half, hi in the high half.
__device__ __forceinline__ u32 pack_bf16x2(float lo, float hi)
{
#if __CUDA_ARCH__ >= 800
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); // the first source goes to the upper half
    return r;
#else
    // The same rounding in integer arithmetic (the emulator runs this; the host never launches the bf16 kernels here).
    u32 a = __float_as_uint(lo), b = __float_as_uint(hi);
    a = (a & 0x7fffffffu) > 0x7f800000u ? (a >> 16) | 0x40u : (a + 0x7fffu + ((a >> 16) & 1u)) >> 16;
    b = (b & 0x7fffffffu) > 0x7f800000u ? (b >> 16) | 0x40u : (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
    return (a & 0xffffu) | (b << 16);
#endif
}

// d (16×8, f32) += a (16×16, bf16) · b (16×8, bf16), warp-wide, fragments as above.
__device__ __forceinline__ void mma_bf16_16816(float* d, const u32* a, u32 b0, u32 b1)
{
#if __CUDA_ARCH__ >= 800
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

#define TC_ROWS 64 // query rows per block: 4 warps × 16
#define TC_KEYS 64 // keys per shared-memory tile
#define TC_VT_STRIDE (TC_KEYS / 2 + 4) // words per row of the transposed V tile (64 keys + 8 bf16 of padding)

// The bf16 operands of attention_prefill_tc, made once per call: kb [keys_padded][W/2] words (K's rows, two adjacent
// columns a word, low half first) and vtb [W][keys_padded/2] words (V transposed: row = KV column, two adjacent keys a
// word), W = KVH·N, keys_padded = ⌈keys / 64⌉·64; keys past `keys` are 0 (the tiles read whole). Item e fills K word e
// and V word e; a warp's 32 V items are 8 columns × 4 key pairs (32-byte pieces read, 16-byte pieces written).
extern "C" __global__ void attention_kv_to_bf16(const float* k_cache, const float* v_cache, int keys, int keys_padded, int w,
    u32* kb, u32* vtb)
{
    pdl_begin();
    int half_w = w / 2, pairs = keys_padded / 2;
    GRID_STRIDE(e, (i64)keys_padded * half_w)
    {
        i64 key = e / half_w;
        int col = (int)(e % half_w) * 2;
        float2 k = make_float2(0.f, 0.f);
        if (key < keys) k = *(const float2*)(k_cache + key * w + col);
        kb[e] = pack_bf16x2(k.x, k.y);

        int l = (int)(e & 31);
        i64 b = e >> 5;
        i64 kp = (b % (pairs / 4)) * 4 + (l & 3);
        i64 c = (b / (pairs / 4)) * 8 + (l >> 2);
        i64 k0 = 2 * kp;
        float v0 = k0 < keys ? v_cache[k0 * w + c] : 0.f;
        float v1 = k0 + 1 < keys ? v_cache[(k0 + 1) * w + c] : 0.f;
        vtb[c * pairs + kp] = pack_bf16x2(v0, v1);
    }
}

// Prefill (T > 1) flash-attention-2 style on tensor cores: grid (heads, ⌈T / 64⌉), four warps, head dim N a multiple
// of 16. A block takes 64 query rows of one query head (warp w: rows 16w … 16w + 15, its Q fragments in registers,
// rounded to bf16) and walks the causal keys in tiles of 64, copied (cp.async, double-buffered: tile i + 1 is in
// flight while tile i is used) from the bf16 operands of attention_kv_to_bf16 into shared memory: K row-major
// [64][N + 8] (B of S = Q·Kᵀ is K's rows: two adjacent dims per 32-bit load), V transposed [N][64 + 8] (B of O = P·V
// needs two adjacent keys of one dim per register). The paddings make the fragment loads conflict-free (row strides
// of 4 mod 32 words). Per tile a warp computes its 16×64 scores (fp32), masks keys past each row's position on the
// tiles that reach past the warp's first row, and updates the online softmax in fp32 in the log2 domain (row max m,
// per-thread partial row sums l, O rescaled by 2^(m_old − m_new)); P is rounded to bf16 from the S registers
// directly as the A fragments of P·V. At the end the quad (4 lanes of a row) adds its partial sums and O is scaled
// by 1/l in fp32. Tiles past the warp's last row are skipped (the warp still copies its share); rows past the last
// token compute on zero queries and are not written. The y index of the grid is reversed so the longest (last) row
// blocks start first; consecutive blocks are the query heads of one row block, so a KV head's tiles are read by its
// query heads at about the same time (from L2). q, y [T, H·N] (16-byte aligned), row t at position start + t;
// kb, vtb as attention_kv_to_bf16 made them for ≥ start + T keys (keys_padded of them). yb, when not null: y's bf16
// copy [T, H·N / 2] words for the o_proj GEMM (host: CudaOps.Attention keeps it as CudaBackend's bf16 copy).
// Dynamic shared memory: 2 · (64·(N/2 + 4) + N·36) words.
template <int N>
__device__ __forceinline__ void attention_prefill_tc(const float* q, const u32* kb, const u32* vtb, int keys_padded, int tokens,
    int heads, int kv_heads, int start, float scale, float* y, u32* yb)
{
    pdl_begin();
    extern __shared__ float shared[];
    const int ks_stride = N / 2 + 4; // words per K row
    const int stage_words = TC_KEYS * ks_stride + N * TC_VT_STRIDE;
    int h = blockIdx.x;
    int first = (gridDim.y - 1 - blockIdx.y) * TC_ROWS;
    int kvh = h / (heads / kv_heads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int g = lane >> 2, c = lane & 3;
    i64 width = (i64)heads * N;
    i64 kb_width = (i64)kv_heads * N / 2; // words per kb row
    int pairs = keys_padded / 2;         // words per vtb row
    int rows = min(TC_ROWS, tokens - first);
    // The warp's rows g and g + 8 of this thread: block rows 16·warp + g (+ 8), at positions p0 and p0 + 8.
    int r0 = warp * 16 + g;
    int p0 = start + first + r0;
    const float scale2 = scale * 1.4426950408889634f; // scores in the log2 domain: e^(s·scale) = 2^(s·scale2)

    // Tile `tile` into stage `buffer`: K rows (N/8 chunks of 16 bytes each), V rows (8 chunks each), one commit group.
    auto stage = [&](int tile, int buffer) {
        u32* ks = (u32*)shared + buffer * stage_words;
        u32* vt = ks + TC_KEYS * ks_stride;
        for (int e = threadIdx.x; e < TC_KEYS * (N / 8); e += blockDim.x)
        {
            int j = e / (N / 8), x = e % (N / 8);
            copy_async_16(ks + j * ks_stride + 4 * x, kb + (i64)(tile + j) * kb_width + (i64)kvh * (N / 2) + 4 * x);
        }

        for (int e = threadIdx.x; e < N * 8; e += blockDim.x)
        {
            int d = e >> 3, x = e & 7;
            copy_async_16(vt + d * TC_VT_STRIDE + 4 * x, vtb + (i64)(kvh * N + d) * pairs + tile / 2 + 4 * x);
        }

        copy_async_commit();
    };

    // Keys 0 … start + first + rows − 1 are seen by some row of the block.
    int keys = start + first + rows;
    stage(0, 0);

    u32 qa[N / 16][4];
#pragma unroll
    for (int kk = 0; kk < N / 16; kk++)
    {
#pragma unroll
        for (int half = 0; half < 2; half++) // half 0: dims 16kk + 2c (+1); half 1: dims 16kk + 8 + 2c (+1)
        {
#pragma unroll
            for (int up = 0; up < 2; up++) // up 0: row r0, up 1: row r0 + 8
            {
                int r = r0 + 8 * up;
                float2 v = make_float2(0.f, 0.f);
                if (r < rows) v = *(const float2*)(q + (i64)(first + r) * width + (i64)h * N + 16 * kk + 8 * half + 2 * c);
                qa[kk][2 * half + up] = pack_bf16x2(v.x, v.y);
            }
        }
    }

    float o[N / 8][4];
#pragma unroll
    for (int j = 0; j < N / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float m0 = neg_infinity(), m1 = neg_infinity(); // running row max (log2 domain) of rows r0 and r0 + 8
    float l0 = 0.f, l1 = 0.f;                       // this thread's partial row sums

    // The warp's rows see keys ≤ its last position, and keys up to its first position need no mask.
    int warp_first = start + first + warp * 16, warp_last = warp_first + 15;
    int tiles = (keys + TC_KEYS - 1) / TC_KEYS;
    for (int i = 0; i < tiles; i++)
    {
        int tile = i * TC_KEYS;
        // The next tile's copies go out (an empty group after the last), then this tile's are waited for.
        if (i + 1 < tiles) stage(tile + TC_KEYS, (i + 1) & 1);
        else copy_async_commit();
        copy_async_wait_group<1>(); // the newest group (the next tile) may still be in flight
        __syncthreads();
        const u32* ks = (const u32*)shared + (i & 1) * stage_words;
        const u32* vt = ks + TC_KEYS * ks_stride;
        if (tile <= warp_last) // else every key of the tile is in the future of the warp's rows (warp-uniform)
        {
            float s[TC_KEYS / 8][4];
#pragma unroll
            for (int j = 0; j < TC_KEYS / 8; j++)
            {
                s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
                const u32* kr = ks + (8 * j + g) * ks_stride + c;
#pragma unroll
                for (int kk = 0; kk < N / 16; kk++) mma_bf16_16816(s[j], qa[kk], kr[8 * kk], kr[8 * kk + 4]);
            }

            bool masked = tile + TC_KEYS - 1 > warp_first;
            float top0 = neg_infinity(), top1 = neg_infinity();
#pragma unroll
            for (int j = 0; j < TC_KEYS / 8; j++)
            {
#pragma unroll
                for (int e = 0; e < 2; e++)
                {
                    int key = tile + 8 * j + 2 * c + e;
                    float a = s[j][e] * scale2, b = s[j][2 + e] * scale2;
                    if (masked)
                    {
                        if (key > p0) a = neg_infinity();
                        if (key > p0 + 8) b = neg_infinity();
                    }

                    s[j][e] = a;
                    s[j][2 + e] = b;
                    top0 = fmaxf(top0, a);
                    top1 = fmaxf(top1, b);
                }
            }

            // The quad's lanes hold the other columns of the same two rows.
#pragma unroll
            for (int x = 1; x < 4; x <<= 1)
            {
                top0 = fmaxf(top0, __shfl_xor_sync(0xffffffffu, top0, x));
                top1 = fmaxf(top1, __shfl_xor_sync(0xffffffffu, top1, x));
            }

            // Key 0 is in every row's first tile, so the maxima are finite from then on (a row whose keys in this
            // tile are all masked keeps its max: correction 1, p = 0).
            float next0 = fmaxf(m0, top0), next1 = fmaxf(m1, top1);
            float corr0 = exp2f(m0 - next0), corr1 = exp2f(m1 - next1);
            m0 = next0;
            m1 = next1;
            l0 *= corr0;
            l1 *= corr1;
#pragma unroll
            for (int j = 0; j < N / 8; j++)
            {
                o[j][0] *= corr0;
                o[j][1] *= corr0;
                o[j][2] *= corr1;
                o[j][3] *= corr1;
            }

            // P = 2^(s − m) in fp32, summed in fp32, rounded to bf16 as the A fragments of P·V: keys 16kk … 16kk + 15
            // are score tiles 2kk (regs 0, 1) and 2kk + 1 (regs 2, 3).
            u32 pa[TC_KEYS / 16][4];
#pragma unroll
            for (int j = 0; j < TC_KEYS / 8; j++)
            {
                float a0 = exp2f(s[j][0] - m0), a1 = exp2f(s[j][1] - m0);
                float b0 = exp2f(s[j][2] - m1), b1 = exp2f(s[j][3] - m1);
                l0 += a0 + a1;
                l1 += b0 + b1;
                pa[j / 2][2 * (j & 1)] = pack_bf16x2(a0, a1);
                pa[j / 2][2 * (j & 1) + 1] = pack_bf16x2(b0, b1);
            }

#pragma unroll
            for (int j = 0; j < N / 8; j++)
            {
                const u32* vr = vt + (8 * j + g) * TC_VT_STRIDE + c;
#pragma unroll
                for (int kk = 0; kk < TC_KEYS / 16; kk++) mma_bf16_16816(o[j], pa[kk], vr[8 * kk], vr[8 * kk + 4]);
            }
        }

        __syncthreads(); // this stage is consumed before the next iteration's copies overwrite it
    }

#pragma unroll
    for (int x = 1; x < 4; x <<= 1)
    {
        l0 += __shfl_xor_sync(0xffffffffu, l0, x);
        l1 += __shfl_xor_sync(0xffffffffu, l1, x);
    }

    float inv0 = 1.f / l0, inv1 = 1.f / l1;
#pragma unroll
    for (int up = 0; up < 2; up++)
    {
        int r = r0 + 8 * up;
        if (r >= rows) continue;
        float inv = up ? inv1 : inv0;
        i64 at = (i64)(first + r) * width + (i64)h * N + 2 * c;
#pragma unroll
        for (int j = 0; j < N / 8; j++)
        {
            float a = o[j][2 * up] * inv, b = o[j][2 * up + 1] * inv;
            *(float2*)(y + at + 8 * j) = make_float2(a, b);
            // The bf16 copy o_proj's GEMM reads (f32_to_bf16_pairs' bits), when the host asks for it.
            if (yb) yb[(at + 8 * j) / 2] = f32_to_bf16_bits(a) | (f32_to_bf16_bits(b) << 16);
        }
    }
}

// One entry point per supported head dim (the host picks by N; others run attention_prefill_f32).
#define ATTENTION_PREFILL_TC(n)                                                                                              \
    extern "C" __global__ void __launch_bounds__(128) attention_prefill_tc_##n(const float* q, const u32* kb, const u32* vtb, \
        int keys_padded, int tokens, int heads, int kv_heads, int start, float scale, float* y, u32* yb)                     \
    {                                                                                                                        \
        attention_prefill_tc<n>(q, kb, vtb, keys_padded, tokens, heads, kv_heads, start, scale, y, yb);                      \
    }
ATTENTION_PREFILL_TC(16)
ATTENTION_PREFILL_TC(32)
ATTENTION_PREFILL_TC(64)
ATTENTION_PREFILL_TC(128)
