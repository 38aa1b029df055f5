// MatMul: y[T, M] = x[T, K]·Wᵀ (OutIn, W [M, K]) or x·W (InOut, W [K, M]), + bias [M]; fp32 accumulation,
// weights read in their stored dtype (bf16, f16, f32) and converted in registers.
//   matmul_{outin,inout}_{dt}: a plain 64×64 shared-memory tile, 256 threads, 4×4 outputs per thread.
//   gemv_{dt}_{vec,scalar}: T = 1, OutIn: one warp per output row; _vec streams the row with 16-byte loads
//   (8 bf16/f16 or 4 f32 per lane), for K a multiple of 8 (4) and 16-byte aligned W and x.
#include "common.cuh"

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
        matmul_tiled<DT, OUTIN>(x, w, bias, bias_dtype, y, tokens, k, m);                                                \
    }

MATMUL(matmul_outin_f32, DT_F32, true)
MATMUL(matmul_outin_f16, DT_F16, true)
MATMUL(matmul_outin_bf16, DT_BF16, true)
MATMUL(matmul_inout_f32, DT_F32, false)
MATMUL(matmul_inout_f16, DT_F16, false)
MATMUL(matmul_inout_bf16, DT_BF16, false)

// Two 16-bit weights of one 32-bit word (little-endian: element 2i in the low half).
template <int DT>
__device__ __forceinline__ float lo16(u32 word)
{
    return DT == DT_BF16 ? __uint_as_float(word << 16) : f16_to_float((u16)(word & 0xffffu));
}

template <int DT>
__device__ __forceinline__ float hi16(u32 word)
{
    return DT == DT_BF16 ? __uint_as_float(word & 0xffff0000u) : f16_to_float((u16)(word >> 16));
}

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

template <int DT, bool VEC>
__device__ __forceinline__ void gemv(const float* __restrict__ x, const void* __restrict__ w, const void* bias, int bias_dtype,
    float* __restrict__ y, int k, int m)
{
    int row = (int)(((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= m) return;
    float acc = 0.f;
    if (VEC)
    {
        const int per = DT == DT_F32 ? 4 : 8;
        const uint4* wr = (const uint4*)((const char*)w + (i64)row * k * (DT == DT_F32 ? 4 : 2));
        const float4* xv = (const float4*)x;
        int chunks = k / per;
        for (int c = lane; c < chunks; c += 32)
        {
            uint4 q = wr[c];
            if (DT == DT_F32)
            {
                float4 a = xv[c];
                acc = fmaf(__uint_as_float(q.x), a.x, acc);
                acc = fmaf(__uint_as_float(q.y), a.y, acc);
                acc = fmaf(__uint_as_float(q.z), a.z, acc);
                acc = fmaf(__uint_as_float(q.w), a.w, acc);
            }
            else
            {
                float4 a = xv[2 * c];
                float4 b = xv[2 * c + 1];
                acc = dot_word<DT>(q.x, a.x, a.y, acc);
                acc = dot_word<DT>(q.y, a.z, a.w, acc);
                acc = dot_word<DT>(q.z, b.x, b.y, acc);
                acc = dot_word<DT>(q.w, b.z, b.w, acc);
            }
        }
    }
    else
    {
        for (int i = lane; i < k; i += 32) acc = fmaf(load_w<DT>(w, (i64)row * k + i), x[i], acc);
    }

    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc + (bias != 0 ? load_any(bias, bias_dtype, row) : 0.f);
}

#define GEMV(name, DT, VEC)                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) name(const float* x, const void* w, const void* bias, int bias_dtype, \
        float* y, int k, int m)                                                                                          \
    {                                                                                                                    \
        gemv<DT, VEC>(x, w, bias, bias_dtype, y, k, m);                                                                  \
    }

GEMV(gemv_f32_vec, DT_F32, true)
GEMV(gemv_f16_vec, DT_F16, true)
GEMV(gemv_bf16_vec, DT_BF16, true)
GEMV(gemv_f32_scalar, DT_F32, false)
GEMV(gemv_f16_scalar, DT_F16, false)
GEMV(gemv_bf16_scalar, DT_BF16, false)
