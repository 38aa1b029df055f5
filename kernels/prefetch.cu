// IOps.Prefetch on CUDA: asks the L2 to load the weights a later kernel of the decode step reads, so that DRAM streams
// them while the step's latency-bound kernels (LoRA, keys, the recurrence: ~20 µs a 7B RAD-RWKV7 layer with DRAM all
// but idle, CUPTI trace, H200, 2026-11-28) would leave it idle. Launched on its own stream (a branch of a recorded
// step), one warp a block and a block a SM: cp.async.bulk.prefetch.L2 (sm_90) hands each chunk to the SM's copy
// engine, which drains one warp's prefetches at only ~180 GB/s, so the chunks are dealt over the grid. The prefetch is
// a hint: it writes nothing and no result depends on it. By default only behind recurrent mixers and for weights of
// more than 4 L2s (CudaBackend.AutoPrefetchFraction; RADLADS_PREFETCH_L2 overrides): 7B RAD-RWKV7 steps 1.9 % faster,
// while 0.5B and 1.5B lost 2–11 % and Qwen2 7B 1 % (H200, 2026-11-28, NOTES ninth and eleventh sessions).
#include "common.cuh"

#define PREFETCH_RANGES 8
#define PREFETCH_CHUNK 65536

// Layout matches CudaBackend.PrefetchTable (C#): up to 8 ranges, pointers 16-byte aligned, sizes multiples of 16.
struct PrefetchTable
{
    unsigned long long pointer[PREFETCH_RANGES];
    long long bytes[PREFETCH_RANGES];
    int count;
};

// Chunk c of the concatenated ranges (in the order they will be read) goes to block c mod grid (so consecutive chunks
// use different SMs' copy engines), lane ⌊c/grid⌋ mod 32.
// cp.async.bulk is PTX ISA 8.0 (CUDA 12): compiled by an older NVRTC the kernel does nothing (the hint is dropped).
extern "C" __global__ void __launch_bounds__(32) prefetch_l2(PrefetchTable t)
{
#if __CUDA_ARCH__ >= 900 && __CUDACC_VER_MAJOR__ >= 12
    i64 first = 0; // chunks of the ranges before range i
    const i64 stride = (i64)blockDim.x * gridDim.x;
    const i64 me = (i64)threadIdx.x * gridDim.x + blockIdx.x;
    for (int i = 0; i < t.count; i++)
    {
        i64 chunks = (t.bytes[i] + PREFETCH_CHUNK - 1) / PREFETCH_CHUNK;
        // The first chunk c ≥ first with c ≡ me (mod stride), as an index into this range.
        i64 c = ((me - first) % stride + stride) % stride;
        for (; c < chunks; c += stride)
        {
            unsigned long long p = t.pointer[i] + (unsigned long long)(c * PREFETCH_CHUNK);
            i64 left = t.bytes[i] - c * PREFETCH_CHUNK;
            u32 size = (u32)(left < PREFETCH_CHUNK ? left : PREFETCH_CHUNK);
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(size) : "memory");
        }
        first += chunks;
    }
#endif
}
