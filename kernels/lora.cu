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
#include "lora_up.cuh"


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
        lora_up<DT, L>(table, rwkv7_scale, blockIdx.x);                                                                              \
    }

LORA_UP(lora_up_f16_l4, DT_F16, 4)
LORA_UP(lora_up_f16_l8, DT_F16, 8)
LORA_UP(lora_up_bf16_l4, DT_BF16, 4)
LORA_UP(lora_up_bf16_l8, DT_BF16, 8)
