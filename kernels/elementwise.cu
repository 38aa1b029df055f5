// Elementwise ops of IOps: Add, Multiply, Scale, ScaleMultiply, Tanh, Sigmoid, AddSigmoid, SwiGlu. fp32, any aliasing allowed
// (each element is read before it is written, by the same thread). swiglu_bf16_f32 also writes a bf16 copy of its
// output for the cuBLASLt GEMM that reads it next (prefill).
#include "common.cuh"

extern "C" __global__ void add_f32(const float* a, const float* b, float* y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

extern "C" __global__ void multiply_f32(const float* a, const float* b, float* y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}

extern "C" __global__ void scale_f32(const float* x, float s, float* y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = x[i] * s;
}

// IOps.ScaleMultiply: y = (a·s)·b, two fp32 roundings as scale_f32 then multiply_f32.
extern "C" __global__ void scale_multiply_f32(const float* a, float s, const float* b, float* y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = (a[i] * s) * b[i];
}

extern "C" __global__ void tanh_f32(const float* x, float* y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = tanhf(x[i]);
}

extern "C" __global__ void sigmoid_f32(const float* x, float* y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = sigmoid_(x[i]);
}

// y = σ(x + bias[column]); bias [C] of any dtype.
extern "C" __global__ void add_sigmoid_f32(const float* x, const void* bias, int bias_dtype, float* y, i64 n, int c)
{
    pdl_begin();
    GRID_STRIDE(i, n) y[i] = sigmoid_(x[i] + load_any(bias, bias_dtype, i % c));
}

// y = silu(gate) ⊙ up = (σ(g)·g)·u.
extern "C" __global__ void swiglu_f32(const float* gate, const float* up, float* y, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float g = gate[i];
        y[i] = (sigmoid_(g) * g) * up[i];
    }
}

// swiglu_f32 (the same arithmetic, so the same y) that also writes yb = bf16(y) (f32_to_bf16_bits), the input of the
// MLP's down projection on cuBLASLt, so that GEMM does not read y again to round it. vec = 1: gate, up and y 16-byte
// aligned, yb 8-byte aligned: four elements per step (float4 loads and store, one 8-byte bf16 store), the n % 4 tail
// one by one; vec = 0: one element per step. y may alias gate or up (each element is read before it is written).
extern "C" __global__ void swiglu_bf16_f32(const float* gate, const float* up, float* y, u16* yb, i64 n, int vec)
{
    pdl_begin();
    i64 quads = vec ? n / 4 : 0;
    GRID_STRIDE(q, quads)
    {
        float4 g = ((const float4*)gate)[q];
        float4 u = ((const float4*)up)[q];
        float4 r;
        r.x = (sigmoid_(g.x) * g.x) * u.x;
        r.y = (sigmoid_(g.y) * g.y) * u.y;
        r.z = (sigmoid_(g.z) * g.z) * u.z;
        r.w = (sigmoid_(g.w) * g.w) * u.w;
        ((float4*)y)[q] = r;
        uint2 bits;
        bits.x = f32_to_bf16_bits(r.x) | (f32_to_bf16_bits(r.y) << 16);
        bits.y = f32_to_bf16_bits(r.z) | (f32_to_bf16_bits(r.w) << 16);
        ((uint2*)yb)[q] = bits;
    }

    GRID_STRIDE(j, n - 4 * quads)
    {
        i64 i = 4 * quads + j;
        float g = gate[i];
        float r = (sigmoid_(g) * g) * up[i];
        y[i] = r;
        yb[i] = (u16)f32_to_bf16_bits(r);
    }
}
