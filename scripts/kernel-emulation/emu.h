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
#include <mutex>
#include <condition_variable>
#include <map>
#include <chrono>
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
inline void __syncwarp(unsigned = 0xffffffffu) { warp_barriers[threadIdx.x >> 5]->arrive_and_wait(); }
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
template <class T> inline unsigned __ballot_sync(unsigned, T predicate)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    warp_buf[warp][lane] = predicate ? 1.0 : 0.0;
    warp_barriers[warp]->arrive_and_wait();
    unsigned r = 0;
    for (int l = 0; l < 32; l++) r |= (warp_buf[warp][l] != 0 ? 1u : 0u) << l;
    warp_barriers[warp]->arrive_and_wait();
    return r;
}
inline int __popc(unsigned v) { return __builtin_popcount(v); }

// sm_90 emulation (adapt.py --sm90 routes common.cuh's PTX helpers here): named barriers (bar.sync id, threads) and
// mbarriers with arrival counts, transaction bytes and phases. Bulk copies land late and out of order, as the TMA
// engine's may: each is due after a random delay (one in eight a long one: a straggler), and a lander thread copies
// the newest due one and completes its bytes. (Copies that landed at once hid a lapped parity wait that hung
// the H200: a consumer waiting on a slot's next use passed while the slot's previous copy was still in flight.)
// A wait that cannot finish (a protocol deadlock) fails the run after EMU_WAIT_SECONDS instead of hanging it.
#ifndef EMU_WAIT_SECONDS
#define EMU_WAIT_SECONDS 30
#endif
inline std::mutex emu_sync_mutex;
inline std::condition_variable emu_sync_cv;
inline std::map<int, std::unique_ptr<std::barrier<>>> emu_named;
inline void emu_named_barrier(int id, int threads)
{
    std::barrier<>* b;
    {
        std::lock_guard<std::mutex> lock(emu_sync_mutex);
        auto& slot = emu_named[id];
        if (!slot) slot.reset(new std::barrier<>(threads));
        b = slot.get();
    }
    b->arrive_and_wait();
}
struct EmuMbar { int count, pending; long long tx; unsigned phase; };
inline std::map<const void*, EmuMbar> emu_mbars;
inline void emu_mbar_done(EmuMbar& m)
{
    if (m.pending == 0 && m.tx == 0)
    {
        m.phase++;
        m.pending = m.count;
        emu_sync_cv.notify_all();
    }
}
inline EmuMbar& emu_mbar(const void* bar)
{
    auto it = emu_mbars.find(bar);
    if (it == emu_mbars.end()) { fprintf(stderr, "FAIL: mbarrier %p used before init\n", bar); exit(3); }
    return it->second;
}
inline void emu_mbar_init(const void* bar, unsigned count)
{
    std::lock_guard<std::mutex> lock(emu_sync_mutex);
    emu_mbars[bar] = EmuMbar{(int)count, (int)count, 0, 0u};
}
inline void emu_mbar_arrive(const void* bar, unsigned bytes)
{
    std::lock_guard<std::mutex> lock(emu_sync_mutex);
    auto& m = emu_mbar(bar);
    if (m.pending <= 0) { fprintf(stderr, "FAIL: mbarrier %p: more arrivals than its count %d\n", bar, m.count); exit(3); }
    m.tx += bytes;
    m.pending--;
    emu_mbar_done(m);
}
#ifndef EMU_COPY_DELAY_US
#define EMU_COPY_DELAY_US 100
#endif
#ifndef EMU_COPY_HOLD_US
#define EMU_COPY_HOLD_US 20000
#endif
struct EmuCopy { void* dst; const void* src; unsigned bytes; const void* bar; std::chrono::steady_clock::time_point due; };
inline std::vector<EmuCopy> emu_copies; // pending, under emu_sync_mutex
inline unsigned emu_copy_random = 12345u; // under emu_sync_mutex
inline unsigned emu_copy_next() { return (emu_copy_random = emu_copy_random * 1103515245u + 12345u) >> 8; }
inline void emu_lander()
{
    for (;;)
    {
        std::this_thread::sleep_for(std::chrono::microseconds(10));
        std::lock_guard<std::mutex> lock(emu_sync_mutex);
        // The newest copy that is due (so older ones stay in flight while later ones land).
        const auto now = std::chrono::steady_clock::now();
        for (size_t i = emu_copies.size(); i-- > 0;)
        {
            if (emu_copies[i].due > now) continue;
            const EmuCopy c = emu_copies[i];
            emu_copies.erase(emu_copies.begin() + (long)i);
            memcpy(c.dst, c.src, c.bytes);
            auto& m = emu_mbar(c.bar);
            m.tx -= c.bytes;
            emu_mbar_done(m);
            break;
        }
    }
}
// Due after up to EMU_COPY_DELAY_US, or (one copy in eight) up to EMU_COPY_HOLD_US: a straggler that later copies overtake.
inline void emu_bulk_copy(void* dst, const void* src, unsigned bytes, const void* bar)
{
    static std::once_flag started;
    std::call_once(started, [] { std::thread(emu_lander).detach(); });
    std::lock_guard<std::mutex> lock(emu_sync_mutex);
    const unsigned r = emu_copy_next();
    const unsigned us = (r & 7u) == 0 ? (r >> 3) % (EMU_COPY_HOLD_US + 1) : (r >> 3) % (EMU_COPY_DELAY_US + 1);
    emu_copies.push_back(EmuCopy{dst, src, bytes, bar, std::chrono::steady_clock::now() + std::chrono::microseconds(us)});
}
// try_wait.parity: the phase of that parity has completed when the current phase's parity differs from it.
inline void emu_mbar_wait(const void* bar, unsigned parity)
{
    std::unique_lock<std::mutex> lock(emu_sync_mutex);
    auto& m = emu_mbar(bar);
    if (!emu_sync_cv.wait_for(lock, std::chrono::seconds(EMU_WAIT_SECONDS), [&] { return (m.phase & 1u) != parity; }))
    {
        fprintf(stderr, "FAIL: thread %u of block %u waited %d s on mbarrier %p (parity %u, phase %u, %d arrivals and %lld bytes "
            "missing): the producer/consumer protocol deadlocks\n", threadIdx.x, blockIdx.x, EMU_WAIT_SECONDS, bar, parity, m.phase,
            m.pending, m.tx);
        exit(3);
    }
}

struct uint4 { unsigned x, y, z, w; }; // common.cuh's 16-byte weight loads (GPU-only helpers, never called here)
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
struct uint2 { unsigned x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; memcpy(&f, &u, 4); return f; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
// Blocks run one at a time, in launch order, or (emu_block_order_seed != 0) in an order shuffled by that seed: kernels
// whose blocks meet through counters (the last block to arrive finishes) must work in any order.
inline unsigned emu_block_order_seed = 0;
inline void launch(std::function<void()> kernel, unsigned gx, unsigned gy, unsigned bx, size_t shared_bytes)
{
    gridDim = {gx, gy, 1}; blockDim = {bx, 1, 1};
    std::vector<float> dyn(shared_bytes / 4 + 1, NAN);
    emu_dynamic_shared = dyn.data();
    std::vector<std::pair<unsigned, unsigned>> order;
    for (unsigned y = 0; y < gy; y++)
        for (unsigned x = 0; x < gx; x++) order.emplace_back(x, y);
    if (emu_block_order_seed != 0)
    {
        unsigned r = emu_block_order_seed;
        for (size_t i = order.size(); i > 1; i--)
        {
            r = r * 1103515245u + 12345u;
            std::swap(order[i - 1], order[(r >> 8) % i]);
        }
    }
    for (auto [bxi, byi] : order)
        {
            unsigned x = bxi, y = byi;
            std::barrier<> bar(bx);
            block_barrier = &bar;
            emu_named.clear();
            emu_mbars.clear();
            warp_barriers.clear();
            for (unsigned w = 0; w * 32 < bx; w++) warp_barriers.emplace_back(new std::barrier<>(min(32u, bx - w * 32)));
            std::vector<std::thread> threads;
            for (unsigned t = 0; t < bx; t++)
                threads.emplace_back([=] { threadIdx = {t, 0, 0}; blockIdx = {x, y, 0}; kernel(); });
            for (auto& th : threads) th.join();
        }
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 for one warp (kernels/attention.cu's mma_bf16_16816 is replaced
// by a call to this): each lane deposits its fragment registers, the warp meets, each lane rebuilds the whole A (16×16)
// and B (16×8) from all 32 lanes' registers by the PTX ISA layout ("Matrix Fragments for mma.m16n8k16 with floating
// point type"; lane = 4g + c: A a_i at row g (+8 for i = 2, 3, 6, 7), column 2c + (i & 1) (+8 for i ≥ 4); B b_i at
// row 2c + (i & 1) (+8 for i ≥ 2), column g; D d_i at row g (+8 for i ≥ 2), column 2c + (i & 1); a_i in register
// i / 2, odd i in the high half), the warp meets again, and each lane computes its four D elements (the exact bf16
// products summed in double, rounded to fp32 with C added).
inline unsigned emu_mma_frag[64][32][6];
inline float emu_bf16(unsigned w, int high) { unsigned b = high ? (w & 0xffff0000u) : (w << 16); float f; memcpy(&f, &b, 4); return f; }
inline void emu_mma_bf16_16816(float* d, const unsigned* a, unsigned b0, unsigned b1)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    auto& f = emu_mma_frag[warp];
    for (int i = 0; i < 4; i++) f[lane][i] = a[i];
    f[lane][4] = b0;
    f[lane][5] = b1;
    warp_barriers[warp]->arrive_and_wait();
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++)
    {
        int g = l >> 2, c = l & 3;
        for (int i = 0; i < 8; i++) A[g + ((i & 2) ? 8 : 0)][2 * c + (i & 1) + (i >= 4 ? 8 : 0)] = emu_bf16(f[l][i >> 1], i & 1);
        for (int i = 0; i < 4; i++) B[2 * c + (i & 1) + (i >= 2 ? 8 : 0)][g] = emu_bf16(f[l][4 + (i >> 1)], i & 1);
    }
    warp_barriers[warp]->arrive_and_wait();
    int g = lane >> 2, c = lane & 3;
    for (int i = 0; i < 4; i++)
    {
        int row = g + (i >= 2 ? 8 : 0), col = 2 * c + (i & 1);
        double sum = 0;
        for (int k = 0; k < 16; k++) sum += (double)A[row][k] * B[k][col];
        d[i] = (float)(sum + d[i]);
    }
}
