// Backward of MatMul (CpuBackwardOps.MatMulBackward): the weight gradient. dx reuses the forward kernels (dx = dy·W
// is a forward MatMul with the other layout, see CudaBackwardOps.MatMul.cs); dBias is a column sum (backward.cu).
#include "common.cuh"

#define WG_TILE 64
#define WG_STEP 16

// dW[P, Q] += Aᵀ·B = Σ_t A[t, p]·B[t, q], A [T, P], B [T, Q], all fp32, row-major. OutIn: A = dy, B = x
// (dW [M, K]); InOut: A = x, B = dy (dW [K, M]). One 64×64 tile of dW per block, 256 threads with 4×4 outputs
// each, T in steps of 16 through shared memory, fp32 accumulation. Correctness first: no tensor cores, no double
// buffering. Split over T (grid z): block z sums rows [z·chunk_rows, (z + 1)·chunk_rows) and, when `partial` is given,
// writes its tile to partial[z] [P, Q] (every element of [P, Q] is written by some block); matmul_backward_weight_reduce_f32
// then adds the partials into dW in a fixed order. No atomics: the same bits every run. Without `partial` (one
// split) the block adds into dW directly.
extern "C" __global__ void matmul_backward_weight_f32(const float* __restrict__ a, const float* __restrict__ b, float* dw,
    int tokens, int p_count, int q_count, int chunk_rows, float* partial)
{
    pdl_begin();
    int t_begin = blockIdx.z * chunk_rows;
    int t_end = min(tokens, t_begin + chunk_rows);
    __shared__ float as[WG_STEP][WG_TILE + 4];
    __shared__ float bs[WG_STEP][WG_TILE + 4];
    int tx = threadIdx.x % 16;
    int ty = threadIdx.x / 16;
    int q0 = blockIdx.x * WG_TILE;
    int p0 = blockIdx.y * WG_TILE;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;

    for (int t0 = t_begin; t0 < t_end; t0 += WG_STEP)
    {
        for (int idx = threadIdx.x; idx < WG_STEP * WG_TILE; idx += blockDim.x)
        {
            // Consecutive threads read consecutive columns of one row of A and of B.
            int col = idx % WG_TILE, tt = idx / WG_TILE;
            int t = t0 + tt;
            int p = p0 + col, q = q0 + col;
            as[tt][col] = (t < t_end && p < p_count) ? a[(i64)t * p_count + p] : 0.f;
            bs[tt][col] = (t < t_end && q < q_count) ? b[(i64)t * q_count + q] : 0.f;
        }

        __syncthreads();
#pragma unroll
        for (int tt = 0; tt < WG_STEP; tt++)
        {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) av[i] = as[tt][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) bv[j] = bs[tt][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }

        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        int p = p0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; j++)
        {
            int q = q0 + tx + 16 * j;
            if (p >= p_count || q >= q_count) continue;
            i64 e = (i64)p * q_count + q;
            if (partial != 0) partial[(i64)blockIdx.z * p_count * q_count + e] = acc[i][j];
            else dw[e] += acc[i][j];
        }
    }
}

// dW[e] += Σ_z partial[z][e], z = 0, 1, … in order (deterministic), n = P·Q elements.
extern "C" __global__ void matmul_backward_weight_reduce_f32(const float* partial, int splits, float* dw, i64 n)
{
    pdl_begin();
    GRID_STRIDE(e, n)
    {
        float sum = 0.f;
        for (int z = 0; z < splits; z++) sum += partial[(i64)z * n + e];
        dw[e] += sum;
    }
}
