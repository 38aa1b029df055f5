// Elementwise ops of IOps: Add, Multiply, Scale, ScaleMultiply, Tanh, Sigmoid, AddSigmoid, SwiGlu. fp32, any aliasing allowed
// (each element is read before it is written, by the same thread). swiglu_bf16_f32 and scale_multiply_bf16_f32 also
// write a bf16 copy of their output for the cuBLASLt GEMM that reads it next (prefill).
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

// y = op(i) in fp32 and yb = bf16(y) (f32_to_bf16_bits, as f32_to_bf16 rounds a GEMM's input). vec = 1: the op's
// fp32 operands and y 16-byte aligned, yb 8-byte aligned: four elements per step (float4 loads and store, one 8-byte
// bf16 store), the n % 4 tail one by one; vec = 0: one element per step. Op: quad(q) = elements 4q..4q+3, one(i).
template <typename Op>
__device__ __forceinline__ void write_with_bf16(const Op& op, float* y, u16* yb, i64 n, int vec)
{
    i64 quads = vec ? n / 4 : 0;
    GRID_STRIDE(q, quads)
    {
        float4 r = op.quad(q);
        ((float4*)y)[q] = r;
        ((uint2*)yb)[q] = f32x4_to_bf16_bits(r);
    }

    GRID_STRIDE(j, n - 4 * quads)
    {
        i64 i = 4 * quads + j;
        float r = op.one(i);
        y[i] = r;
        yb[i] = (u16)f32_to_bf16_bits(r);
    }
}

// swiglu_f32's arithmetic.
struct SwiGluOp
{
    const float* gate;
    const float* up;
    __device__ float one(i64 i) const
    {
        float g = gate[i];
        return (sigmoid_(g) * g) * up[i];
    }
    __device__ float4 quad(i64 q) const
    {
        float4 g = ((const float4*)gate)[q], u = ((const float4*)up)[q], r;
        r.x = (sigmoid_(g.x) * g.x) * u.x;
        r.y = (sigmoid_(g.y) * g.y) * u.y;
        r.z = (sigmoid_(g.z) * g.z) * u.z;
        r.w = (sigmoid_(g.w) * g.w) * u.w;
        return r;
    }
};

// scale_multiply_f32's arithmetic.
struct ScaleMultiplyOp
{
    const float* a;
    float s;
    const float* b;
    __device__ float one(i64 i) const { return (a[i] * s) * b[i]; }
    __device__ float4 quad(i64 q) const
    {
        float4 x = ((const float4*)a)[q], m = ((const float4*)b)[q], r;
        r.x = (x.x * s) * m.x;
        r.y = (x.y * s) * m.y;
        r.z = (x.z * s) * m.z;
        r.w = (x.w * s) * m.w;
        return r;
    }
};

// swiglu_f32 plus yb = bf16(y): prefill, the input of the MLP's down projection on cuBLASLt (host: CudaOps.Fused.cs).
// y may alias gate or up.
extern "C" __global__ void swiglu_bf16_f32(const float* gate, const float* up, float* y, u16* yb, i64 n, int vec)
{
    pdl_begin();
    write_with_bf16(SwiGluOp{gate, up}, y, yb, n, vec);
}

// scale_multiply_f32 plus yb = bf16(y): prefill, the input of o_proj on cuBLASLt. y may alias a or b.
extern "C" __global__ void scale_multiply_bf16_f32(const float* a, float s, const float* b, float* y, u16* yb, i64 n, int vec)
{
    pdl_begin();
    write_with_bf16(ScaleMultiplyOp{a, s, b}, y, yb, n, vec);
}

// The SwiGLU of IOps.AddRmsNormMlp at prefill on cuBLASLt (CudaOps.Mlp.cs): gate and up come from their GEMMs in bf16,
// act = (sigmoid(g)·g)·u of their widened values in fp32 (swiglu_f32's arithmetic), rounded to bf16 for the down GEMM
// (f32_to_bf16_bits); no fp32 intermediate is written. vec = 1: n % 8 == 0 and every pointer 16-byte aligned, eight
// elements a step; vec = 0: one.
__device__ __forceinline__ float swiglu_bf16_one(u32 g, u32 u)
{
    const float x = __uint_as_float(g << 16), v = __uint_as_float(u << 16);
    return (sigmoid_(x) * x) * v;
}

__device__ __forceinline__ u32 swiglu_bf16_pair(u32 g, u32 u)
{
    return f32_to_bf16_bits(swiglu_bf16_one(g & 0xffffu, u & 0xffffu)) | (f32_to_bf16_bits(swiglu_bf16_one(g >> 16, u >> 16)) << 16);
}

extern "C" __global__ void swiglu_bf16_bf16(const u16* gate, const u16* up, u16* y, i64 n, int vec)
{
    pdl_begin();
    if (vec)
    {
        const i64 octs = n / 8;
        GRID_STRIDE(q, octs)
        {
            const uint4 g = ((const uint4*)gate)[q], u = ((const uint4*)up)[q];
            ((uint4*)y)[q] = make_uint4(swiglu_bf16_pair(g.x, u.x), swiglu_bf16_pair(g.y, u.y), swiglu_bf16_pair(g.z, u.z),
                swiglu_bf16_pair(g.w, u.w));
        }
    }
    else
    {
        GRID_STRIDE(i, n) y[i] = (u16)f32_to_bf16_bits(swiglu_bf16_one(gate[i], up[i]));
    }
}
