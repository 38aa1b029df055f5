// The training ops of IBackwardOps (issue #7): the step-1 alignment loss with its gradient, Fill, SumOfSquares and
// AdamW. Reductions are deterministic: per-row / per-block partial sums in fp64 written to scratch, then one block
// adds them in a fixed order (no atomics), so the same inputs give the same bits on every run.
#include "common.cuh"

__device__ __forceinline__ double warp_sum_double(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block in fp64 (blockDim.x a multiple of 32, at most 1024). scratch: 32 doubles of shared memory.
__device__ __forceinline__ double block_sum_double(double v, double* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum_double(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        int warps = (blockDim.x + 31) >> 5;
        v = lane < warps ? scratch[lane] : 0.0;
        v = warp_sum_double(v);
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}

// One block per token t of teacher, student [T, C]: e_t = ‖student[t] − teacher[t]‖₂/√C (squares summed in fp64),
// written to errors[t]; when dstudent is given, dstudent[t] = grad_scale·(student − teacher)/(‖·‖₂·√C), 0 where
// the difference is exactly 0. dstudent may alias student: every thread reads its elements before the block
// sum's barrier and writes them after it.
extern "C" __global__ void alignment_loss_f32(const float* teacher, const float* student, int c, float grad_scale,
    float* dstudent, double* errors)
{
    pdl_begin();
    __shared__ double scratch[32];
    i64 base = (i64)blockIdx.x * c;
    double sum = 0;
    for (int j = threadIdx.x; j < c; j += blockDim.x)
    {
        double d = (double)student[base + j] - (double)teacher[base + j];
        sum += d * d;
    }

    double norm = sqrt(block_sum_double(sum, scratch));
    double root_c = sqrt((double)c);
    if (threadIdx.x == 0) errors[blockIdx.x] = norm / root_c;
    if (dstudent != 0)
    {
        float factor = norm > 0 ? (float)(grad_scale / (norm * root_c)) : 0.f;
        for (int j = threadIdx.x; j < c; j += blockDim.x)
        {
            float d = student[base + j] - teacher[base + j];
            dstudent[base + j] = d * factor;
        }
    }
}

// result[0] = Σ_i values[i] in fp64 by one block, each thread a fixed stride, then a fixed tree.
extern "C" __global__ void sum_double(const double* values, i64 n, double* result)
{
    pdl_begin();
    __shared__ double scratch[32];
    double sum = 0;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) sum += values[i];
    sum = block_sum_double(sum, scratch);
    if (threadIdx.x == 0) result[0] = sum;
}

// partial[blockIdx.x] = Σ x² over the block's grid-stride share, in fp64. The grid size is fixed by the host for a
// given n, so the partials, and their sum by sum_double, are the same every run.
extern "C" __global__ void sum_of_squares_f32(const float* x, i64 n, double* partial)
{
    pdl_begin();
    __shared__ double scratch[32];
    double sum = 0;
    GRID_STRIDE(i, n)
    {
        double v = x[i];
        sum += v * v;
    }

    sum = block_sum_double(sum, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

extern "C" __global__ void fill_f32(float* x, float value, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n) x[i] = value;
}

// One AdamW step (torch.optim.AdamW, single-tensor, amsgrad off), fp32 with the host's scalars:
// decay = 1 − lr·weight_decay, one_minus_beta1/2 = 1 − β, step_size = lr/(1 − β1^step),
// correction2_sqrt = √(1 − β2^step) (all computed in double on the host, as Python floats are, then rounded).
// g = grad_scale·grad; p ← p·decay; m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
// p ← p − step_size·m/(√v/correction2_sqrt + eps). Each product and sum is rounded on its own (no FMA contraction),
// so a plain fp32 implementation of the same formula gives the same bits.
extern "C" __global__ void adamw_f32(float* param, const float* grad, float* m, float* v, float decay, float beta1,
    float one_minus_beta1, float beta2, float one_minus_beta2, float step_size, float correction2_sqrt, float eps,
    float grad_scale, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float g = __fmul_rn(grad_scale, grad[i]);
        float p = __fmul_rn(param[i], decay);
        float mi = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(one_minus_beta1, g));
        float vi = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(one_minus_beta2, __fmul_rn(g, g)));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), correction2_sqrt), eps);
        m[i] = mi;
        v[i] = vi;
        param[i] = __fsub_rn(p, __fdiv_rn(__fmul_rn(step_size, mi), denom));
    }
}
