// Shared by every kernel file (served to `#include "common.cuh"` by the host, not read from disk).
// No CUDA headers are included: NVRTC's builtins give the intrinsics used here, and bf16/f16 are converted
// from their bits, so these files compile with any NVRTC from 11.2 on without an include path.
#pragma once

typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;

// Radlads.Checkpoints.DType codes.
#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2

// A grid-stride loop over [0, n).
#define GRID_STRIDE(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

// Programmatic dependent launch (sm_90 and later, when the host launches with it): a kernel may start while the
// one before it in the stream finishes. pdl_wait() blocks until that kernel has completed and its writes are
// visible; pdl_trigger() lets the next kernel start its blocks. Without the launch attribute both are no-ops.
// Every kernel calls pdl_begin() (wait, then trigger) before it reads or writes activations; the GEMVs load their
// first weights (which no kernel writes) before it.
__device__ __forceinline__ void pdl_wait()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_begin()
{
    pdl_wait();
    pdl_trigger();
}

// A load that sees what other blocks of this grid wrote before a grid_barrier (plain coherent ld.global; __ldg's
// read-only path may keep stale lines of memory written during the kernel). p 16-byte aligned. volatile keeps it after
// the barrier's volatile acquire load; no memory clobber, so it still schedules freely against the weight loads.
__device__ __forceinline__ float4 load_written4(const float* p)
{
#if defined(__CUDA_ARCH__)
    float4 v;
    asm volatile("ld.global.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p));
    return v;
#else
    return *(const float4*)p;
#endif
}

__device__ __forceinline__ int load_acquire(const int* p)
{
#if defined(__CUDA_ARCH__)
    int v;
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
#else
    return *(const volatile int*)p;
#endif
}

// Who meets at a block-level barrier, and a thread's index among them (tid): the whole block (__syncthreads), or a
// named barrier `id` over `threads` threads from thread `base` on (sm_90: the consumer warps of a warp-specialised
// kernel, whose producer warp streams weights and never waits there; without sm_90, and under the emulator, such
// kernels run without a producer warp and with one group of consumers, so the consumers are the block).
struct BlockSync
{
    __device__ __forceinline__ void operator()() const { __syncthreads(); }
    __device__ __forceinline__ int tid() const { return (int)threadIdx.x; }
};

struct NamedSync
{
    int id, threads, base;

    __device__ __forceinline__ void operator()() const
    {
#if __CUDA_ARCH__ >= 900
        asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
#else
        __syncthreads();
#endif
    }

    __device__ __forceinline__ int tid() const { return (int)threadIdx.x - base; }
};

// Every block of the grid waits here until all have arrived; writes before it are visible to loads after it (plain or
// load_written4, not __ldg). The grid must be co-resident (a cooperative launch). bar[0] counts arrivals and bar[1] is
// the generation: the last block to arrive puts bar[0] back to 0 before it moves bar[1] on, so the same two words serve
// every barrier of every launch and every replay of a recorded graph (launches on one stream never overlap). Every
// thread that Sync names calls it (thread 0 among them).
template <typename Sync = BlockSync>
__device__ __forceinline__ void grid_barrier(int* bar, Sync sync = Sync())
{
    sync();
    if (sync.tid() == 0)
    {
        int blocks = (int)(gridDim.x * gridDim.y);
        int generation = load_acquire(bar + 1); // cannot move on before this block arrives
        __threadfence();                        // this block's writes before its arrival
        if (atomicAdd(bar, 1) == blocks - 1)
        {
            *(volatile int*)bar = 0;
            __threadfence();
            atomicAdd(bar + 1, 1);
        }
        else
        {
            while (load_acquire(bar + 1) == generation)
            {
            }
        }
        __threadfence();
    }
    sync();
}

// Shared-memory barriers (mbarrier, sm_90) for bulk copies: init with an arrival count, arrive (optionally declaring
// the bytes a bulk copy will complete on it), wait for the phase of a given parity to complete, and the bulk copy
// global → shared (16-byte aligned addresses, bytes a multiple of 16; the TMA engine moves them, no registers hold
// them). No-ops before sm_90: the kernels that use them then copy by ordinary loads (see mlp_stream).
__device__ __forceinline__ void mbar_init(unsigned long long* bar, unsigned count)
{
#if __CUDA_ARCH__ >= 900
    const unsigned b = (unsigned)__cvta_generic_to_shared(bar);
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(b), "r"(count) : "memory");
#else
    (void)bar;
    (void)count;
#endif
}

// After every mbar_init of the block, before any thread uses the barriers (then a __syncthreads()).
__device__ __forceinline__ void mbar_init_fence()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

__device__ __forceinline__ void mbar_arrive(unsigned long long* bar)
{
#if __CUDA_ARCH__ >= 900
    const unsigned b = (unsigned)__cvta_generic_to_shared(bar);
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(b) : "memory");
#else
    (void)bar;
#endif
}

__device__ __forceinline__ void mbar_arrive_expect(unsigned long long* bar, unsigned bytes)
{
#if __CUDA_ARCH__ >= 900
    const unsigned b = (unsigned)__cvta_generic_to_shared(bar);
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(b), "r"(bytes) : "memory");
#else
    (void)bar;
    (void)bytes;
#endif
}

__device__ __forceinline__ void mbar_wait(unsigned long long* bar, unsigned parity)
{
#if __CUDA_ARCH__ >= 900
    const unsigned b = (unsigned)__cvta_generic_to_shared(bar);
    unsigned done = 0;
    while (!done)
    {
        asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
            : "=r"(done)
            : "r"(b), "r"(parity)
            : "memory");
    }
#else
    (void)bar;
    (void)parity;
#endif
}

__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, unsigned long long* bar)
{
#if __CUDA_ARCH__ >= 900
    const unsigned b = (unsigned)__cvta_generic_to_shared(bar), d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
        ::"r"(d), "l"(src), "r"(bytes), "r"(b)
        : "memory");
#else
    (void)dst;
    (void)src;
    (void)bytes;
    (void)bar;
#endif
}

// Asynchronous global → shared copies (cp.async, sm_80 and later) for kernels that stage the next chunk of their
// input while computing on the current one: no registers hold the data in flight. copy_async_f32 copies one float,
// or writes 0 when !in (src must still be a valid address); copy_async_wait_all() waits for this thread's copies
// (a __syncthreads() after it makes every thread's visible). Before sm_80 the copy is an ordinary load and store.
__device__ __forceinline__ void copy_async_f32(float* dst, const float* src, bool in)
{
#if __CUDA_ARCH__ >= 800
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    int bytes = in ? 4 : 0;
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(d), "l"(src), "r"(bytes) : "memory");
#else
    *dst = in ? *src : 0.f;
#endif
}

__device__ __forceinline__ void copy_async_commit()
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

__device__ __forceinline__ void copy_async_wait_all()
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_all;" ::: "memory");
#endif
}

// 16 bytes global → shared (both 16-byte aligned), cached in L2 only (cp.async.cg), and a wait that leaves this
// thread's newest N commit groups in flight (attention_prefill_tc's double buffer; then a
// __syncthreads() where other threads read the data). Before sm_80 (and under the emulator) an ordinary copy, no wait.
__device__ __forceinline__ void copy_async_16(void* dst, const void* src)
{
#if __CUDA_ARCH__ >= 800
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(d), "l"(src) : "memory");
#else
    *(uint4*)dst = *(const uint4*)src;
#endif
}

template <int N>
__device__ __forceinline__ void copy_async_wait_group()
{
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

__device__ __forceinline__ float bf16_to_float(u16 b) { return __uint_as_float(((u32)b) << 16); }

// fp32 → bf16 bits for the cuBLASLt prefill GEMMs' activations (f32_to_bf16 in matmul.cu, and the kernels that write
// a bf16 copy beside their fp32 output): round to nearest even (as Bf16.FromSingle on the host), NaN kept a quiet
// NaN, ±Inf and values that round past the largest bf16 become ±Inf.
__device__ __forceinline__ u32 f32_to_bf16_bits(float f)
{
    u32 b = __float_as_uint(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (b >> 16) | 0x40u;
    return (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
}

// Four of them packed as one 8-byte store (the kernels that write a bf16 copy beside a float4 of their output).
__device__ __forceinline__ uint2 f32x4_to_bf16_bits(float4 r)
{
    uint2 bits;
    bits.x = f32_to_bf16_bits(r.x) | (f32_to_bf16_bits(r.y) << 16);
    bits.y = f32_to_bf16_bits(r.z) | (f32_to_bf16_bits(r.w) << 16);
    return bits;
}

__device__ __forceinline__ float f16_to_float(u16 h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// Element i of a weight stored as DT, as fp32.
template <int DT>
__device__ __forceinline__ float load_w(const void* p, i64 i)
{
    if (DT == DT_BF16) return bf16_to_float(((const u16*)p)[i]);
    if (DT == DT_F16) return f16_to_float(((const u16*)p)[i]);
    return ((const float*)p)[i];
}

// Element i of a parameter of any dtype (the dtype is the same for the whole launch, so the branch is uniform).
__device__ __forceinline__ float load_any(const void* p, int dtype, i64 i)
{
    if (dtype == DT_BF16) return load_w<DT_BF16>(p, i);
    if (dtype == DT_F16) return load_w<DT_F16>(p, i);
    return load_w<DT_F32>(p, i);
}

// Two 16-bit weights of one 32-bit word (little-endian: element 2i in the low half).
template <int DT>
__device__ __forceinline__ float lo16(u32 word)
{
    return DT == DT_BF16 ? __uint_as_float(word << 16) : f16_to_float((u16)(word & 0xffffu));
}

template <int DT>
__device__ __forceinline__ float hi16(u32 word)
{
    return DT == DT_BF16 ? __uint_as_float(word & 0xffff0000u) : f16_to_float((u16)(word >> 16));
}

// 16 bytes of a weight that is read once per step: not kept in L1, so the activations stay there.
__device__ __forceinline__ uint4 load_stream(const void* p)
{
    uint4 v;
#if __CUDA_ARCH__ >= 700
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
#else
    asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
#endif
    return v;
}

// The PER weights (1, 4 or 8) of one 16-byte load of a weight row, as fp32.
template <int DT, int PER>
__device__ __forceinline__ void weights_of(uint4 q, float* wv)
{
    u32 words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int j = 0; j < PER; j++)
        wv[j] = DT == DT_F32 ? __uint_as_float(words[j]) : ((j & 1) ? hi16<DT>(words[j >> 1]) : lo16<DT>(words[j >> 1]));
}

__device__ __forceinline__ float sigmoid_(float x) { return 1.f / (1.f + expf(-x)); }

__device__ __forceinline__ float neg_infinity() { return __int_as_float(0xff800000); }

// Float4 chunks a thread of the RmsNorm vector path keeps in registers (norms.cu, and the fused norm + GEMV kernels
// of matmul.cu): the host picks the block size so that ceil(C/4 / threads) <= NORM_VEC (C up to 16,384 at 1,024 threads).
#define NORM_VEC 4

// The RMSNorm weights of float4 chunks first, first + stride, … (NORM_VEC of them, those below c elements) as floats,
// from any dtype: loaded before the PDL wait by the plain and the fused norms alike (weights are never written).
__device__ __forceinline__ void load_norm_weights(float4 (&wv)[NORM_VEC], const void* w, int w_dtype, int c, int first, int stride,
    bool mine)
{
#pragma unroll
    for (int j = 0; j < NORM_VEC; j++)
    {
        int e = (first + j * stride) << 2;
        if (mine && e < c)
            wv[j] = make_float4(load_any(w, w_dtype, e), load_any(w, w_dtype, e + 1), load_any(w, w_dtype, e + 2), load_any(w, w_dtype, e + 3));
    }
}

// sum + x² + y² + z² + w², in that order (the RMSNorm kernels' sum of squares, so fused and plain norms agree).
__device__ __forceinline__ float sum_squares4(float4 v, float sum)
{
    sum = fmaf(v.x, v.x, sum);
    sum = fmaf(v.y, v.y, sum);
    sum = fmaf(v.z, v.z, sum);
    return fmaf(v.w, v.w, sum);
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block (blockDim.x a multiple of 32), or over the threads Sync names (the first `warps` warps; -1: the
// block). scratch: 32 floats of shared memory.
template <typename Sync = BlockSync>
__device__ __forceinline__ float block_sum(float v, float* scratch, Sync sync = Sync(), int warps = -1)
{
    int lane = sync.tid() & 31, warp = sync.tid() >> 5;
    v = warp_sum(v);
    sync();
    if (lane == 0) scratch[warp] = v;
    sync();
    if (warp == 0)
    {
        if (warps < 0) warps = (blockDim.x + 31) >> 5;
        v = lane < warps ? scratch[lane] : 0.f;
        v = warp_sum(v);
        if (lane == 0) scratch[0] = v;
    }
    sync();
    return scratch[0];
}

// One thread's part of a vector-path RMSNorm row (norms.cu rms_norm_vec, matmul.cu ResidualNorm): its float4 chunks
// first, first + stride, … (NORM_VEC of them, those below `chunks`) of h, plus b's when b is not null, into v; then,
// with every thread of the block calling it (mine false adds nothing), 1 / sqrt(mean(s²) + eps) of the row. One
// order of sums for the plain and the fused norms, so they give the same bits.
template <typename Sync = BlockSync>
__device__ __forceinline__ float rms_norm_inverse(const float4* hr, const float4* br, float4 (&v)[NORM_VEC], int first, int stride,
    int chunks, bool mine, int c, float eps, float* scratch, Sync sync = Sync(), int warps = -1)
{
#pragma unroll
    for (int j = 0; j < NORM_VEC; j++)
    {
        int i = first + j * stride;
        if (mine && i < chunks)
        {
            v[j] = hr[i];
            if (br != nullptr)
            {
                float4 e = br[i];
                v[j].x += e.x; v[j].y += e.y; v[j].z += e.z; v[j].w += e.w;
            }
        }
    }

    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < NORM_VEC; j++)
    {
        int i = first + j * stride;
        if (mine && i < chunks) sum = sum_squares4(v[j], sum);
    }

    sum = block_sum(sum, scratch, sync, warps);
    return 1.f / sqrtf(sum / c + eps);
}

// w ⊙ s · inv for one float4, each product rounded as the norms round it.
__device__ __forceinline__ float4 rms_normed4(float4 v, float inv, float4 w)
{
    return make_float4((v.x * inv) * w.x, (v.y * inv) * w.y, (v.z * inv) * w.z, (v.w * inv) * w.w);
}

// Rotate-half RoPE, shared by rope_f32, rope_rows_f32 and the fused rope_expand kernels so that they all round
// alike. rope_cos_sin: the angle of pair i (of a head of n) at a position, in float64 as the CPU reference computes
// it, cos and sin rounded to fp32. rope_pair: (a, b) ← (a·cos − b·sin, b·cos + a·sin), each product and sum rounded
// once (no FMA contraction), as the CPU reference's fp32 arithmetic.
__device__ __forceinline__ void rope_cos_sin(double position, int i, int n, float theta, float& cf, float& sf)
{
    double inverse = pow((double)theta, -2.0 * i / n);
    double s, c;
    sincos(position * inverse, &s, &c);
    cf = (float)c;
    sf = (float)s;
}

__device__ __forceinline__ void rope_pair(float& a, float& b, float cf, float sf)
{
    float x = a, y = b;
    a = __fsub_rn(__fmul_rn(x, cf), __fmul_rn(y, sf));
    b = __fadd_rn(__fmul_rn(y, cf), __fmul_rn(x, sf));
}

// Pair (i, i + half) of the head at p rotated in place; the rotated pair is returned in a, b.
__device__ __forceinline__ void rope_in_place(float* p, int i, int half, float cf, float sf, float& a, float& b)
{
    a = p[i];
    b = p[i + half];
    rope_pair(a, b, cf, sf);
    p[i] = a;
    p[i + half] = b;
}

// One thread's share of IOps.RopeExpand(Rows) at row t: pair i of query head h of r [T, H·N] rotated in place; the
// thread of a KV head's first query head (h % groups == 0) also rotates pair i of that KV head of k [T, KVH·N] in
// place and writes it and v's pair to all `groups` query heads of kh, vh [T, H·N] (when kh is not null). Only it
// touches that k pair, so no thread reads a k element another one writes.
__device__ __forceinline__ void rope_expand_head_pair(float* r, float* k, const float* v, float* kh, float* vh, i64 t, int h, int i,
    int kv_heads, int groups, int n, float cf, float sf)
{
    int half = n / 2;
    i64 heads = (i64)kv_heads * groups;
    float a, b;
    rope_in_place(r + (t * heads + h) * n, i, half, cf, sf, a, b);
    if (h % groups != 0) return;
    int j = h / groups;
    float ka, kb;
    rope_in_place(k + (t * kv_heads + j) * n, i, half, cf, sf, ka, kb);
    if (kh == 0) return;
    const float* vp = v + (t * kv_heads + j) * n;
    float va = vp[i], vb = vp[i + half];
    for (int g = 0; g < groups; g++)
    {
        i64 o = (t * heads + h + g) * n;
        kh[o + i] = ka;
        kh[o + i + half] = kb;
        vh[o + i] = va;
        vh[o + i + half] = vb;
    }
}

// Pair (i, i + half) of one query head for RAD-RWKV7's one-token keys: r's pair rotated from r_in into r_out (the same
// place for an in-place rotation), the pair of the head's KV head of k (kp) rotated into kh, v's (vp) copied into vh.
// Shared by rwkv7_rope_keys_rows_f32 (global memory) and rwkv7_rope_keys_wkv7_rows (shared memory), so they round alike.
__device__ __forceinline__ void rwkv7_rope_head_pair(const float* r_in, float* r_out, const float* kp, const float* vp, float* kh,
    float* vh, int i, int half, float cf, float sf)
{
    float ra = r_in[i], rb = r_in[i + half];
    rope_pair(ra, rb, cf, sf);
    r_out[i] = ra;
    r_out[i + half] = rb;
    float ka = kp[i], kb = kp[i + half];
    rope_pair(ka, kb, cf, sf);
    kh[i] = ka;
    kh[i + half] = kb;
    vh[i] = vp[i];
    vh[i + half] = vp[i + half];
}

// The wkv7 (generalised delta rule) update of one value row i by one warp, the lanes across the row's n keys: lane
// holds S[i, lane + 32e] in s (loaded by the caller, which may do so before pdl_begin: only this layer's recurrence
// writes its state). sa = Σ_j a_j S[i,j]; S[i,j] ← S[i,j]·w_j + k_j·v_i + sa·b_j (written to row); returns
// Σ_j S[i,j]·r_j (warp-summed, every lane). r, w, k, a, b point at the head's n keys (global or shared memory).
// Shared by wkv7_decode_f32, wkv7_decode_rows_f32 and rwkv7_rope_keys_wkv7_rows_f32 so that they round alike.
// NE: the row's keys a lane holds (n ≤ 32·NE; padding keys are skipped, so every NE gives the same bits).
#define WKV7_MAX_PER_LANE 8
template <int NE = WKV7_MAX_PER_LANE>
__device__ __forceinline__ float wkv7_decode_row(float* row, const float* s, const float* r, const float* w, const float* k,
    const float* a, const float* b, float vi, int n, int lane)
{
    float sa = 0.f;
#pragma unroll
    for (int e = 0; e < NE; e++)
    {
        int j = lane + 32 * e;
        if (j < n) sa = fmaf(a[j], s[e], sa);
    }

    sa = warp_sum(sa);
    float acc = 0.f;
#pragma unroll
    for (int e = 0; e < NE; e++)
    {
        int j = lane + 32 * e;
        if (j < n)
        {
            float value = fmaf(b[j], sa, fmaf(k[j], vi, s[e] * w[j]));
            row[j] = value;
            acc = fmaf(value, r[j], acc);
        }
    }

    return warp_sum(acc);
}

// Loads S[i, lane + 32e] of a row (0 past n) for wkv7_decode_row.
template <int NE = WKV7_MAX_PER_LANE>
__device__ __forceinline__ void wkv7_load_row(const float* row, float* s, int n, int lane)
{
#pragma unroll
    for (int e = 0; e < NE; e++)
    {
        int j = lane + 32 * e;
        s[e] = j < n ? row[j] : 0.f;
    }
}

// RAD-RWKV7's keys and value residual for one (token, head) by one warp (rwkv7.cu rwkv7_keys_vres_f32 and
// rwkv7_rope_keys_rows_f32): κ = normalize(k or k ⊙ k_k) with eps 1e-12, removal = −κ, replacement = κ ⊙ a,
// k̃ = k ⊙ (1 − w + a) (balanced) or k ⊙ (1 + (a − 1) ⊙ k_a) (stock); has_residual: v ← v + (v_first − v) ⊙ ν. Each
// lane holds its ≤ KEYS_PER_LANE elements (lane + 32u) in registers, so k is read once; the sums run in the order of
// rwkv7_keys_f32 and rwkv7_value_residual_f32: the same bits. Head dim ≤ 32 · KEYS_PER_LANE.
#define KEYS_PER_LANE 8

// k_k and k_a of head h (weights: callers load them before pdl_begin); zeros for balanced keys. KPL: the elements a
// lane holds (head dim ≤ 32·KPL; the loops skip i ≥ n, so every KPL gives the same bits).
template <int KPL = KEYS_PER_LANE>
__device__ __forceinline__ void rwkv7_keys_weights(const void* key_scale, int key_scale_dtype, const void* iclr_mix,
    int iclr_mix_dtype, int h, int n, int lane, int balanced, float* ks, float* ka)
{
#pragma unroll
    for (int u = 0; u < KPL; u++)
    {
        int i = lane + 32 * u;
        ks[u] = !balanced && i < n ? load_any(key_scale, key_scale_dtype, (i64)h * n + i) : 0.f;
        ka[u] = !balanced && i < n ? load_any(iclr_mix, iclr_mix_dtype, (i64)h * n + i) : 0.f;
    }
}

// The head at element offset o of k, w, a, removal, replacement, k_tilde, v, v_first, nu.
template <int KPL = KEYS_PER_LANE>
__device__ __forceinline__ void rwkv7_keys_vres_head(const float* k, const float* w, const float* a, const float* ks,
    const float* ka, i64 o, int n, int lane, int balanced, float* removal, float* replacement, float* k_tilde, float* v,
    const float* v_first, const float* nu, int has_residual)
{
    // Every activation this lane needs is loaded up front, before the warp sum: the stores below could alias them
    // (no __restrict__), so loads left in the second loop would each wait for the stores before them.
    float kr[KPL], ar[KPL], wr[KPL], vr[KPL], fr[KPL], nr[KPL];
    float sum = 0.f;
#pragma unroll
    for (int u = 0; u < KPL; u++)
    {
        int i = lane + 32 * u;
        bool in = i < n;
        i64 p = o + i;
        kr[u] = in ? k[p] : 0.f;
        ar[u] = in ? a[p] : 0.f;
        wr[u] = in && balanced ? w[p] : 0.f;
        vr[u] = in && has_residual ? v[p] : 0.f;
        fr[u] = in && has_residual ? v_first[p] : 0.f;
        nr[u] = in && has_residual ? nu[p] : 0.f;
    }

#pragma unroll
    for (int u = 0; u < KPL; u++)
    {
        if (lane + 32 * u < n)
        {
            float kappa = balanced ? kr[u] : kr[u] * ks[u];
            sum = fmaf(kappa, kappa, sum);
        }
    }

    float inv = 1.f / fmaxf(sqrtf(warp_sum(sum)), 1e-12f);
#pragma unroll
    for (int u = 0; u < KPL; u++)
    {
        int i = lane + 32 * u;
        if (i < n)
        {
            i64 p = o + i;
            float kj = kr[u];
            float ai = ar[u];
            float kappa = (balanced ? kj : kj * ks[u]) * inv;
            k_tilde[p] = balanced ? kj * (1.f - wr[u] + ai) : kj * (1.f + (ai - 1.f) * ka[u]);
            removal[p] = -kappa;
            replacement[p] = kappa * ai;
            if (has_residual)
            {
                float vi = vr[u];
                v[p] = vi + (fr[u] - vi) * nr[u];
            }
        }
    }
}
