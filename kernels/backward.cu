// Backward of the generic ops of IBackwardOps (CpuBackwardOps.cs): elementwise, RoPE, RepeatKv, GroupNorm, token
// shift, mix shift, and the column sums every weight gradient of a small vector uses. fp32; where an input gradient
// may alias dy (the interface says which), each element is read before it is written, by the same thread.
#include "common.cuh"

__device__ __forceinline__ double warp_sum_double(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Weight gradients of per-channel vectors, deterministic (no atomics): out[z·out_stride + j] += Σ_r a[z·a_stride +
// r·c + j] (⊙ b[z·b_stride + r·c + j] when b is given), for z = blockIdx.y. A block of 256 threads takes 32 columns;
// its 8 warps sum every 8th row each (coalesced, one row of 32 columns per warp), then one thread per column adds the
// 8 partial sums in a fixed order. The same launch always gives the same bits.
extern "C" __global__ void column_sum_f32(const float* a, i64 a_stride, const float* b, i64 b_stride, int rows, int c,
    float* out, i64 out_stride)
{
    pdl_begin();
    __shared__ float partial[8][33];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int j = blockIdx.x * 32 + lane;
    const float* az = a + blockIdx.y * a_stride;
    const float* bz = b != 0 ? b + blockIdx.y * b_stride : 0;
    float sum = 0.f;
    if (j < c)
    {
        for (int r = warp; r < rows; r += 8)
        {
            i64 p = (i64)r * c + j;
            sum += bz != 0 ? az[p] * bz[p] : az[p];
        }
    }

    partial[warp][lane] = sum;
    __syncthreads();
    if (warp == 0 && j < c)
    {
        float total = partial[0][lane];
        for (int w = 1; w < 8; w++) total += partial[w][lane];
        out[blockIdx.y * out_stride + j] += total;
    }
}

// y = s·x  ⇒  dx = s·dy.
extern "C" __global__ void scale_backward_f32(const float* dy, float s, float* dx, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) dx[i] = dy[i] * s;
}

// y = a ⊙ b  ⇒  db = dy ⊙ a, da = dy ⊙ b (either pointer may be null; da may alias dy).
extern "C" __global__ void multiply_backward_f32(const float* a, const float* b, const float* dy, float* da, float* db, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float g = dy[i];
        float ai = a[i], bi = b[i];
        if (db != 0) db[i] = g * ai;
        if (da != 0) da[i] = g * bi;
    }
}

// y = tanh(x), from y  ⇒  dx = dy ⊙ (1 − y²).
extern "C" __global__ void tanh_backward_f32(const float* y, const float* dy, float* dx, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float v = y[i];
        dx[i] = dy[i] * (1.f - v * v);
    }
}

// y = σ(x) (or σ(x + bias)), from y  ⇒  dx = dy ⊙ y ⊙ (1 − y).
extern "C" __global__ void sigmoid_backward_f32(const float* y, const float* dy, float* dx, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float v = y[i];
        dx[i] = dy[i] * v * (1.f - v);
    }
}

// y = silu(g) ⊙ u  ⇒  du = dy ⊙ g·σ(g), dg = dy ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g))). Either output may be null.
extern "C" __global__ void swiglu_backward_f32(const float* gate, const float* up, const float* dy, float* dgate, float* dup, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float g = gate[i], u = up[i], d = dy[i];
        float s = sigmoid_(g);
        if (dup != 0) dup[i] = d * g * s;
        if (dgate != 0) dgate[i] = d * u * s * (1.f + g * (1.f - s));
    }
}

// RoPE's transpose, in place on dx [T, heads·N]: the rotation of each pair (i, i + N/2) by the negative angle.
// Angles in float64 as the forward (rope_f32) and the CPU compute them.
extern "C" __global__ void rope_backward_f32(float* x, int tokens, int heads, int n, int start, float theta)
{
    pdl_begin();
    int half = n / 2;
    GRID_STRIDE(idx, (i64)tokens * heads * half)
    {
        int i = (int)(idx % half);
        i64 th = idx / half;
        int h = (int)(th % heads);
        i64 t = th / heads;
        double inverse = pow((double)theta, -2.0 * i / n);
        double s, c;
        sincos((double)(start + t) * inverse, &s, &c);
        float cf = (float)c, sf = (float)s;
        float* v = x + t * heads * n + (i64)h * n;
        float ga = v[i], gb = v[i + half];
        v[i] = ga * cf + gb * sf;
        v[i + half] = gb * cf - ga * sf;
    }
}

// KV head j receives the sum over its group: dx[t, j·N + d] = Σ_g dy[t, (j·groups + g)·N + d] (g in order).
extern "C" __global__ void repeat_kv_backward_f32(const float* dy, int tokens, int kv_heads, int n, int groups, float* dx)
{
    pdl_begin();
    GRID_STRIDE(idx, (i64)tokens * kv_heads * n)
    {
        int d = (int)(idx % n);
        i64 r = idx / n;
        int j = (int)(r % kv_heads);
        i64 t = r / kv_heads;
        const float* src = dy + t * kv_heads * groups * n + (i64)j * groups * n + d;
        float sum = src[0];
        for (int g = 1; g < groups; g++) sum += src[(i64)g * n];
        dx[idx] = sum;
    }
}

// One warp per (row, group) of x [T, G·D]. Statistics in double as the forward and the CPU: x̂ = (x − μ)·r,
// ĝ = dy ⊙ weight, dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂)). dx may alias dy (each lane writes only what it read).
// When gx is given it receives dy ⊙ x̂ (the weight gradient's terms, summed over rows by column_sum_f32).
extern "C" __global__ void group_norm_backward_f32(const float* x, const void* w, int w_dtype, const float* dy, int rows, int groups,
    int d, float eps, float* dx, float* gx)
{
    pdl_begin();
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (item >= (i64)rows * groups) return;
    int q = (int)(item % groups);
    i64 base = item * d;
    double sum = 0;
    for (int i = lane; i < d; i += 32) sum += x[base + i];
    double mean = warp_sum_double(sum) / d;
    double var = 0;
    for (int i = lane; i < d; i += 32)
    {
        double e = x[base + i] - mean;
        var += e * e;
    }

    var = warp_sum_double(var) / d;
    double inv = 1.0 / sqrt(var + eps);
    double mean_g = 0, mean_gx = 0;
    for (int i = lane; i < d; i += 32)
    {
        double gi = (double)dy[base + i] * load_any(w, w_dtype, (i64)q * d + i);
        mean_g += gi;
        mean_gx += gi * ((x[base + i] - mean) * inv);
    }

    mean_g = warp_sum_double(mean_g) / d;
    mean_gx = warp_sum_double(mean_gx) / d;
    for (int i = lane; i < d; i += 32)
    {
        double xhat = (x[base + i] - mean) * inv;
        float g = dy[base + i];
        double gi = (double)g * load_any(w, w_dtype, (i64)q * d + i);
        if (gx != 0) gx[base + i] = (float)(g * xhat);
        if (dx != 0) dx[base + i] = (float)(inv * (gi - mean_g - xhat * mean_gx));
    }
}

// delta[t] = x[t−1] − x[t], final state x[T−1]  ⇒  dx[t] = dDelta[t+1] − dDelta[t], dx[T−1] = dFinal − dDelta[T−1]
// (−dDelta[T−1] when final is null); d(initial state) = dDelta[0]. dx must not alias dDelta here: the host copies
// dDelta first when they overlap.
extern "C" __global__ void token_shift_backward_f32(const float* ddelta, const float* dfinal, float* dx, float* dinitial, int tokens, int c)
{
    pdl_begin();
    GRID_STRIDE(i, (i64)tokens * c)
    {
        float g = ddelta[i];
        if (i + c < (i64)tokens * c) dx[i] = ddelta[i + c] - g;
        else dx[i] = dfinal != 0 ? dfinal[i % c] - g : -g;
        if (dinitial != 0 && i < c) dinitial[i] = g;
    }
}

// y = x + delta ⊙ mix  ⇒  dx = dy, dDelta = dy ⊙ mix (mix [C] of any dtype). Either output may be null.
extern "C" __global__ void mix_shift_backward_f32(const float* dy, const void* mix, int mix_dtype, float* dx, float* ddelta, i64 n, int c)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float g = dy[i];
        if (ddelta != 0) ddelta[i] = g * load_any(mix, mix_dtype, i % c);
        if (dx != 0) dx[i] = g;
    }
}
