// RmsNorm and GroupNorm, both in fp32. y may alias x: every thread writes only elements it read itself, after
// the reductions that need the whole row or group. rms_norm_bf16_f32 and add_rms_norm_bf16_f32 also write a bf16 copy
// of y for the cuBLASLt GEMM that reads it next (prefill: q/k/v, the MLP's gate/up).
#include "common.cuh"

// One block per row of x [T, C] (pdl_begin inside, after the weight loads): y = w ⊙ x / sqrt(mean(x²) + eps); with ADD, first h += b (h written back) and the
// norm is of the new h. Vector path (C % 4 == 0, rows 16-byte aligned): each thread loads its NORM_VEC float4
// chunks at once and keeps them in registers, so the row costs one memory latency, not C / threads of them (a
// decode row of 3,584 took 12.6 µs in the old strided loop on an H200). The sum of squares runs in the same
// order with and without ADD, so AddRmsNorm equals Add then RmsNorm bit for bit on this backend. With COPY, yb [T, C]
// (8-byte aligned rows: C % 4 == 0 and a 256-byte aligned block) also gets bf16(y) as f32_to_bf16 rounds it, one
// 8-byte store per float4; without it the code is the plain kernel's (COPY is a compile-time constant).
template <bool ADD, bool COPY>
__device__ __forceinline__ void rms_norm_vec(float* h, const float* b, const void* w, int w_dtype, float eps, float* y, u16* yb, int c)
{
    __shared__ float scratch[32];
    int chunks = c >> 2;
    float4* hr = (float4*)(h + (i64)blockIdx.x * c);
    const float4* br = (const float4*)(b + (i64)blockIdx.x * c);
    float4* yr = (float4*)(y + (i64)blockIdx.x * c);
    uint2* ybr = COPY ? (uint2*)(yb + (i64)blockIdx.x * c) : nullptr;
    // The weights are never written: load them before the wait, so they arrive while the kernel before finishes.
    float4 wv[NORM_VEC];
    load_norm_weights(wv, w, w_dtype, c, threadIdx.x, blockDim.x, true);

    pdl_begin();
    float4 v[NORM_VEC];
    float inv = rms_norm_inverse(hr, ADD ? br : nullptr, v, threadIdx.x, blockDim.x, chunks, true, c, eps, scratch);
#pragma unroll
    for (int j = 0; j < NORM_VEC; j++)
    {
        int i = threadIdx.x + j * blockDim.x;
        if (i < chunks)
        {
            // h after the sum (this thread's chunks only; y may alias b, never h).
            if (ADD) hr[i] = v[j];
            float4 r = rms_normed4(v[j], inv, wv[j]);
            yr[i] = r;
            if (COPY) ybr[i] = f32x4_to_bf16_bits(r);
        }
    }
}

// Any C and alignment: a strided loop (with ADD, h is written in the first loop and re-read, by the same thread,
// in the second). With COPY, yb [T, C] gets bf16(y) element by element.
template <bool ADD, bool COPY>
__device__ __forceinline__ void rms_norm_any(float* h, const float* b, const void* w, int w_dtype, float eps, float* y, u16* yb, int c)
{
    __shared__ float scratch[32];
    float* hr = h + (i64)blockIdx.x * c;
    const float* br = b + (i64)blockIdx.x * c;
    float* yr = y + (i64)blockIdx.x * c;
    u16* ybr = COPY ? yb + (i64)blockIdx.x * c : nullptr;
    float sum = 0.f;
    for (int i = threadIdx.x; i < c; i += blockDim.x)
    {
        float v = hr[i];
        if (ADD)
        {
            v += br[i];
            hr[i] = v;
        }

        sum = fmaf(v, v, sum);
    }

    sum = block_sum(sum, scratch);
    float inv = 1.f / sqrtf(sum / c + eps);
    for (int i = threadIdx.x; i < c; i += blockDim.x)
    {
        float r = (hr[i] * inv) * load_any(w, w_dtype, i);
        yr[i] = r;
        if (COPY) ybr[i] = (u16)f32_to_bf16_bits(r);
    }
}

// The body of the four kernels below: vec picks the path (host: CudaOps.NormGeometry).
template <bool ADD, bool COPY>
__device__ __forceinline__ void rms_norm_rows(float* h, const float* b, const void* w, int w_dtype, float eps, float* y, u16* yb, int c, int vec)
{
    if (vec)
    {
        rms_norm_vec<ADD, COPY>(h, b, w, w_dtype, eps, y, yb, c);
    }
    else
    {
        pdl_begin();
        rms_norm_any<ADD, COPY>(h, b, w, w_dtype, eps, y, yb, c);
    }
}

// y may alias x (every thread writes only elements it read itself, after the reduction).
extern "C" __global__ void rms_norm_f32(const float* x, const void* w, int w_dtype, float eps, float* y, int c, int vec)
{
    rms_norm_rows<false, false>((float*)x, nullptr, w, w_dtype, eps, y, nullptr, c, vec);
}

// h += b, then y = RmsNorm(h): the residual add fused into the next norm. y may alias b, not h.
extern "C" __global__ void add_rms_norm_f32(float* h, const float* b, const void* w, int w_dtype, float eps, float* y, int c, int vec)
{
    rms_norm_rows<true, false>(h, b, w, w_dtype, eps, y, nullptr, c, vec);
}

// rms_norm_f32 plus yb = bf16(y) [T, C] (prefill, host: CudaOps.RmsNorm): the same fp32 y bit for bit.
extern "C" __global__ void rms_norm_bf16_f32(const float* x, const void* w, int w_dtype, float eps, float* y, u16* yb, int c, int vec)
{
    rms_norm_rows<false, true>((float*)x, nullptr, w, w_dtype, eps, y, yb, c, vec);
}

// add_rms_norm_f32 plus yb = bf16(y) [T, C] (prefill, host: CudaOps.AddRmsNorm): the same fp32 h and y bit for bit.
extern "C" __global__ void add_rms_norm_bf16_f32(float* h, const float* b, const void* w, int w_dtype, float eps, float* y, u16* yb, int c,
    int vec)
{
    rms_norm_rows<true, true>(h, b, w, w_dtype, eps, y, yb, c, vec);
}

// One warp per (row, group) of x [T, G·D]: two passes (mean, then biased variance), fp32.
extern "C" __global__ void group_norm_f32(const float* x, const void* w, int w_dtype, const void* b, int b_dtype,
    int rows, int groups, int d, float eps, float* y)
{
    pdl_begin();
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (item >= (i64)rows * groups) return;
    int g = (int)(item % groups);
    i64 base = item * d;
    float sum = 0.f;
    for (int i = lane; i < d; i += 32) sum += x[base + i];
    float mean = warp_sum(sum) / d;
    float var = 0.f;
    for (int i = lane; i < d; i += 32)
    {
        float e = x[base + i] - mean;
        var = fmaf(e, e, var);
    }

    var = warp_sum(var) / d;
    float inv = 1.f / sqrtf(var + eps);
    for (int i = lane; i < d; i += 32)
    {
        i64 p = (i64)g * d + i;
        y[base + i] = (x[base + i] - mean) * inv * load_any(w, w_dtype, p) + load_any(b, b_dtype, p);
    }
}
