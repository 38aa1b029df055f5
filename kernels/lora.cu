// LoraSet (IOps.LoraSet) at decode (T = 1): up to four LoRA branches y_i = outer_i(inner_i(x·A_i)·B_i) that read the
// same x [C], in two launches instead of two GEMVs and up to two elementwise kernels per branch. A_i [C, R_i] and
// B_i [R_i, M_i] are in×out, bf16 or f16 (one dtype for the launch), with R_i and M_i multiples of 8 and 16-byte
// aligned pointers; the host (src/Radlads.Cuda/CudaOps.LoraSet.cs) checks that and runs the composed ops otherwise.
//   lora_down_{dt}: the in×out GEMV over the concatenated columns of all A_i (x read once per block): a lane owns 8
//   adjacent columns (one 16-byte load per row; 8 columns never straddle two branches), the 8 warps of a block split
//   the rows of its K range, K is split over blockIdx.y and the last block of each column tile to finish adds the
//   splits in a fixed order (a counter per tile, reset by that block); inner_i is applied on that final write into
//   hidden_i [R_i].
//   lora_up_{dt}_l{4,8}: hidden_i · B_i → y_i with outer_i applied on the write. Each block covers 8·L columns of ONE
//   branch (L lanes of 8 columns); its 256/L row slots split R_i and meet in shared memory in a fixed order. No split
//   over blocks is needed (R ≤ a few hundred); L = 4 gives twice the blocks of L = 8 for narrow sets.
// Both are deterministic: every sum has the same order on every run, so recorded and eager steps agree bit for bit.
#include "common.cuh"
#include "lora_down.cuh"

// LoraOuter (C#).
#define LORA_OUTER_ADD_SIGMOID 1
#define LORA_OUTER_RWKV7_DECAY 2
#define LORA_OUTER_RWKV6_DECAY 3

// Prefill (T > 1, host: CudaOps.LoraSet.cs LoraSetGemm): hidden [T, R] from the cuBLASLt down GEMM gets inner in place
// (tanhf / sigmoid_ as tanh_f32 / sigmoid_f32) and is written again as bf16 (f32_to_bf16_bits, as f32_to_bf16) for the
// up GEMM: one launch instead of the activation's and the rounding's.
extern "C" __global__ void lora_inner_bf16(float* hidden, u16* hb, i64 n, int inner)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float h = lora_inner(inner, hidden[i]);
        hidden[i] = h;
        hb[i] = (u16)f32_to_bf16_bits(h);
    }
}

// The same arithmetic as add_sigmoid_f32, rwkv7_decay_f32 and rwkv6_decay_f32.
__device__ __forceinline__ float lora_outer(int outer, float z, const void* offset, int dtype, int c, float rwkv7_scale)
{
    if (outer == LORA_OUTER_ADD_SIGMOID) return sigmoid_(z + load_any(offset, dtype, c));
    if (outer == LORA_OUTER_RWKV7_DECAY) return expf(sigmoid_(z + load_any(offset, dtype, c)) * rwkv7_scale);
    if (outer == LORA_OUTER_RWKV6_DECAY)
    {
        float log_decay = -expf(load_any(offset, dtype, c) + z);
        return expf(log_decay != log_decay ? log_decay : fmaxf(log_decay, -5.f));
    }

    return z;
}

// y_i = outer_i(hidden_i · B_i). Block blockIdx.x belongs to the branch b with block[b] ≤ blockIdx.x < block[b + 1] and
// covers its columns tile·8L .. + 8L − 1: thread (slot, lane) with lane = threadIdx.x mod L owns 8 adjacent columns,
// and row slot s = threadIdx.x / L takes rows s, s + 256/L, …; the slots' sums meet in shared memory, each column's 32 (L = 8)
// or 64 (L = 4) slot sums added in eight-slot groups, then the groups, always in the same order.
template <int DT, int L>
__device__ __forceinline__ void lora_up(const LoraTable& t, float rwkv7_scale)
{
    const int cols = 8 * L;
    const int slots = LORA_THREADS / L;
    const int groups = LORA_THREADS / cols; // × 8 slots each = slots
    __shared__ float sums[LORA_THREADS / L][8 * L];
    int branch = 0;
    while (branch + 1 < t.count && (int)blockIdx.x >= t.block[branch + 1]) branch++;
    int tile = (int)blockIdx.x - t.block[branch];
    int m = t.width[branch];
    int rank = t.rank[branch];
    int lane = threadIdx.x % L, slot = threadIdx.x / L;
    int col = tile * cols + lane * 8;
    bool active = col < m;
    const char* w = (const char*)t.up[branch];
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; j++) acc[j] = 0.f;
    int r = slot;
    // The first four rows' weights load before the wait (weights are never written).
    uint4 q[4] = {};
#pragma unroll
    for (int u = 0; u < 4; u++)
    {
        if (active && r + u * slots < rank) q[u] = load_stream(w + ((i64)(r + u * slots) * m + col) * 2);
    }

    pdl_begin();
    const float* h = (const float*)t.hidden[branch];
    if (active)
    {
        for (bool loaded = true; r < rank; r += 4 * slots, loaded = false)
        {
            float hv[4];
#pragma unroll
            for (int u = 0; u < 4; u++)
            {
                if (r + u * slots < rank)
                {
                    if (!loaded) q[u] = load_stream(w + ((i64)(r + u * slots) * m + col) * 2);
                    hv[u] = h[r + u * slots];
                }
            }

#pragma unroll
            for (int u = 0; u < 4; u++)
            {
                if (r + u * slots < rank) lora_fma8<DT>(q[u], hv[u], acc);
            }
        }
    }

#pragma unroll
    for (int j = 0; j < 8; j++) sums[slot][lane * 8 + j] = acc[j];
    __syncthreads();
    // Thread (g, j): column j of the tile, slots 8g .. 8g + 7.
    int j = threadIdx.x % cols, g = threadIdx.x / cols;
    float s = 0.f;
#pragma unroll
    for (int v = 0; v < 8; v++) s += sums[g * 8 + v][j];
    __syncthreads();
    sums[g][j] = s;
    __syncthreads();
    int c = tile * cols + (int)threadIdx.x;
    if (threadIdx.x < cols && c < m)
    {
        float total = 0.f;
#pragma unroll
        for (int v = 0; v < groups; v++) total += sums[v][threadIdx.x];
        ((float*)t.y[branch])[c] =
            lora_outer(t.outer[branch], total, (const void*)t.offset[branch], t.offset_dtype[branch], c, rwkv7_scale);
    }
}

#define LORA_DOWN(name, DT)                                                                                              \
    extern "C" __global__ void __launch_bounds__(LORA_THREADS) name(const float* x, LoraTable table, float* partial,     \
        int* counters, int k, int rows_per_split)                                                                        \
    {                                                                                                                    \
        lora_down<DT>(x, table, partial, counters, k, rows_per_split, blockIdx.x, blockIdx.y, gridDim.y);               \
    }

LORA_DOWN(lora_down_f16, DT_F16)
LORA_DOWN(lora_down_bf16, DT_BF16)

#define LORA_UP(name, DT, L)                                                                                             \
    extern "C" __global__ void __launch_bounds__(LORA_THREADS) name(LoraTable table, float rwkv7_scale)                  \
    {                                                                                                                    \
        lora_up<DT, L>(table, rwkv7_scale);                                                                              \
    }

LORA_UP(lora_up_f16_l4, DT_F16, 4)
LORA_UP(lora_up_f16_l8, DT_F16, 8)
LORA_UP(lora_up_bf16_l4, DT_BF16, 4)
LORA_UP(lora_up_bf16_l8, DT_BF16, 8)
