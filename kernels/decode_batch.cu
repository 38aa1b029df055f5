// Decode (one token per sequence) for B independent sequences in one launch: RopeRows, RopeExpandRows, ScatterRows,
// AttentionDecode, Wkv6Decode, Wkv7Decode, TokenShiftRows (IOps). Row b of every [B, ·] activation belongs to
// sequence b; its per-sequence memory (KV cache, recurrent state, shift state) and position come in a
// DecodeTable passed by value as a kernel argument (no upload; 1.3 KB of the 4 KB parameter space), so the host
// launches once per DECODE_ROWS sequences. fp32, the same arithmetic per row as the single-sequence kernels.
#include "common.cuh"

#define DECODE_ROWS 64

// Per sequence b: up to two device pointers and one int (position, length or row). Layout matches
// CudaOps.DecodeTable (C#): 64 + 64 u64, then 64 i32.
struct DecodeTable
{
    unsigned long long first[DECODE_ROWS];
    unsigned long long second[DECODE_ROWS];
    int value[DECODE_ROWS];
};

// Rotate-half RoPE in place on x [rows, heads·N], row b at position table.value[b]; angles and rounding as rope_f32.
extern "C" __global__ void rope_rows_f32(float* x, int rows, int heads, int n, DecodeTable table, float theta)
{
    pdl_begin();
    int half = n / 2;
    GRID_STRIDE(idx, (i64)rows * heads * half)
    {
        int i = (int)(idx % half);
        i64 th = idx / half;
        int h = (int)(th % heads);
        int b = (int)(th / heads);
        float cf, sf;
        rope_cos_sin((double)table.value[b], i, n, theta, cf, sf);
        float a, bb;
        rope_in_place(x + (i64)b * heads * n + (i64)h * n, i, half, cf, sf, a, bb);
    }
}

// IOps.RopeExpandRows: rope_expand_f32 with row b at position table.value[b]. r [rows, H·N], k, v [rows, KVH·N],
// kh, vh [rows, H·N] (kh, vh and v may be null: RoPE only).
extern "C" __global__ void rope_expand_rows_f32(float* r, float* k, const float* v, float* kh, float* vh, int rows, int kv_heads,
    int groups, int n, DecodeTable table, float theta)
{
    pdl_begin();
    int half = n / 2;
    int heads = kv_heads * groups;
    GRID_STRIDE(idx, (i64)rows * heads * half)
    {
        int i = (int)(idx % half);
        i64 bh = idx / half;
        int h = (int)(bh % heads);
        int b = (int)(bh / heads);
        float cf, sf;
        rope_cos_sin((double)table.value[b], i, n, theta, cf, sf);
        rope_expand_head_pair(r, k, v, kh, vh, b, h, i, kv_heads, groups, n, cf, sf);
    }
}

// destination_b[table.value[b], :] = x[b, :] with destination_b = table.first[b]; x [rows, width].
extern "C" __global__ void scatter_rows_f32(const float* x, int rows, int width, DecodeTable table)
{
    pdl_begin();
    GRID_STRIDE(idx, (i64)rows * width)
    {
        int b = (int)(idx / width);
        int j = (int)(idx % width);
        float* destination = (float*)table.first[b];
        destination[(i64)table.value[b] * width + j] = x[idx];
    }
}

#define DB_WARPS 4
#define DB_MAX_PER_LANE 8

// Flash-decoding split for B sequences: grid (heads, rows·max_splits), four warps per block. Block (h, b·max_splits
// + s) takes keys [s·chunk, min((s + 1)·chunk, length_b)) of sequence b (k cache table.first[b], v cache
// table.second[b], length table.value[b]) for query head h, and writes partial[b, h, s] = (max, sum, acc[N]).
// Splits past a sequence's length do nothing (the combine reads only ⌈length_b / chunk⌉ splits).
extern "C" __global__ void __launch_bounds__(DB_WARPS * 32) attention_decode_rows_split_f32(const float* q, int heads,
    int kv_heads, int n, int chunk, int max_splits, float scale, DecodeTable table, float* partial)
{
    pdl_begin();
    __shared__ float warp_max[DB_WARPS];
    __shared__ float warp_sum_[DB_WARPS];
    __shared__ float warp_acc[DB_WARPS][DB_MAX_PER_LANE * 32];
    int h = blockIdx.x;
    int b = blockIdx.y / max_splits;
    int split = blockIdx.y % max_splits;
    int length = table.value[b];
    int first = split * chunk;
    if (first >= length) return;
    int end = min(length, first + chunk);
    const float* k_cache = (const float*)table.first[b];
    const float* v_cache = (const float*)table.second[b];
    int kvh = h / (heads / kv_heads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    i64 kv_width = (i64)kv_heads * n;
    const float* qh = q + ((i64)b * heads + h) * n;
    float qr[DB_MAX_PER_LANE];
    float acc[DB_MAX_PER_LANE];
#pragma unroll
    for (int d = 0; d < DB_MAX_PER_LANE; d++)
    {
        int i = lane + 32 * d;
        qr[d] = i < n ? qh[i] : 0.f;
        acc[d] = 0.f;
    }

    float m = neg_infinity();
    float l = 0.f;
    for (int j = first + warp; j < end; j += DB_WARPS)
    {
        const float* kj = k_cache + j * kv_width + (i64)kvh * n;
        const float* vj = v_cache + j * kv_width + (i64)kvh * n;
        float s = 0.f;
#pragma unroll
        for (int d = 0; d < DB_MAX_PER_LANE; d++)
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
        for (int d = 0; d < DB_MAX_PER_LANE; d++)
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
    for (int d = 0; d < DB_MAX_PER_LANE; d++)
    {
        int i = lane + 32 * d;
        if (i < n) warp_acc[warp][i] = acc[d];
    }

    __syncthreads();
    if (warp != 0) return;
    float top = warp_max[0];
    for (int w = 1; w < DB_WARPS; w++) top = fmaxf(top, warp_max[w]);
    float weight[DB_WARPS];
    float total = 0.f;
    for (int w = 0; w < DB_WARPS; w++)
    {
        // A warp that saw no key has m = −∞ and weight 0 (every block that runs sees at least one key).
        weight[w] = expf(warp_max[w] - top);
        total += warp_sum_[w] * weight[w];
    }

    float* out = partial + (((i64)b * heads + h) * max_splits + split) * (n + 2);
    if (lane == 0)
    {
        out[0] = top;
        out[1] = total;
    }

    for (int i = lane; i < n; i += 32)
    {
        float o = 0.f;
        for (int w = 0; w < DB_WARPS; w++) o += warp_acc[w][i] * weight[w];
        out[2 + i] = o;
    }
}

// y[b, h] = Σ_s acc_s·e^(m_s − M) / Σ_s l_s·e^(m_s − M) over sequence b's ⌈length_b / chunk⌉ splits. Grid (heads,
// rows); dynamic shared memory: max_splits floats.
extern "C" __global__ void attention_decode_rows_combine_f32(const float* partial, int heads, int n, int chunk, int max_splits,
    DecodeTable table, float* y)
{
    pdl_begin();
    extern __shared__ float weights[];
    __shared__ float scratch[32];
    __shared__ float top_shared;
    int h = blockIdx.x;
    int b = blockIdx.y;
    int splits = (table.value[b] + chunk - 1) / chunk;
    const float* p = partial + ((i64)b * heads + h) * max_splits * (n + 2);
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
        y[((i64)b * heads + h) * n + i] = o / total;
    }
}

// RAD-RWKV7 delta rule, one token for each of `rows` sequences (state of row b: table.first[b], [H, N, N]
// value-major). One warp per (row, head, value row i), the lanes across the N keys, arithmetic as wkv7_decode_f32
// (common.cuh's wkv7_decode_row). gate not null (IOps.Wkv7DecodeScaleGate): y_i = (acc · scale) · gate_i as
// scale_multiply_f32 rounds it; gate [rows, H·N].
extern "C" __global__ void __launch_bounds__(256) wkv7_decode_rows_f32(const float* r, const float* w, const float* k,
    const float* v, const float* a, const float* b, int rows, int heads, int n, DecodeTable table, float* y, float scale,
    const float* gate)
{
    pdl_begin();
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    i64 per_row = (i64)heads * n;
    if (item >= (i64)rows * per_row) return;
    int seq = (int)(item / per_row);
    i64 within = item % per_row;
    int h = (int)(within / n);
    int i = (int)(within % n);
    const i64 o = (i64)seq * per_row + (i64)h * n;
    float* row = (float*)table.first[seq] + within * n;
    float s[WKV7_MAX_PER_LANE];
    wkv7_load_row(row, s, n, lane);
    float acc = wkv7_decode_row(row, s, r + o, w + o, k + o, a + o, b + o, v[o + i], n, lane);
    if (lane == 0) y[o + i] = gate ? (acc * scale) * gate[o + i] : acc;
}

// IOps.Rwkv7RopeKeysWkv7Rows: rwkv7_rope_keys_rows_f32 (rwkv7.cu) then wkv7_decode_rows_f32 with the scale and gate,
// in one launch, for `rows` one-token sequences (state of row b: table.first[b]; position table.value[b], plus
// *position_offset when not null: a recorded batch-1 step reads it from the step buffer). Block = RKW_ROWS warps, one
// per value row i of ONE (row b, head h): blocks = rows · H · ⌈N / RKW_ROWS⌉ (448 on a 7B layer at batch 1).
// - Before pdl_begin (nothing this step writes them): each warp loads its state row, warp 0 the stock keys' k_k / k_a
//   and the RoPE angles (float64 sincos off the dependent path).
// - Warp 0 then does rwkv7_rope_keys_rows_f32's work for the head, into shared memory instead of global: r's head
//   rotated, kh (k's KV head ⌊h/G⌋ rotated), vh, and rwkv7_keys_vres_head's removal, replacement, k̃ and v with
//   the residual. Every block of the head repeats it (N elements, L2-resident inputs) instead of a launch boundary.
// - After __syncthreads each warp runs wkv7_decode_row on its row from the shared vectors (w from global, as the
//   two-launch path reads it) and writes y_i = (acc · scale) · gate_i and vh_i (v with the residual: layer 0 copies
//   it to v_first). The same fp32 operations in the same order as the two kernels: the same bits.
// r, w, a, vh, v_first, nu, gate, y [rows, H·N]; k, v [rows, KVH·N]. N even, ≤ 32·NE ≤ 256.
#define RKW_ROWS 8
#define RKW_MAX_N 256
template <int NE>
__device__ __forceinline__ void rwkv7_rope_keys_wkv7_rows(const float* r, const float* k,
    const float* v, float* vh, int rows, int kv_heads, int groups, int n, DecodeTable table, const int* position_offset,
    float theta, const float* w, const float* a, const void* key_scale, int key_scale_dtype, const void* iclr_mix,
    int iclr_mix_dtype, int balanced, const float* v_first, const float* nu, int has_residual, float* y, float scale,
    const float* gate)
{
    __shared__ float sr[RKW_MAX_N], skh[RKW_MAX_N], svh[RKW_MAX_N], srem[RKW_MAX_N], srep[RKW_MAX_N], skt[RKW_MAX_N];
    const int heads = kv_heads * groups;
    const int tiles = (n + RKW_ROWS - 1) / RKW_ROWS;
    const int tile = (int)(blockIdx.x % tiles);
    const int h = (int)(blockIdx.x / tiles % heads);
    const int b = (int)(blockIdx.x / tiles / heads);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int i = tile * RKW_ROWS + warp;
    const int half = n / 2;
    if (b >= rows) return;
    float* row = (float*)table.first[b] + ((i64)h * n + (i < n ? i : 0)) * n;
    float s[NE];
    if (i < n) wkv7_load_row<NE>(row, s, n, lane);
    float ks[NE], ka[NE], cf[(NE + 1) / 2], sf[(NE + 1) / 2];
    if (warp == 0)
    {
        rwkv7_keys_weights<NE>(key_scale, key_scale_dtype, iclr_mix, iclr_mix_dtype, h, n, lane, balanced, ks, ka);
        int position = table.value[b];
        if (position_offset != 0) position += *position_offset;
#pragma unroll
        for (int u = 0; u < (NE + 1) / 2; u++)
        {
            int p = lane + 32 * u;
            if (p < half) rope_cos_sin((double)position, p, n, theta, cf[u], sf[u]);
        }
    }

    pdl_begin();
    const i64 o = ((i64)b * heads + h) * n;
    if (warp == 0)
    {
        const i64 kv = ((i64)b * kv_heads + h / groups) * n;
#pragma unroll
        for (int u = 0; u < (NE + 1) / 2; u++)
        {
            int p = lane + 32 * u;
            if (p < half) rwkv7_rope_head_pair(r + o, sr, k + kv, v + kv, skh, svh, p, half, cf[u], sf[u]);
        }

        __syncwarp();
        rwkv7_keys_vres_head<NE>(skh, w + o, a + o, ks, ka, 0, n, lane, balanced, srem, srep, skt, svh,
            has_residual ? v_first + o : v_first, has_residual ? nu + o : nu, has_residual);
    }

    __syncthreads();
    if (i >= n) return;
    float vi = svh[i];
    float acc = wkv7_decode_row<NE>(row, s, sr, w + o, skt, srem, srep, vi, n, lane);
    if (lane == 0)
    {
        y[o + i] = (acc * scale) * gate[o + i];
        vh[o + i] = vi;
    }
}

// NE: keys a lane holds, N ≤ 32·NE (the host picks the smallest: fewer registers, more resident blocks; same bits).
#define RWKV7_ROPE_KEYS_WKV7_ROWS(NE)                                                                                    \
    extern "C" __global__ void __launch_bounds__(RKW_ROWS * 32) rwkv7_rope_keys_wkv7_rows_f32_e##NE(const float* r,      \
        const float* k, const float* v, float* vh, int rows, int kv_heads, int groups, int n, DecodeTable table,          \
        const int* position_offset, float theta, const float* w, const float* a, const void* key_scale,                  \
        int key_scale_dtype, const void* iclr_mix, int iclr_mix_dtype, int balanced, const float* v_first,               \
        const float* nu, int has_residual, float* y, float scale, const float* gate)                                     \
    {                                                                                                                    \
        rwkv7_rope_keys_wkv7_rows<NE>(r, k, v, vh, rows, kv_heads, groups, n, table, position_offset, theta, w, a,       \
            key_scale, key_scale_dtype, iclr_mix, iclr_mix_dtype, balanced, v_first, nu, has_residual, y, scale, gate);  \
    }
RWKV7_ROPE_KEYS_WKV7_ROWS(1)
RWKV7_ROPE_KEYS_WKV7_ROWS(2)
RWKV7_ROPE_KEYS_WKV7_ROWS(4)
RWKV7_ROPE_KEYS_WKV7_ROWS(8)

// RAD-RWKV6 GLA recurrence, one token for each of `rows` sequences (state of row b: table.first[b], [H, N_k, N_v]
// key-major). Grid (heads, rows), one thread per value column j: S[i, j] ← S[i, j]·w_i + k_i·v_j, y_j = Σ_i S[i, j]·
// (scale·r_i), in the order of wkv6_f32.
extern "C" __global__ void wkv6_decode_rows_f32(const float* r, const float* k, const float* v, const float* w, float scale,
    int heads, int n, DecodeTable table, float* y)
{
    pdl_begin();
    int h = blockIdx.x;
    int seq = blockIdx.y;
    i64 o = ((i64)seq * heads + h) * n;
    float* sg = (float*)table.first[seq] + (i64)h * n * n;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
    {
        float vj = v[o + j];
        float acc = 0.f;
        for (int i = 0; i < n; i++)
        {
            float value = fmaf(vj, k[o + i], sg[(i64)i * n + j] * w[o + i]);
            sg[(i64)i * n + j] = value;
            acc = fmaf(value, scale * r[o + i], acc);
        }

        y[o + j] = acc;
    }
}

// RWKV token shift, one token for each of `rows` sequences: delta[b] = shift_b − x[b], then shift_b = x[b]
// (shift state of row b: table.first[b], [1, C]). One thread per element.
extern "C" __global__ void token_shift_rows_f32(const float* x, int rows, int c, DecodeTable table, float* delta)
{
    pdl_begin();
    GRID_STRIDE(idx, (i64)rows * c)
    {
        int b = (int)(idx / c);
        int j = (int)(idx % c);
        float* shift = (float*)table.first[b];
        float current = x[idx];
        delta[idx] = shift[j] - current;
        shift[j] = current;
    }
}
