// Minimal CUDA emulation on CPU threads for testing kernels' logic (one block at a time, a std::thread per CUDA thread).
#pragma once
#define _GNU_SOURCE 1
#include <cmath>
#include <cstring>
#include <cstdio>
#include <thread>
#include <barrier>
#include <vector>
#include <functional>
#include <algorithm>
#include <memory>
using std::min; using std::max;
struct dim3e { unsigned x, y, z; };
inline thread_local dim3e threadIdx, blockIdx;
inline dim3e blockDim, gridDim;
inline std::barrier<>* block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline double warp_buf[64][32];
inline float* emu_dynamic_shared;
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
template <class T> inline T __shfl_xor_sync(unsigned, T v, int o)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    warp_buf[warp][lane] = (double)v;
    warp_barriers[warp]->arrive_and_wait();
    T r = (T)warp_buf[warp][lane ^ o];
    warp_barriers[warp]->arrive_and_wait();
    return r;
}
template <class T> inline T __shfl_sync(unsigned, T v, int source)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    warp_buf[warp][lane] = (double)v;
    warp_barriers[warp]->arrive_and_wait();
    T r = (T)warp_buf[warp][source & 31];
    warp_barriers[warp]->arrive_and_wait();
    return r;
}
struct uint4 { unsigned x, y, z, w; }; // common.cuh's 16-byte weight loads (GPU-only helpers, never called here)
struct float4 { float x, y, z, w; };
struct uint2 { unsigned x, y; };
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; memcpy(&f, &u, 4); return f; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline void launch(std::function<void()> kernel, unsigned gx, unsigned gy, unsigned bx, size_t shared_bytes)
{
    gridDim = {gx, gy, 1}; blockDim = {bx, 1, 1};
    std::vector<float> dyn(shared_bytes / 4 + 1, NAN);
    emu_dynamic_shared = dyn.data();
    for (unsigned y = 0; y < gy; y++)
        for (unsigned x = 0; x < gx; x++)
        {
            std::barrier<> bar(bx);
            block_barrier = &bar;
            warp_barriers.clear();
            for (unsigned w = 0; w * 32 < bx; w++) warp_barriers.emplace_back(new std::barrier<>(min(32u, bx - w * 32)));
            std::vector<std::thread> threads;
            for (unsigned t = 0; t < bx; t++)
                threads.emplace_back([=] { threadIdx = {t, 0, 0}; blockIdx = {x, y, 0}; kernel(); });
            for (auto& th : threads) th.join();
        }
}
