// lora_down (IOps.LoraSet's down projections at decode), with the LoRA table it reads: included by lora.cu (its own
// launch) and matmul.cu (gemv_group_lora_down: the same blocks inside the q/k/v GEMV's launch). Needs common.cuh first.
#pragma once

#define LORA_BRANCHES 4
#define LORA_THREADS 256

// LoraInner (C#).
#define LORA_INNER_TANH 1
#define LORA_INNER_SIGMOID 2

// The branches of one call, passed by value (280 bytes). Layout matches CudaOps.LoraTable (C#): five arrays of four
// u64, then seven arrays of four i32, then two i32.
struct LoraTable
{
    unsigned long long down[LORA_BRANCHES];   // A_i [C, R_i]
    unsigned long long up[LORA_BRANCHES];     // B_i [R_i, M_i]
    unsigned long long offset[LORA_BRANCHES]; // [M_i] of offset_dtype[i], 0 when outer is none
    unsigned long long hidden[LORA_BRANCHES]; // fp32 [R_i], written by lora_down, read by lora_up
    unsigned long long y[LORA_BRANCHES];      // fp32 [M_i]
    int rank[LORA_BRANCHES];                  // R_i
    int width[LORA_BRANCHES];                 // M_i
    int column[LORA_BRANCHES];                // first column of A_i in the concatenation: Σ_{j<i} R_j
    int block[LORA_BRANCHES];                 // first block of branch i in lora_up
    int inner[LORA_BRANCHES];
    int outer[LORA_BRANCHES];
    int offset_dtype[LORA_BRANCHES];
    int count;                                // branches, 1..4
    int ranks;                                // Σ R_i
};

__device__ __forceinline__ float lora_inner(int inner, float h)
{
    if (inner == LORA_INNER_TANH) return tanhf(h);
    if (inner == LORA_INNER_SIGMOID) return sigmoid_(h);
    return h;
}

// The branch whose A holds column col of the concatenation [0, ranks).
__device__ __forceinline__ int lora_branch_of_column(const LoraTable& t, int col)
{
    int i = 0;
    while (i + 1 < t.count && col >= t.column[i + 1]) i++;
    return i;
}

// acc[j] += w[j] · v for the 8 columns of one 16-byte load of an in×out factor (lora_down and lora_up alike).
template <int DT>
__device__ __forceinline__ void lora_fma8(uint4 q, float v, float (&acc)[8])
{
    float wv[8];
    weights_of<DT, 8>(q, wv);
#pragma unroll
    for (int j = 0; j < 8; j++) acc[j] = fmaf(wv[j], v, acc[j]);
}

// hidden_i = inner_i(x · A_i) for all branches. Block: 8 warps, 256 columns of the concatenation (lane l owns columns
// tile·256 + 8l .. + 7), rows [k0, k1) of split `split` (of `splits`) dealt to the warps round-robin, four loads in flight per
// lane. One split: the block writes hidden. Several: each block writes partial[split, ranks]; the last block of a
// column tile to finish (counted in counters[tile], which it resets) adds the splits in order and writes hidden.
template <int DT>
__device__ __forceinline__ void lora_down(const float* __restrict__ x, const LoraTable& t, float* partial, int* counters, int k,
    int rows_per_split, int tile, int split, int splits)
{
    __shared__ float sums[LORA_THREADS / 32][32 * 8];
    __shared__ int last;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int col0 = tile * 32 * 8;
    int col = col0 + lane * 8;
    bool active = col < t.ranks;
    int branch = active ? lora_branch_of_column(t, col) : 0;
    const char* w = (const char*)t.down[branch];
    int rank = t.rank[branch];
    int local = col - t.column[branch];
    int k0 = split * rows_per_split;
    int k1 = min(k, k0 + rows_per_split);
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; j++) acc[j] = 0.f;
    int r = k0 + warp;
    // The first four rows' weights load before the wait (weights are never written).
    uint4 q[4] = {};
#pragma unroll
    for (int u = 0; u < 4; u++)
    {
        if (active && r + u * 8 < k1) q[u] = load_stream(w + ((i64)(r + u * 8) * rank + local) * 2);
    }

    pdl_begin();
    if (active)
    {
        for (bool loaded = true; r < k1; r += 4 * 8, loaded = false)
        {
            float xv[4];
#pragma unroll
            for (int u = 0; u < 4; u++)
            {
                if (r + u * 8 < k1)
                {
                    if (!loaded) q[u] = load_stream(w + ((i64)(r + u * 8) * rank + local) * 2);
                    xv[u] = __ldg(x + r + u * 8);
                }
            }

#pragma unroll
            for (int u = 0; u < 4; u++)
            {
                if (r + u * 8 < k1) lora_fma8<DT>(q[u], xv[u], acc);
            }
        }
    }

#pragma unroll
    for (int j = 0; j < 8; j++) sums[warp][lane * 8 + j] = acc[j];
    __syncthreads();
    // Thread j owns column col0 + j: the block's sum over its warps, in warp order.
    int c = col0 + threadIdx.x;
    bool mine = c < t.ranks;
    float total = 0.f;
#pragma unroll
    for (int v = 0; v < LORA_THREADS / 32; v++) total += sums[v][threadIdx.x];
    if (splits == 1)
    {
        if (mine)
        {
            int b = lora_branch_of_column(t, c);
            ((float*)t.hidden[b])[c - t.column[b]] = lora_inner(t.inner[b], total);
        }

        return;
    }

    if (mine) partial[(i64)split * t.ranks + c] = total;
    // Publish this split, then count it; the block that counts last sees every split.
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(counters + tile, 1) == splits - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    if (mine)
    {
        float sum = 0.f;
        for (int s = 0; s < splits; s++) sum += ((volatile float*)partial)[(i64)s * t.ranks + c];
        int b = lora_branch_of_column(t, c);
        ((float*)t.hidden[b])[c - t.column[b]] = lora_inner(t.inner[b], sum);
    }

    if (threadIdx.x == 0) counters[tile] = 0;
}
