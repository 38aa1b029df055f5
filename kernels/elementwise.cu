// Elementwise ops of IOps: Add, Multiply, Scale, ScaleMultiply, Tanh, Sigmoid, AddSigmoid, SwiGlu. fp32, any aliasing allowed
// (each element is read before it is written, by the same thread).
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
