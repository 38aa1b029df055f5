// MatMul: y[T, M] = x[T, K]·Wᵀ (OutIn, W [M, K]) or x·W (InOut, W [K, M]), + bias [M]; fp32 accumulation,
// weights read in their stored dtype (bf16, f16, f32) and converted in registers.
//   matmul_{outin,inout}_{dt}: a plain 64×64 shared-memory tile, 256 threads, 4×4 outputs per thread.
//   gemv_{dt}_vec{1,2,4,8}: T = 1, OutIn, W streamed with 16-byte loads (8 bf16/f16 or 4 f32 per lane), for K a
//   multiple of 8 (4) and 16-byte aligned W and x; 1, 2, 4 or 8 warps share a row (split K inside the block),
//   chosen so that even a few rows fill the GPU; four loads in flight per lane.
//   gemv_group_{dt}_vec{1,2,4,8}: the same for up to three matrices that share x, in one launch.
//   gate_up_swiglu_{dt}_vec{1,2,4,8}: the MLP's gate and up rows summed as gemv_group sums them, then silu(g) ⊙ u.
//   norm_gemv_group_*, norm_gate_up_swiglu_*: the same after the residual add + RmsNorm, computed by every block.
//   gemv_{dt}_scalar: T = 1, OutIn, any K: one warp per row, one element per lane per step.
//   gemv_inout_{dt}_{vec,scalar}: T = 1, InOut (LoRA factors): each lane owns 8 (4, 1) adjacent columns, the 8
//   warps of a block split the rows of its K range; K is split over blockIdx.y when the columns are few, and the
//   last block of each column tile to finish adds the splits (+ bias) in a fixed order.
#include "common.cuh"
#include "lora_down.cuh"

#define TILE_T 64
#define TILE_M 64
#define TILE_K 16

template <int DT, bool OUTIN>
__device__ __forceinline__ void matmul_tiled(const float* __restrict__ x, const void* __restrict__ w, const void* bias, int bias_dtype,
    float* __restrict__ y, int tokens, int k, int m)
{
    __shared__ float xs[TILE_K][TILE_T + 4];
    __shared__ float ws[TILE_K][TILE_M + 4];
    int tx = threadIdx.x % 16;
    int ty = threadIdx.x / 16;
    int t0 = blockIdx.y * TILE_T;
    int m0 = blockIdx.x * TILE_M;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;

    for (int k0 = 0; k0 < k; k0 += TILE_K)
    {
        for (int idx = threadIdx.x; idx < TILE_K * TILE_T; idx += blockDim.x)
        {
            // x: consecutive threads read consecutive k of one row.
            int kk = idx % TILE_K, tt = idx / TILE_K;
            int t = t0 + tt, kg = k0 + kk;
            xs[kk][tt] = (t < tokens && kg < k) ? x[(i64)t * k + kg] : 0.f;
            // W: consecutive threads read consecutive addresses in either layout.
            int mm, kw;
            if (OUTIN) { kw = idx % TILE_K; mm = idx / TILE_K; }
            else { mm = idx % TILE_M; kw = idx / TILE_M; }
            int mg = m0 + mm, kwg = k0 + kw;
            float wv = 0.f;
            if (mg < m && kwg < k) wv = load_w<DT>(w, OUTIN ? (i64)mg * k + kwg : (i64)kwg * m + mg);
            ws[kw][mm] = wv;
        }

        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TILE_K; kk++)
        {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = xs[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = ws[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }

        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        int t = t0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; j++)
        {
            int mg = m0 + tx + 16 * j;
            if (t < tokens && mg < m)
            {
                y[(i64)t * m + mg] = acc[i][j] + (bias != 0 ? load_any(bias, bias_dtype, mg) : 0.f);
            }
        }
    }
}

#define MATMUL(name, DT, OUTIN)                                                                                          \
    extern "C" __global__ void __launch_bounds__(256) name(const float* x, const void* w, const void* bias, int bias_dtype, \
        float* y, int tokens, int k, int m)                                                                              \
    {                                                                                                                    \
        pdl_begin();                                                                                                     \
        matmul_tiled<DT, OUTIN>(x, w, bias, bias_dtype, y, tokens, k, m);                                                \
    }

MATMUL(matmul_outin_f32, DT_F32, true)
MATMUL(matmul_outin_f16, DT_F16, true)
MATMUL(matmul_outin_bf16, DT_BF16, true)
MATMUL(matmul_inout_f32, DT_F32, false)
MATMUL(matmul_inout_f16, DT_F16, false)
MATMUL(matmul_inout_bf16, DT_BF16, false)

template <int DT>
__device__ __forceinline__ float dot_word(u32 word, float x0, float x1, float acc)
{
    if (DT == DT_F32)
    {
        return fmaf(__uint_as_float(word), x0, acc);
    }

    acc = fmaf(lo16<DT>(word), x0, acc);
    return fmaf(hi16<DT>(word), x1, acc);
}

// Where a GEMV reads x (the SX template argument): X_GLOBAL through the read-only cache; X_SHARED from shared memory,
// where the fused norm + GEMV kernels keep the normed row they computed themselves; X_WRITTEN with plain coherent loads,
// for an x that other blocks of the same grid wrote before a grid_barrier (the read-only path may serve stale data
// for memory written during the kernel).
#define X_GLOBAL 0
#define X_SHARED 1
#define X_WRITTEN 2

// Float4 i of x, read as SX says.
template <int SX>
__device__ __forceinline__ float4 load_x4(const float* __restrict__ x, int i)
{
    if (SX == X_SHARED) return ((const float4*)x)[i];
    if (SX == X_WRITTEN) return load_written4(x + 4 * i);
    return __ldg((const float4*)x + i);
}

// acc += (16 bytes of 16-bit weights q) · (their 8 elements of x: a, then b), in order.
template <int DT>
__device__ __forceinline__ float dot_chunk8(uint4 q, float4 a, float4 b, float acc)
{
    acc = dot_word<DT>(q.x, a.x, a.y, acc);
    acc = dot_word<DT>(q.y, a.z, a.w, acc);
    acc = dot_word<DT>(q.z, b.x, b.y, acc);
    return dot_word<DT>(q.w, b.z, b.w, acc);
}

// acc += (16 bytes of weights q) · (the matching 8 or 4 elements of x, starting at chunk c).
template <int DT, int SX>
__device__ __forceinline__ float dot_chunk(uint4 q, const float* __restrict__ x, int c, float acc)
{
    if (DT == DT_F32)
    {
        float4 a = load_x4<SX>(x, c);
        acc = fmaf(__uint_as_float(q.x), a.x, acc);
        acc = fmaf(__uint_as_float(q.y), a.y, acc);
        acc = fmaf(__uint_as_float(q.z), a.z, acc);
        return fmaf(__uint_as_float(q.w), a.w, acc);
    }

    return dot_chunk8<DT>(q, load_x4<SX>(x, 2 * c), load_x4<SX>(x, 2 * c + 1), acc);
}

#define GEMV_THREADS 256
// Loads in flight per lane, and the blocks per SM the register budget must allow (__launch_bounds__): tunable with
// RADLADS_NVRTC_DEFINES (e.g. "-DGEMV_UNROLL=8 -DGEMV_MIN_BLOCKS=8") for `bench-decode` sweeps. The order of the
// sums does not depend on either (a lane adds its chunks in row order), so results do not change.
#ifndef GEMV_UNROLL
#define GEMV_UNROLL 4
#endif
#ifndef GEMV_MIN_BLOCKS
#define GEMV_MIN_BLOCKS 1
#endif

// The last (< GEMV_UNROLL) chunks of a lane's row: all loads issued before the first FMA, so the tail costs one
// memory latency, not one per chunk (short rows such as o_proj at 7B are mostly tail). Same order of sums as a
// chunk-by-chunk loop.
template <int DT, int SX>
__device__ __forceinline__ float gemv_tail(const uint4* wr, const float* __restrict__ x, int c, int stride, int chunks, float acc)
{
    uint4 q[GEMV_UNROLL - 1];
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL - 1; u++)
        if (c + u * stride < chunks) q[u] = load_stream(wr + c + u * stride);
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL - 1; u++)
        if (c + u * stride < chunks) acc = dot_chunk<DT, SX>(q[u], x, c + u * stride, acc);
    return acc;
}

// The wait of a plain GEMV: pdl_begin() (the fused norm + GEMV kernels pass their own, which also computes x).
struct PdlWait
{
    __device__ __forceinline__ void operator()() const { pdl_begin(); }
};

// The first GEMV_UNROLL loads of a lane's share of a row (see gemv_row_part): into q, first = whether they were issued
// (the share has that many chunks). Split out so that a persistent kernel can issue its next row's loads before it
// finishes the current row's sums, and its loads never drain at a row boundary.
template <int WPR>
__device__ __forceinline__ bool gemv_row_begin(const uint4* wr, int chunks, int c0, bool valid, uint4 (&q)[GEMV_UNROLL])
{
    const int stride = 32 * WPR;
    bool first = valid && c0 + (GEMV_UNROLL - 1) * stride < chunks;
    if (first)
    {
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) q[u] = load_stream(wr + c0 + u * stride);
    }

    return first;
}

// The rest of the lane's share after gemv_row_begin: the sum over its chunks in order (0 when !valid).
template <int DT, int WPR, int SX>
__device__ __forceinline__ float gemv_row_finish(const uint4* wr, const float* __restrict__ x, int chunks, int c0, bool valid,
    uint4 (&q)[GEMV_UNROLL], bool first)
{
    const int stride = 32 * WPR;
    int c = c0;
    float acc = 0.f;
    if (valid)
    {
        if (first)
        {
#pragma unroll
            for (int u = 0; u < GEMV_UNROLL; u++) acc = dot_chunk<DT, SX>(q[u], x, c + u * stride, acc);
            c += GEMV_UNROLL * stride;
        }

        for (; c + (GEMV_UNROLL - 1) * stride < chunks; c += GEMV_UNROLL * stride)
        {
#pragma unroll
            for (int u = 0; u < GEMV_UNROLL; u++) q[u] = load_stream(wr + c + u * stride);
#pragma unroll
            for (int u = 0; u < GEMV_UNROLL; u++) acc = dot_chunk<DT, SX>(q[u], x, c + u * stride, acc);
        }

        acc = gemv_tail<DT, SX>(wr, x, c, stride, chunks, acc);
    }

    return acc;
}

// One warp's share of a row of W (wr, `chunks` 16-byte chunks): the lane starting at chunk c0 takes c0, c0 + 32·WPR,
// … in order, GEMV_UNROLL loads in flight. Calls wait() (every thread of the block, once; pdl_begin() by default):
// the first loads go out before the wait, since weights are never written and may stream while the kernel before
// this one (which wrote x) finishes. 0 when !valid. x is in global memory, or in shared memory with SX.
// gemv_vec, gemv_group, gate_up_swiglu, their norm_* forms and mlp_decode all sum a row through this (or its two
// halves), so they give the same bits.
template <int DT, int WPR, int SX = X_GLOBAL, typename Wait = PdlWait>
__device__ __forceinline__ float gemv_row_part(const uint4* wr, const float* __restrict__ x, int chunks, int c0, bool valid,
    Wait wait = Wait())
{
    uint4 q[GEMV_UNROLL];
    bool first = gemv_row_begin<WPR>(wr, chunks, c0, valid, q);
    wait();
    return gemv_row_finish<DT, WPR, SX>(wr, x, chunks, c0, valid, q, first);
}

// The end of a GEMV row: each lane's share summed over the warp, then (WPR > 1) over the row's WPR warps in order
// through partial (shared, a float a warp), and y[row] = that + bias (+ 0.f without one) by the row's first lane when
// valid. Every thread that Sync names calls it (the block, or a group of mlp_stream's consumers; warps are counted
// from the group's first); a caller that reuses partial (WPR > 1) must sync first.
template <int WPR, typename Sync = BlockSync>
__device__ __forceinline__ void gemv_row_write(float acc, float* partial, bool valid, float* __restrict__ y, int row, const void* bias,
    int bias_dtype, Sync sync = Sync())
{
    int warp = sync.tid() >> 5, lane = sync.tid() & 31;
    acc = warp_sum(acc);
    if (WPR > 1)
    {
        if (lane == 0) partial[warp] = acc;
        sync();
        if (warp % WPR != 0) return;
        for (int i = 1; i < WPR; i++) acc += partial[warp + i];
    }

    if (lane != 0 || !valid) return;
    y[row] = acc + (bias != 0 ? load_any(bias, bias_dtype, row) : 0.f);
}

// y[row] = x · W[row, :] + bias. Block of 8 warps = 8/WPR rows; the WPR warps of a row take interleaved 16-byte
// chunks of it, GEMV_UNROLL loads in flight per lane, then a warp sum and (WPR > 1) a sum over the row's warps.
template <int DT, int WPR>
__device__ __forceinline__ void gemv_vec(const float* __restrict__ x, const void* __restrict__ w, const void* bias, int bias_dtype,
    float* __restrict__ y, int k, int m)
{
    __shared__ float partial[GEMV_THREADS / 32];
    const int per = DT == DT_F32 ? 4 : 8;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int row = blockIdx.x * (GEMV_THREADS / 32 / WPR) + warp / WPR;
    int part = warp % WPR;
    const uint4* wr = (const uint4*)((const char*)w + (i64)(row < m ? row : 0) * k * (DT == DT_F32 ? 4 : 2));
    float acc = gemv_row_part<DT, WPR>(wr, x, k / per, part * 32 + lane, row < m);
    gemv_row_write<WPR>(acc, partial, row < m, y, row, bias, bias_dtype);
}

#define GEMV(name, DT, WPR)                                                                                              \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS, GEMV_MIN_BLOCKS) name(const float* x, const void* w,     \
        const void* bias,                                                                                                \
        int bias_dtype, float* y, int k, int m)                                                                          \
    {                                                                                                                    \
        gemv_vec<DT, WPR>(x, w, bias, bias_dtype, y, k, m);                                                              \
    }

#define GEMV_ALL(DTNAME, DT) \
    GEMV(gemv_##DTNAME##_vec1, DT, 1) GEMV(gemv_##DTNAME##_vec2, DT, 2) GEMV(gemv_##DTNAME##_vec4, DT, 4) GEMV(gemv_##DTNAME##_vec8, DT, 8)

GEMV_ALL(f32, DT_F32)
GEMV_ALL(f16, DT_F16)
GEMV_ALL(bf16, DT_BF16)

// Up to three OutIn GEMVs that share x (q/k/v, gate/up) in one launch: their rows are numbered one after the
// other (m0, then m1, then m2) and each warp finds its matrix from its row; otherwise as gemv_vec.
template <int DT, int WPR, int SX = X_GLOBAL, typename Wait = PdlWait>
__device__ __forceinline__ void gemv_group(const float* __restrict__ x, int k,
    const void* w0, const void* b0, int bt0, float* y0, int m0,
    const void* w1, const void* b1, int bt1, float* y1, int m1,
    const void* w2, const void* b2, int bt2, float* y2, int m2, int bx, Wait wait = Wait())
{
    __shared__ float partial[GEMV_THREADS / 32];
    const int per = DT == DT_F32 ? 4 : 8;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int global = bx * (GEMV_THREADS / 32 / WPR) + warp / WPR;
    int part = warp % WPR;
    bool valid = global < m0 + m1 + m2;
    const void* w = w0;
    const void* bias = b0;
    int bias_dtype = bt0;
    float* y = y0;
    int row = global;
    if (global >= m0 + m1)
    {
        w = w2; bias = b2; bias_dtype = bt2; y = y2; row = global - m0 - m1;
    }
    else if (global >= m0)
    {
        w = w1; bias = b1; bias_dtype = bt1; y = y1; row = global - m0;
    }

    const uint4* wr = (const uint4*)((const char*)w + (i64)(valid ? row : 0) * k * (DT == DT_F32 ? 4 : 2));
    float acc = gemv_row_part<DT, WPR, SX>(wr, x, k / per, part * 32 + lane, valid, wait);
    gemv_row_write<WPR>(acc, partial, valid, y, row, bias, bias_dtype);
}

#define GEMV_GROUP(name, DT, WPR)                                                                                        \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS, GEMV_MIN_BLOCKS) name(const float* x, int k,              \
        const void* w0, const void* b0, int bt0, float* y0, int m0, const void* w1, const void* b1, int bt1, float* y1,  \
        int m1, const void* w2, const void* b2, int bt2, float* y2, int m2)                                              \
    {                                                                                                                    \
        gemv_group<DT, WPR>(x, k, w0, b0, bt0, y0, m0, w1, b1, bt1, y1, m1, w2, b2, bt2, y2, m2, blockIdx.x);             \
    }

#define GEMV_GROUP_ALL(DTNAME, DT) \
    GEMV_GROUP(gemv_group_##DTNAME##_vec1, DT, 1) GEMV_GROUP(gemv_group_##DTNAME##_vec2, DT, 2)                            \
    GEMV_GROUP(gemv_group_##DTNAME##_vec4, DT, 4) GEMV_GROUP(gemv_group_##DTNAME##_vec8, DT, 8)

GEMV_GROUP_ALL(f32, DT_F32)
GEMV_GROUP_ALL(f16, DT_F16)
GEMV_GROUP_ALL(bf16, DT_BF16)

// IOps.MatMulSharedLoraSet at decode: gemv_group (q/k/v) and LoraSet's lora_down (lora_down.cuh) read the same x, so
// they share one launch (horizontal fusion): blocks [0, lora_blocks) are lora_down's (tile, split) blocks, tile-major
// as lora_down_* numbers them by (blockIdx.x, blockIdx.y), the rest are gemv_group's blocks. Each block runs exactly the
// code of its own kernel, so the bits are those of the two launches; one kernel boundary fewer on RAD-RWKV7's decode
// step (lora_down alone took ~6 µs of a 7B layer's critical path after the GEMV: CUPTI trace, H200, 2026-11-28). The
// LoRA blocks come first so that their split-K tails finish under the GEMV's streaming. lora_up follows as before.
#define GEMV_GROUP_LORA(name, DT, WPR)                                                                                   \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS, GEMV_MIN_BLOCKS) name(const float* x, int k,              \
        const void* w0, const void* b0, int bt0, float* y0, int m0, const void* w1, const void* b1, int bt1, float* y1,  \
        int m1, const void* w2, const void* b2, int bt2, float* y2, int m2, LoraTable table, float* lora_partial,        \
        int* counters, int rows_per_split, int tiles, int splits)                                                        \
    {                                                                                                                    \
        int lora_blocks = tiles * splits;                                                                                \
        if ((int)blockIdx.x < lora_blocks)                                                                               \
            lora_down<DT>(x, table, lora_partial, counters, k, rows_per_split, (int)blockIdx.x % tiles,                  \
                (int)blockIdx.x / tiles, splits);                                                                        \
        else                                                                                                             \
            gemv_group<DT, WPR>(x, k, w0, b0, bt0, y0, m0, w1, b1, bt1, y1, m1, w2, b2, bt2, y2, m2,                     \
                (int)blockIdx.x - lora_blocks);                                                                          \
    }

GEMV_GROUP_LORA(gemv_group_lora_down_bf16_vec1, DT_BF16, 1)
GEMV_GROUP_LORA(gemv_group_lora_down_bf16_vec2, DT_BF16, 2)
GEMV_GROUP_LORA(gemv_group_lora_down_bf16_vec4, DT_BF16, 4)
GEMV_GROUP_LORA(gemv_group_lora_down_bf16_vec8, DT_BF16, 8)

// The end of a gate_up_swiglu block (bx): each warp's row share acc summed over the warp, then over the row's WPR
// warps in order (+ 0.f, gemv_group's absent bias), gate and up rows meeting in sums, y = silu(g) ⊙ u as swiglu_f32
// rounds it. partial: 2·P·WPR floats, sums: 2·P, both shared; every thread that Sync names calls it.
template <int WPR, int P, typename Sync = BlockSync>
__device__ __forceinline__ void gate_up_write(float acc, float* partial, float* sums, int bx, float* __restrict__ y, int f,
    Sync sync = Sync())
{
    int warp = sync.tid() >> 5, lane = sync.tid() & 31;
    int slot = warp / WPR, part = warp % WPR;
    acc = warp_sum(acc);
    if (lane == 0) partial[warp] = acc;
    sync();
    if (part == 0 && lane == 0)
    {
        float total = partial[warp];
        for (int i = 1; i < WPR; i++) total += partial[warp + i];
        sums[slot] = total + 0.f;
    }

    sync();
    if (sync.tid() < P)
    {
        int j = bx * P + sync.tid();
        if (j < f)
        {
            float g = sums[sync.tid()];
            y[j] = (sigmoid_(g) * g) * sums[P + sync.tid()];
        }
    }
}

// The MLP's gate/up GEMVs and SwiGLU in one launch (T = 1, no bias): a block of 2·P·WPR warps takes P rows of W_gate
// and the same P rows of W_up (warps [0, P·WPR) gate, the rest up), WPR warps per row exactly as gemv_group sums it
// (same chunks, same order, + 0.f as its absent bias adds), meets in shared memory and writes y = silu(g) ⊙ u as
// swiglu_f32 rounds it: the same bits as gemv_group then swiglu_f32 when the host picks gemv_group's WPR.
template <int DT, int WPR, int P, int SX = X_GLOBAL, typename Wait = PdlWait>
__device__ __forceinline__ void gate_up_swiglu(const float* __restrict__ x, int k, const void* wg, const void* wu,
    float* __restrict__ y, int f, int bx, Wait wait = Wait())
{
    __shared__ float partial[2 * P * WPR];
    __shared__ float sums[2 * P];
    const int per = DT == DT_F32 ? 4 : 8;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int slot = warp / WPR;                 // [0, P): gate rows, [P, 2P): up rows
    int part = warp % WPR;
    int row = bx * P + slot % P;
    bool valid = row < f;
    const void* w = slot < P ? wg : wu;
    const uint4* wr = (const uint4*)((const char*)w + (i64)(valid ? row : 0) * k * (DT == DT_F32 ? 4 : 2));
    float acc = gemv_row_part<DT, WPR, SX>(wr, x, k / per, part * 32 + lane, valid, wait);

    gate_up_write<WPR, P>(acc, partial, sums, bx, y, f);
}

#define GATE_UP(name, DT, WPR, P)                                                                                        \
    extern "C" __global__ void __launch_bounds__(64 * WPR * P) name(const float* x, int k, const void* wg, const void* wu, \
        float* y, int f)                                                                                                 \
    {                                                                                                                    \
        gate_up_swiglu<DT, WPR, P>(x, k, wg, wu, y, f, blockIdx.x);                                                      \
    }

#define GATE_UP_ALL(DTNAME, DT)                                                                                          \
    GATE_UP(gate_up_swiglu_##DTNAME##_vec1, DT, 1, 4) GATE_UP(gate_up_swiglu_##DTNAME##_vec2, DT, 2, 2)                  \
    GATE_UP(gate_up_swiglu_##DTNAME##_vec4, DT, 4, 1) GATE_UP(gate_up_swiglu_##DTNAME##_vec8, DT, 8, 1)

GATE_UP_ALL(f32, DT_F32)
GATE_UP_ALL(f16, DT_F16)
GATE_UP_ALL(bf16, DT_BF16)

// x in shared memory split by chunk halves (mlp_stream): float4 i (of a row of nc 8-float chunks) at split_at(i, nc),
// the first halves of all chunks, then the second halves. A warp reading 8 floats of each lane's chunk then loads two
// runs of consecutive float4s; the plain layout puts its lanes 32 bytes apart, a 2-way bank conflict on every x load.
__device__ __forceinline__ int split_at(int i, int nc) { return (i & 1) * nc + (i >> 1); }

// The norm before the mixer's q/k/v and before the MLP's gate/up fused into those GEMVs (T = 1; host:
// CudaOps.AddRmsNormMatMulShared, CudaOps.AddRmsNormGateUpSwiGlu): every block computes s = h + b (b null: s = h,
// the first layer's plain RmsNorm) and x = w ⊙ s / sqrt(mean(s²) + eps) for the whole row itself, into shared
// memory, then sums its rows exactly as gemv_group / gate_up_swiglu do, reading x from there. Thread t < nt does
// the work of add_rms_norm_f32's thread t (nt = its block size, the host's NormGeometry; NORM_VEC float4 chunks
// t, t + nt, …) and the others add 0 to block_sum, so s, the sum of squares, x and therefore every GEMV sum are the
// bits of add_rms_norm_f32 then gemv_group (or gate_up_swiglu). h is updated in place, so no block may write it
// while another still reads it: each block counts itself in *counter after its reads (they are done: block_sum
// consumed them), and the last block to count writes h = s and y = x for the row and puts the counter back to 0.
// Every other launch on the stream runs its counting after its griddepcontrol.wait, i.e. after this grid has
// completed, so one counter per backend serves every launch and every replay of a recorded graph.
// Trade-off: each block reads 2·C floats of h and b (from L2) instead of C of x; at 7B gemv_group has 1,152 blocks
// (33 MB of L2 reads beside 33 MB of q/k/v weights from HBM) in exchange for a launch of add_rms_norm_f32 (3.7 µs,
// one block) on the critical path. That measured slower (NOTES, seventh session): off unless RADLADS_NORM_GEMV=1.
struct ResidualNorm
{
    float* h;
    const float* b;
    const void* w;
    int w_dtype;
    float eps;
    float* y;
    int* counter;
    int c;
    int nt;
    float* xs;
    float* ss; // without a counter: where to keep s = h + b as well (mlp_decode's block 0: global scratch), or null
    int split; // x in the split layout of that many chunks (split_at; mlp_stream), or 0: plain (without a counter only)

    __device__ __forceinline__ void operator()() const { run(BlockSync()); }

    // The same with the block's barriers among the threads Sync names (the first `warps` warps; -1: the block), for
    // mlp_stream, whose producer warp never waits for the norm.
    template <typename Sync>
    __device__ __forceinline__ void run(Sync sync, int warps = -1) const
    {
        __shared__ float scratch[32];
        __shared__ int last;
        int tid = threadIdx.x;
        bool mine = tid < nt;
        int chunks = c >> 2;
        float4* hr = (float4*)h;
        const float4* br = (const float4*)b;
        float4* xr = (float4*)xs;
        // The norm's weights are never written: loaded before the wait, as rms_norm_vec loads them.
        float4 wv[NORM_VEC];
        load_norm_weights(wv, w, w_dtype, c, tid, nt, mine);

        pdl_begin();
        float4 v[NORM_VEC];
        float inv = rms_norm_inverse(hr, br, v, tid, nt, chunks, mine, c, eps, scratch, sync, warps);
#pragma unroll
        for (int j = 0; j < NORM_VEC; j++)
        {
            int i = tid + j * nt;
            if (mine && i < chunks) xr[split != 0 ? split_at(i, split) : i] = rms_normed4(v[j], inv, wv[j]);
        }

        // x complete for the GEMV; this block's reads of h and b are done (block_sum needed them all).
        sync();
        if (counter == nullptr)
        {
            // mlp_decode publishes h and y itself, after its grid barrier, from s kept here (its y may be b).
#pragma unroll
            for (int j = 0; j < NORM_VEC; j++)
            {
                int i = tid + j * nt;
                if (ss != nullptr && mine && i < chunks) ((float4*)ss)[i] = v[j];
            }
            return;
        }
        if (tid == 0)
        {
            __threadfence();
            last = atomicAdd(counter, 1) == (int)gridDim.x - 1;
            if (last) *counter = 0;
        }

        sync();
        if (!last) return;
        // Every other block has read h and b: write the row's h and y (x as the plain norm writes it).
        __threadfence();
        float4* yr = (float4*)y;
#pragma unroll
        for (int j = 0; j < NORM_VEC; j++)
        {
            int i = tid + j * nt;
            if (mine && i < chunks)
            {
                if (b != nullptr) hr[i] = v[j];
                yr[i] = xr[i];
            }
        }
    }
};

// Dynamic shared memory: k floats (x).
#define NORM_GEMV_GROUP(name, DT, WPR)                                                                                   \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS, GEMV_MIN_BLOCKS) name(float* h, const float* hb,         \
        const void* nw, int nwt, float eps, float* normed, int* counter, int nt, int k,                                  \
        const void* w0, const void* b0, int bt0, float* y0, int m0, const void* w1, const void* b1, int bt1, float* y1,  \
        int m1, const void* w2, const void* b2, int bt2, float* y2, int m2)                                              \
    {                                                                                                                    \
        extern __shared__ float xs[];                                                                                    \
        ResidualNorm norm{h, hb, nw, nwt, eps, normed, counter, k, nt, xs};                                              \
        gemv_group<DT, WPR, X_SHARED>(xs, k, w0, b0, bt0, y0, m0, w1, b1, bt1, y1, m1, w2, b2, bt2, y2, m2, blockIdx.x, norm); \
    }

#define NORM_GEMV_GROUP_ALL(DTNAME, DT) \
    NORM_GEMV_GROUP(norm_gemv_group_##DTNAME##_vec1, DT, 1) NORM_GEMV_GROUP(norm_gemv_group_##DTNAME##_vec2, DT, 2)       \
    NORM_GEMV_GROUP(norm_gemv_group_##DTNAME##_vec4, DT, 4) NORM_GEMV_GROUP(norm_gemv_group_##DTNAME##_vec8, DT, 8)

NORM_GEMV_GROUP_ALL(f32, DT_F32)
NORM_GEMV_GROUP_ALL(f16, DT_F16)
NORM_GEMV_GROUP_ALL(bf16, DT_BF16)

// Dynamic shared memory: k floats (x).
#define NORM_GATE_UP(name, DT, WPR, P)                                                                                   \
    extern "C" __global__ void __launch_bounds__(64 * WPR * P) name(float* h, const float* hb, const void* nw, int nwt,  \
        float eps, float* normed, int* counter, int nt, int k, const void* wg, const void* wu, float* y, int f)          \
    {                                                                                                                    \
        extern __shared__ float xs[];                                                                                    \
        ResidualNorm norm{h, hb, nw, nwt, eps, normed, counter, k, nt, xs};                                              \
        gate_up_swiglu<DT, WPR, P, X_SHARED>(xs, k, wg, wu, y, f, blockIdx.x, norm);                                     \
    }

#define NORM_GATE_UP_ALL(DTNAME, DT)                                                                                     \
    NORM_GATE_UP(norm_gate_up_swiglu_##DTNAME##_vec1, DT, 1, 4) NORM_GATE_UP(norm_gate_up_swiglu_##DTNAME##_vec2, DT, 2, 2) \
    NORM_GATE_UP(norm_gate_up_swiglu_##DTNAME##_vec4, DT, 4, 1) NORM_GATE_UP(norm_gate_up_swiglu_##DTNAME##_vec8, DT, 8, 1)

NORM_GATE_UP_ALL(f32, DT_F32)
NORM_GATE_UP_ALL(f16, DT_F16)
NORM_GATE_UP_ALL(bf16, DT_BF16)

// The whole MLP of one decode row after its residual norm, in one persistent launch (T = 1, no biases; host:
// CudaOps.AddRmsNormMlp): h = h + b, normed = RmsNorm(h) ⊙ w, act = silu(normed·W_gateᵀ) ⊙ (normed·W_upᵀ),
// y = act·W_downᵀ. Grid = the blocks that fit on the GPU at once (a cooperative launch), each taking the virtual
// blocks bx = blockIdx.x, + gridDim.x, … of gate_up_swiglu (P row pairs, WPR warps a row) and then of the down GEMV
// (8/WPRD rows, WPRD warps a row), each summed as those kernels sum it: the same bits as add_rms_norm_f32,
// gate_up_swiglu and gemv_vec. A block issues its next virtual block's first loads before it reduces the current
// one (and the down phase's first before the grid barrier between the phases), so its loads never drain at a row
// boundary: a separate kernel hides that drain with its other resident blocks, a persistent one must not have it.
// Every block computes the norm itself into shared memory (x, C floats; ResidualNorm without its counter), once;
// block 0 also keeps s = h + b in sk (global scratch of C floats: the op's upScratch, unused here) and writes h and
// normed after the barrier, when every block has read h and b (y may be b: the model passes the mixer's output
// buffer). act is read back with load_written4 (other blocks wrote it). bar: two ints of grid_barrier state.
template <int DT, int WPR, int P, int WPRD>
__device__ __forceinline__ void mlp_decode(float* h, const float* hb, const void* nw, int nwt, float eps, float* normed, int nt,
    int c, const void* wg, const void* wu, const void* wd, float* act, int f, float* y, int* bar, float* sk, float* xs)
{
    __shared__ float partial[GEMV_THREADS / 32];
    __shared__ float sums[2 * P];
    const int per = DT == DT_F32 ? 4 : 8;
    const int wbytes = DT == DT_F32 ? 4 : 2;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    uint4 q[GEMV_UNROLL];

    // Gate/up: warps [0, P·WPR) take gate rows, the rest the same up rows (gate_up_swiglu's layout).
    const int slot = warp / WPR, part = warp % WPR, gc = c / per;
    const void* w = slot < P ? wg : wu;
    int bx = blockIdx.x;
    int row = bx * P + slot % P;
    bool first = gemv_row_begin<WPR>((const uint4*)((const char*)w + (i64)(row < f ? row : 0) * c * wbytes), gc, part * 32 + lane,
        row < f, q);
    if (bx * P < f || blockIdx.x == 0) // block 0 publishes normed from its x below, even without gate/up rows
    {
        ResidualNorm{h, hb, nw, nwt, eps, normed, nullptr, c, nt, xs, blockIdx.x == 0 && hb != nullptr ? sk : nullptr}();
    }

    for (; bx * P < f; bx += gridDim.x)
    {
        const uint4* wr = (const uint4*)((const char*)w + (i64)(row < f ? row : 0) * c * wbytes);
        float acc = gemv_row_finish<DT, WPR, X_SHARED>(wr, xs, gc, part * 32 + lane, row < f, q, first);
        int next = bx + gridDim.x;
        int nrow = next * P + slot % P;
        if (next * P < f)
        {
            first = gemv_row_begin<WPR>((const uint4*)((const char*)w + (i64)(nrow < f ? nrow : 0) * c * wbytes), gc, part * 32 + lane,
                nrow < f, q);
        }

        gate_up_write<WPR, P>(acc, partial, sums, bx, act, f);

        row = nrow;
    }

    // Down: the block's first rows' loads, then the barrier (every block, rows or not), then the rows.
    const int dpart = warp % WPRD, rows_per = 8 / WPRD, dc = f / per;
    bx = blockIdx.x;
    row = bx * rows_per + warp / WPRD;
    first = gemv_row_begin<WPRD>((const uint4*)((const char*)wd + (i64)(row < c ? row : 0) * f * wbytes), dc, dpart * 32 + lane, row < c, q);
    grid_barrier(bar);
    for (; bx * rows_per < c; bx += gridDim.x)
    {
        const uint4* wr = (const uint4*)((const char*)wd + (i64)(row < c ? row : 0) * f * wbytes);
        float acc = gemv_row_finish<DT, WPRD, X_WRITTEN>(wr, act, dc, dpart * 32 + lane, row < c, q, first);
        int next = bx + gridDim.x;
        int nrow = next * rows_per + warp / WPRD;
        if (next * rows_per < c)
        {
            first = gemv_row_begin<WPRD>((const uint4*)((const char*)wd + (i64)(nrow < c ? nrow : 0) * f * wbytes), dc, dpart * 32 + lane,
                nrow < c, q);
        }

        gemv_row_write<WPRD>(acc, partial, row < c, y, row, nullptr, 0);
        if (WPRD > 1) __syncthreads(); // partial is the next row's

        row = nrow;
    }

    if (blockIdx.x != 0) return;
    for (int i = threadIdx.x; i < c; i += blockDim.x)
    {
        if (hb != nullptr) h[i] = sk[i]; // this block's own writes, ordered by the barrier's __syncthreads
        normed[i] = xs[i];
    }
}

// Blocks per SM the register budget must allow (the grid is every resident block). gate_up_swiglu alone runs 8 a SM at
// 34 registers (gate/up of 7B in 71 µs at 80 % of DRAM peak), the down GEMV 4 at 60; this kernel at 4 (64 registers,
// a few spilled: scripts/kernel-registers) streams the 7B MLP in 114 µs at 75 % (125 µs at 68 % before its loads
// were pipelined across rows), at 8 (32 registers, heavy spills) it took 211 µs. ncu, H200, 2026-11-28.
// RADLADS_NVRTC_DEFINES=-DMLP_MIN_BLOCKS=N for sweeps. Off by default (CudaBackend.PersistentMlp): still slower than
// the three launches it replaces.
#ifndef MLP_MIN_BLOCKS
#define MLP_MIN_BLOCKS 4
#endif

// Dynamic shared memory: c floats (x). WPR, P: gate_up_swiglu's geometry (levels 0–2, 256 threads); WPRD: the down GEMV's.
#define MLP_DECODE(name, DT, WPR, P, WPRD)                                                                               \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS, MLP_MIN_BLOCKS) name(float* h, const float* hb,          \
        const void* nw, int nwt,                                                                                         \
        float eps, float* normed, int nt, int c, const void* wg, const void* wu, const void* wd, float* act, int f,      \
        float* y, int* bar, float* sk)                                                                                   \
    {                                                                                                                    \
        extern __shared__ float xs[];                                                                                    \
        mlp_decode<DT, WPR, P, WPRD>(h, hb, nw, nwt, eps, normed, nt, c, wg, wu, wd, act, f, y, bar, sk, xs);            \
    }

#define MLP_DECODE_DOWN(DTNAME, DT, G, WPR, P)                                                                           \
    MLP_DECODE(mlp_decode_##DTNAME##_g##G##_d0, DT, WPR, P, 1) MLP_DECODE(mlp_decode_##DTNAME##_g##G##_d1, DT, WPR, P, 2) \
    MLP_DECODE(mlp_decode_##DTNAME##_g##G##_d2, DT, WPR, P, 4) MLP_DECODE(mlp_decode_##DTNAME##_g##G##_d3, DT, WPR, P, 8)

MLP_DECODE_DOWN(bf16, DT_BF16, 0, 1, 4)
MLP_DECODE_DOWN(bf16, DT_BF16, 1, 2, 2)
MLP_DECODE_DOWN(bf16, DT_BF16, 2, 4, 1)

// The decode MLP streamed (T = 1, bf16, no biases; host: CudaOps.AddRmsNormMlp with CudaBackend.StreamMlp, sm_90):
// what mlp_decode computes, with the same bits (each row summed in gate_up_swiglu's or gemv_vec's chunk order, the
// same row ends), but its weights reach shared memory by bulk copies that one producer warp keeps issuing into a ring
// of STREAM_STAGE-byte stages whatever the consumer threads are doing: the norm, a row's end, the grid barrier
// between gate/up and down, act's reload. So the next phase's weights are already in flight across every boundary,
// and no register holds a byte in flight (mlp_decode's loads in registers cost it half of gate/up's warps: NOTES,
// eighth session). One block a SM (the ring takes most of its shared memory). A stage holds 8/WPR rows of a k-slice
// (gate/up: P gate rows then the same P up rows, 1,024·WPR columns; down: 8/WPRD rows, 1,024·WPRD columns), so each
// consumer lane sums exactly 4 chunks of its row a stage, at the chunks gemv_row_finish would give it. Stages come
// in one order that producer and consumers both walk: the block's gate/up groups (g = blockIdx.x, + gridDim.x, …,
// P rows each) slice by slice, then its down groups; row group k of a phase goes to consumer group k % STREAM_GROUPS
// and that group's own ring (below). Empty/full mbarriers per slot. The producer's cost a stage is
// what bounds the stream (one warp, dependent integer work: ~375 instructions a stage took ~1.3 µs, a third of the
// DRAM rate), so it walks rows by pointer, one lane a row, slots and parities by counters. Before sm_90 (and under
// the emulator without --sm90) there is no producer and one consumer group: the consumers copy each stage themselves.
#define STREAM_STAGE 16384
// Consumer groups (sm_90): two groups of 8 warps take alternate row groups (each its own rows' stages, in order, so
// every row is summed as before): one group alone left the SM waiting on its shared-memory loads (short scoreboard),
// the stream at ~60 % of DRAM peak. Each group has its own ring (half the slots): with one ring shared, a group running
// ahead could wait on a slot a lap before the other group's use of it had landed, and a parity wait cannot tell the
// two laps apart (it passed at once, read the old stage and arrived on the wrong phase: the H200 hung now and then at
// 7B, 2026-11-28). A ring that one group consumes in order never lets a wait lap its barrier.
#if __CUDA_ARCH__ >= 900
#define STREAM_GROUPS 2
#else
#define STREAM_GROUPS 1
#endif
#define STREAM_CONSUMERS (256 * STREAM_GROUPS)

template <int WPR, int WPRD>
struct MlpStream
{
    static constexpr int P = 4 / WPR;      // gate/up row pairs a stage (gate_up_swiglu's P in 256 threads)
    static constexpr int RD = 8 / WPRD;    // down rows a stage
    static constexpr int KG = 1024 * WPR;  // columns of a gate/up row a stage
    static constexpr int KD = 1024 * WPRD; // columns of a down row a stage
    const void* wg;
    const void* wu;
    const void* wd;
    int c, f;

    __device__ __forceinline__ int groups(int phase) const { return phase == 0 ? (f + P - 1) / P : (c + RD - 1) / RD; }
    __device__ __forceinline__ int rows(int phase) const { return phase == 0 ? 2 * P : RD; }
    // Bytes of a row (whole), and of its slice in a stage (also where row i of a stage starts: i times that).
    __device__ __forceinline__ int length(int phase) const { return 2 * (phase == 0 ? c : f); }
    __device__ __forceinline__ int step(int phase) const { return phase == 0 ? 2 * KG : 2 * KD; }
    // Stages a row group takes (its rows' k-slices).
    __device__ __forceinline__ int slices(int phase) const { return (length(phase) + step(phase) - 1) / step(phase); }

    // Row i of group g: where it starts, and whether the matrix has it.
    __device__ __forceinline__ const char* row_start(int phase, int g, int i, bool& valid) const
    {
        if (phase == 0)
        {
            const int row = g * P + i % P;
            valid = row < f;
            return (const char*)(i < P ? wg : wu) + (i64)(valid ? row : 0) * c * 2;
        }

        const int row = g * RD + i;
        valid = row < c;
        return (const char*)wd + (i64)(valid ? row : 0) * f * 2;
    }
};

// A position in a ring: the slot and the parity of its current use (its full barrier's phase; the empty barrier's
// phase before it is the other parity).
struct RingAt
{
    int slot;
    unsigned parity;

    __device__ __forceinline__ void next(int slots)
    {
        if (++slot == slots)
        {
            slot = 0;
            parity ^= 1u;
        }
    }
};

// One consumer group's ring: `slots` stages of STREAM_STAGE bytes and a full and an empty mbarrier a slot.
struct StreamRing
{
    char* stages;
    unsigned long long* full;
    unsigned long long* empty;
    int slots;

    __device__ __forceinline__ RingAt at(int n) const { return RingAt{n % slots, (unsigned)((n / slots) & 1)}; }
    __device__ __forceinline__ char* stage(RingAt a) const { return stages + (i64)a.slot * STREAM_STAGE; }
};

// Group q's ring of the block's rings (ring bytes, then 2·slots·STREAM_GROUPS mbarriers at bars).
__device__ __forceinline__ StreamRing stream_ring(char* ring, unsigned long long* bars, int slots, int q)
{
    return StreamRing{ring + (i64)q * slots * STREAM_STAGE, bars + 2 * q * slots, bars + (2 * q + 1) * slots, slots};
}

#if __CUDA_ARCH__ >= 900
// The producer's copies of one row group's stages into ring r, from `at` on (`issued`: stages that ring has had so far):
// lane i copies row i of each stage (one bulk copy), after lane 0 has waited for the slot's consumers to release it
// (empty) and declared the stage's bytes on its full barrier.
template <int WPR, int WPRD>
__device__ __forceinline__ void stream_produce_group(const MlpStream<WPR, WPRD>& m, int phase, int g, const StreamRing& r, RingAt& at,
    int& issued)
{
    const int lane = threadIdx.x & 31, rows = m.rows(phase), step = m.step(phase);
    bool valid;
    const char* src = m.row_start(phase, g, lane < rows ? lane : 0, valid);
    valid = valid && lane < rows;
    const unsigned count = __popc(__ballot_sync(0xffffffffu, valid));
    char* dst = r.stages + lane * step;
    for (int left = m.length(phase); left > 0; left -= step, src += step)
    {
        const int bytes = min(step, left);
        if (lane == 0)
        {
            if (issued >= r.slots) mbar_wait(r.empty + at.slot, at.parity ^ 1u);
            mbar_arrive_expect(r.full + at.slot, count * bytes);
        }

        __syncwarp();
        if (valid) bulk_copy(dst + (i64)at.slot * STREAM_STAGE, src, bytes, r.full + at.slot);
        issued++;
        at.next(r.slots);
    }
}

// The producer warp (sm_90): the block's row groups in order, row group k of a phase into ring k % STREAM_GROUPS (the
// groups unrolled, so each ring's position stays in registers).
template <int WPR, int WPRD>
__device__ __forceinline__ void mlp_stream_produce(const MlpStream<WPR, WPRD>& m, char* ring, unsigned long long* bars, int slots)
{
    StreamRing r[STREAM_GROUPS];
    RingAt at[STREAM_GROUPS];
    int issued[STREAM_GROUPS];
#pragma unroll
    for (int q = 0; q < STREAM_GROUPS; q++)
    {
        r[q] = stream_ring(ring, bars, slots, q);
        at[q] = RingAt{0, 0u};
        issued[q] = 0;
    }

    for (int phase = 0; phase < 2; phase++)
    {
        const int groups = m.groups(phase), G = gridDim.x;
        for (int g = blockIdx.x; g < groups; g += STREAM_GROUPS * G)
        {
#pragma unroll
            for (int q = 0; q < STREAM_GROUPS; q++)
                if (g + q * G < groups) stream_produce_group(m, phase, g + q * G, r[q], at[q], issued[q]);
        }
    }
}
#endif

// A consumer's wait for the stage at `at` of its ring (sm_90: its full barrier; else the consumers fill it now from
// row_start + s·step), and its release after reading it (sm_90: one arrival a warp on empty; else a consumer sync).
template <int WPR, int WPRD>
__device__ __forceinline__ const char* stream_acquire(const MlpStream<WPR, WPRD>& m, int phase, int g, int s, RingAt at, const StreamRing& r)
{
    char* stage = r.stage(at);
#if __CUDA_ARCH__ >= 900
    (void)m;
    (void)phase;
    (void)g;
    (void)s;
    mbar_wait(r.full + at.slot, at.parity);
#else
    for (int i = 0; i < m.rows(phase); i++)
    {
        bool valid;
        const uint4* src = (const uint4*)(m.row_start(phase, g, i, valid) + (i64)s * m.step(phase));
        uint4* to = (uint4*)(stage + i * m.step(phase));
        const int bytes = valid ? min(m.step(phase), m.length(phase) - s * m.step(phase)) : 0;
        for (int q = threadIdx.x; q < bytes / 16; q += STREAM_CONSUMERS) to[q] = src[q];
    }

    __syncthreads();
#endif
    return stage;
}

__device__ __forceinline__ void stream_release(RingAt at, const StreamRing& r)
{
#if __CUDA_ARCH__ >= 900
    __syncwarp();
    if ((threadIdx.x & 31) == 0) mbar_arrive(r.empty + at.slot);
#else
    (void)at;
    (void)r;
    __syncthreads();
#endif
}

// acc += the lane's (up to) 4 chunks of one row's slice: chunks part·32 + lane + u·32·W of the slice (of `chunks`),
// x chunk base + that, in gemv_row_finish's order.
template <int W>
__device__ __forceinline__ float stream_slice(const uint4* w, const float* xs, int nc, int chunks, int base, int part, int lane, float acc)
{
    const float4* x4 = (const float4*)xs;
    uint4 q[4];
#pragma unroll
    for (int u = 0; u < 4; u++)
    {
        const int cl = part * 32 + lane + u * 32 * W;
        if (cl < chunks) q[u] = w[cl];
    }
#pragma unroll
    for (int u = 0; u < 4; u++)
    {
        const int cl = part * 32 + lane + u * 32 * W;
        if (cl < chunks) acc = dot_chunk8<DT_BF16>(q[u], x4[base + cl], x4[nc + base + cl], acc); // x split: nc chunks
    }

    return acc;
}

// One consumer warp's sum of its share (row `slot` of the stages, part `part` of it; W warps a row) over the slices of
// row group g of a phase, whose first stage is at `at`: each stage waited for, summed (when the row is in the matrix)
// and released, in order.
template <int W, int WPR, int WPRD>
__device__ __forceinline__ float stream_row(const MlpStream<WPR, WPRD>& m, int phase, int g, RingAt at, int slot, int part, bool valid,
    const float* xs, const StreamRing& r)
{
    const int lane = threadIdx.x & 31, step = m.step(phase), length = m.length(phase);
    float acc = 0.f;
    for (int s = 0; s < m.slices(phase); s++)
    {
        const char* stage = stream_acquire(m, phase, g, s, at, r);
        // A slice's columns are step / 2 (bf16), 8 to a chunk.
        if (valid)
            acc = stream_slice<W>((const uint4*)(stage + slot * step), xs, length / 16, min(step, length - s * step) / 16, s * (step / 16), part,
                lane, acc);
        stream_release(at, r);
        at.next(r.slots);
    }

    return acc;
}

// Shared memory: the rings (stages · STREAM_STAGE bytes, stages / STREAM_GROUPS slots a consumer group), x (max(C, F)
// floats: normed, then act; split_at's layout), 2·stages mbarriers (a group's full ones, then its empty ones).
// Other arguments as mlp_decode's; block 0 writes normed right after its norm (no block reads it) and h at the end.
template <int WPR, int WPRD>
__device__ __forceinline__ void mlp_stream(float* h, const float* hb, const void* nw, int nwt, float eps, float* normed, int nt, int c,
    const void* wg, const void* wu, const void* wd, float* act, int f, float* y, int* bar, float* sk, int stages, char* smem)
{
    using M = MlpStream<WPR, WPRD>;
    constexpr int P = M::P;
    __shared__ float partial[STREAM_GROUPS][8];
    __shared__ float sums[STREAM_GROUPS][8];
    const M m{wg, wu, wd, c, f};
    char* ring = smem;
    float* xs = (float*)(smem + (i64)stages * STREAM_STAGE);
    unsigned long long* bars = (unsigned long long*)(xs + (c > f ? c : f));
    const int warp = threadIdx.x >> 5, slots = stages / STREAM_GROUPS;
#if __CUDA_ARCH__ >= 900
    if (threadIdx.x == 0)
    {
        for (int g = 0; g < STREAM_GROUPS; g++)
        {
            const StreamRing r = stream_ring(ring, bars, slots, g);
            for (int i = 0; i < slots; i++)
            {
                mbar_init(r.full + i, 1);
                mbar_init(r.empty + i, 8); // the group's 8 warps
            }
        }

        mbar_init_fence();
    }

    __syncthreads();
    if (warp == STREAM_CONSUMERS / 32)
    {
        mlp_stream_produce(m, ring, bars, slots);
        return;
    }
#endif
    // Consumer group q takes the block's row groups k = q, q + STREAM_GROUPS, … (g = blockIdx.x + k·gridDim.x) of each
    // phase, from its own ring, where the producer put them: its j-th row group of a phase (k = q + j·STREAM_GROUPS)
    // at stage j·slices + s of the phase, the down phase after its gate/up stages.
    const int q = threadIdx.x / 256, lw = warp & 7;
    const StreamRing r = stream_ring(ring, bars, slots, q);
    const NamedSync all{1, STREAM_CONSUMERS, 0}, mine{2 + q, 256, 256 * q};
    ResidualNorm{h, hb, nw, nwt, eps, normed, nullptr, c, nt, xs, blockIdx.x == 0 && hb != nullptr ? sk : nullptr, c / 8}.run(all,
        STREAM_CONSUMERS / 32);
    if (blockIdx.x == 0)
    {
        for (int i = threadIdx.x; i < c / 4; i += STREAM_CONSUMERS) ((float4*)normed)[i] = ((const float4*)xs)[split_at(i, c / 8)];
    }

    const int G = gridDim.x, b = blockIdx.x;
    const int count0 = b < m.groups(0) ? (m.groups(0) - b + G - 1) / G : 0; // the block's gate/up groups
    const int own0 = (count0 - q + STREAM_GROUPS - 1) / STREAM_GROUPS; // those in this group's ring
    // Gate/up: warp w of the group sums row slot w / WPR of each stage (gate rows, then the same up rows), part w % WPR.
    {
        const int slot = lw / WPR, part = lw % WPR;
        for (int k = q; k < count0; k += STREAM_GROUPS)
        {
            const int g = b + k * G;
            const float acc = stream_row<WPR>(m, 0, g, r.at((k / STREAM_GROUPS) * m.slices(0)), slot, part, g * P + slot % P < f, xs, r);
            gate_up_write<WPR, P>(acc, partial[q], sums[q], g, act, f, mine);
        }
    }

    // Every block's act is written; x becomes act (this block's gate/up reads of x are done: the barrier syncs them).
    // Eight loads in flight a thread (the loads are volatile asm: one at a time, each waited for by its store, would
    // take ~7 µs at F = 18,944).
    grid_barrier(bar, all);
    for (int i0 = threadIdx.x; i0 < f / 4; i0 += 8 * STREAM_CONSUMERS)
    {
        float4 v[8];
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (i0 + u * STREAM_CONSUMERS < f / 4) v[u] = load_written4(act + 4 * (i0 + u * STREAM_CONSUMERS));
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (i0 + u * STREAM_CONSUMERS < f / 4) ((float4*)xs)[split_at(i0 + u * STREAM_CONSUMERS, f / 8)] = v[u];
    }

    all();
    {
        const int slot = lw / WPRD, part = lw % WPRD;
        for (int k = q; b + k * G < m.groups(1); k += STREAM_GROUPS)
        {
            const int g = b + k * G, row = g * M::RD + slot;
            const float acc = stream_row<WPRD>(m, 1, g, r.at((own0 * m.slices(0)) + ((k / STREAM_GROUPS) * m.slices(1))), slot, part, row < c,
                xs, r);
            gemv_row_write<WPRD>(acc, partial[q], row < c, y, row, nullptr, 0, mine);
            if (WPRD > 1) mine(); // partial is the next row's
        }
    }

    if (blockIdx.x != 0 || hb == nullptr) return;
    for (int i = threadIdx.x; i < c; i += STREAM_CONSUMERS) h[i] = sk[i]; // every block has read h (the barrier)
}

#define MLP_STREAM(name, WPR, WPRD)                                                                                      \
    extern "C" __global__ void __launch_bounds__(STREAM_CONSUMERS + 32, 1) name(float* h, const float* hb,               \
        const void* nw, int nwt, float eps, float* normed, int nt, int c, const void* wg, const void* wu,                \
        const void* wd, float* act, int f, float* y, int* bar, float* sk, int stages)                                    \
    {                                                                                                                    \
        extern __shared__ float stream_shared[];                                                                         \
        mlp_stream<WPR, WPRD>(h, hb, nw, nwt, eps, normed, nt, c, wg, wu, wd, act, f, y, bar, sk, stages,                 \
            (char*)stream_shared);                                                                                       \
    }

#define MLP_STREAM_DOWN(G, WPR)                                                                                          \
    MLP_STREAM(mlp_stream_bf16_g##G##_d0, WPR, 1) MLP_STREAM(mlp_stream_bf16_g##G##_d1, WPR, 2)                          \
    MLP_STREAM(mlp_stream_bf16_g##G##_d2, WPR, 4) MLP_STREAM(mlp_stream_bf16_g##G##_d3, WPR, 8)

MLP_STREAM_DOWN(0, 1)
MLP_STREAM_DOWN(1, 2)
MLP_STREAM_DOWN(2, 4)

// Any K and alignment: one warp per row, one element per lane per step.
template <int DT>
__device__ __forceinline__ void gemv_scalar(const float* __restrict__ x, const void* __restrict__ w, const void* bias, int bias_dtype,
    float* __restrict__ y, int k, int m)
{
    int row = (int)(((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= m) return;
    float acc = 0.f;
    for (int i = lane; i < k; i += 32) acc = fmaf(load_w<DT>(w, (i64)row * k + i), x[i], acc);
    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc + (bias != 0 ? load_any(bias, bias_dtype, row) : 0.f);
}

#define GEMV_SCALAR(name, DT)                                                                                            \
    extern "C" __global__ void __launch_bounds__(256) name(const float* x, const void* w, const void* bias, int bias_dtype, \
        float* y, int k, int m)                                                                                          \
    {                                                                                                                    \
        pdl_begin();                                                                                                     \
        gemv_scalar<DT>(x, w, bias, bias_dtype, y, k, m);                                                                \
    }

GEMV_SCALAR(gemv_f32_scalar, DT_F32)
GEMV_SCALAR(gemv_f16_scalar, DT_F16)
GEMV_SCALAR(gemv_bf16_scalar, DT_BF16)

// T = 1, InOut: y[col] = Σ_k x[k]·W[k, col] (+ bias) for W [K, M]. Block (8 warps) covers 32·PER columns: lane l
// owns columns tile·32·PER + l·PER .. + PER − 1 (one 16-byte load per row when PER > 1). Rows [k0, k1) of this
// blockIdx.y are dealt to the warps round-robin. The warps' sums meet in shared memory; with one split the block
// writes y (+ bias). With several, each block writes partial[split, M]; the last block of a column tile to finish
// (counted in counters[tile], which it resets) adds the splits in order and writes y (+ bias).
template <int DT, int PER>
__device__ __forceinline__ void gemv_inout(const float* __restrict__ x, const void* __restrict__ w, const void* bias, int bias_dtype,
    float* __restrict__ y, float* partial, int* counters, int k, int m, int rows_per_split)
{
    __shared__ float sums[GEMV_THREADS / 32][32 * PER];
    __shared__ int last;
    const int esize = DT == DT_F32 ? 4 : 2;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int col0 = blockIdx.x * 32 * PER;
    int col = col0 + lane * PER;
    int k0 = blockIdx.y * rows_per_split;
    int k1 = min(k, k0 + rows_per_split);
    float acc[PER];
#pragma unroll
    for (int j = 0; j < PER; j++) acc[j] = 0.f;
    int r = k0 + warp;
    // The first four rows' weights load before the wait (weights are never written).
    uint4 q[4];
    bool first = PER > 1 && col < m && r + 3 * 8 < k1;
    if (first)
    {
#pragma unroll
        for (int u = 0; u < 4; u++) q[u] = load_stream((const char*)w + ((i64)(r + u * 8) * m + col) * esize);
    }

    pdl_begin();
    if (col < m)
    {
        if (first)
        {
#pragma unroll
            for (int u = 0; u < 4; u++)
            {
                float wv[PER];
                weights_of<DT, PER>(q[u], wv);
                float xv = __ldg(x + r + u * 8);
#pragma unroll
                for (int j = 0; j < PER; j++) acc[j] = fmaf(wv[j], xv, acc[j]);
            }

            r += 4 * 8;
        }

        for (; r + 3 * 8 < k1; r += 4 * 8)
        {
            if (PER > 1)
            {
                float xv[4];
#pragma unroll
                for (int u = 0; u < 4; u++)
                {
                    q[u] = load_stream((const char*)w + ((i64)(r + u * 8) * m + col) * esize);
                    xv[u] = __ldg(x + r + u * 8);
                }
#pragma unroll
                for (int u = 0; u < 4; u++)
                {
                    float wv[PER];
                    weights_of<DT, PER>(q[u], wv);
#pragma unroll
                    for (int j = 0; j < PER; j++) acc[j] = fmaf(wv[j], xv[u], acc[j]);
                }
            }
            else
            {
#pragma unroll
                for (int u = 0; u < 4; u++) acc[0] = fmaf(load_w<DT>(w, (i64)(r + u * 8) * m + col), x[r + u * 8], acc[0]);
            }
        }

        for (; r < k1; r += 8)
        {
            float xr = x[r];
            if (PER > 1)
            {
                float wv[PER];
                weights_of<DT, PER>(load_stream((const char*)w + ((i64)r * m + col) * esize), wv);
#pragma unroll
                for (int j = 0; j < PER; j++) acc[j] = fmaf(wv[j], xr, acc[j]);
            }
            else
            {
                acc[0] = fmaf(load_w<DT>(w, (i64)r * m + col), xr, acc[0]);
            }
        }
    }

#pragma unroll
    for (int j = 0; j < PER; j++) sums[warp][lane * PER + j] = acc[j];
    __syncthreads();
    for (int j = threadIdx.x; j < 32 * PER; j += GEMV_THREADS)
    {
        int c = col0 + j;
        if (c >= m) continue;
        float total = 0.f;
#pragma unroll
        for (int v = 0; v < GEMV_THREADS / 32; v++) total += sums[v][j];
        if (gridDim.y == 1)
        {
            y[c] = total + (bias != 0 ? load_any(bias, bias_dtype, c) : 0.f);
        }
        else
        {
            partial[(i64)blockIdx.y * m + c] = total;
        }
    }

    if (gridDim.y == 1) return;
    // Publish this split, then count it; the block that counts last sees every split.
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(counters + blockIdx.x, 1) == (int)gridDim.y - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int j = threadIdx.x; j < 32 * PER; j += GEMV_THREADS)
    {
        int c = col0 + j;
        if (c >= m) continue;
        float total = 0.f;
        for (int split = 0; split < (int)gridDim.y; split++) total += ((volatile float*)partial)[(i64)split * m + c];
        y[c] = total + (bias != 0 ? load_any(bias, bias_dtype, c) : 0.f);
    }

    if (threadIdx.x == 0) counters[blockIdx.x] = 0;
}

#define GEMV_INOUT(name, DT, PER)                                                                                        \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS) name(const float* x, const void* w, const void* bias,       \
        int bias_dtype, float* y, float* partial, int* counters, int k, int m, int rows_per_split)                       \
    {                                                                                                                    \
        gemv_inout<DT, PER>(x, w, bias, bias_dtype, y, partial, counters, k, m, rows_per_split);                        \
    }

GEMV_INOUT(gemv_inout_f32_vec, DT_F32, 4)
GEMV_INOUT(gemv_inout_f16_vec, DT_F16, 8)
GEMV_INOUT(gemv_inout_bf16_vec, DT_BF16, 8)
GEMV_INOUT(gemv_inout_f32_scalar, DT_F32, 1)
GEMV_INOUT(gemv_inout_f16_scalar, DT_F16, 1)
GEMV_INOUT(gemv_inout_bf16_scalar, DT_BF16, 1)

// cuBLASLt prefill GEMMs (src/Radlads.Cuda/CudaGemm.cs) take bf16 activations: x fp32 → bf16 by f32_to_bf16_bits
// (common.cuh). Two elements per thread and step, written as one 32-bit word when n is even and y 4-byte aligned
// (the host checks); otherwise one element each.

extern "C" __global__ void f32_to_bf16(const float* __restrict__ x, u16* __restrict__ y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = (u16)f32_to_bf16_bits(x[i]);
}

extern "C" __global__ void f32_to_bf16_pairs(const float* __restrict__ x, u32* __restrict__ y, i64 pairs)
{
    pdl_begin();
    GRID_STRIDE(i, pairs)
    {
        float a = x[2 * i], b = x[2 * i + 1];
        y[i] = f32_to_bf16_bits(a) | (f32_to_bf16_bits(b) << 16);
    }
}

// A bias of any dtype as fp32 (the type cuBLASLt's bias epilogue reads for an fp32 output).
extern "C" __global__ void param_to_f32(const void* p, int dtype, float* y, int n)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = load_any(p, dtype, i);
}
