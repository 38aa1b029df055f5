// RmsNorm and GroupNorm, both in fp32. y may alias x: every thread writes only elements it read itself, after
// the reductions that need the whole row or group.
#include "common.cuh"

// One block per row of x [T, C]: y = w ⊙ x / sqrt(mean(x²) + eps).
extern "C" __global__ void rms_norm_f32(const float* x, const void* w, int w_dtype, float eps, float* y, int c)
{
    pdl_begin();
    __shared__ float scratch[32];
    const float* xr = x + (i64)blockIdx.x * c;
    float* yr = y + (i64)blockIdx.x * c;
    float sum = 0.f;
    for (int i = threadIdx.x; i < c; i += blockDim.x)
    {
        float v = xr[i];
        sum = fmaf(v, v, sum);
    }

    sum = block_sum(sum, scratch);
    float inv = 1.f / sqrtf(sum / c + eps);
    for (int i = threadIdx.x; i < c; i += blockDim.x)
    {
        yr[i] = (xr[i] * inv) * load_any(w, w_dtype, i);
    }
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
