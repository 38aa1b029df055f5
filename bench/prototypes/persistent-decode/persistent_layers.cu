// A measurement, not product code: can one persistent kernel run a 0.5B decode step's GEMV chain near the copy
// bandwidth? (NOTES, seventeenth and eighteenth sessions: the PDL-chained launches cost ~24.6 µs a 0.5B RAD-RWKV7 layer
// for ~7.3 µs of bytes; every fusion inside that model lost.) Standalone: nvcc on the GPU machine, see run.sh.
//
// The chain, per layer (Qwen2.5-0.5B shapes, bf16 weights, fp32 activations; the other ops of a layer are left out):
//   stage 0  qkv  [1152, 896]  · x          (q 896 + k 128 + v 128 rows)
//   stage 1  o    [896, 896]   · qkv[0:896]  (stands in for recurrence + o_proj)
//   stage 2  gu   [9728, 896]  · o          (gate and up rows)
//   stage 3  down [896, 4864]  · silu(g)·u  (the SwiGLU applied while loading the input)
// and the next layer's stage 0 reads down's output. Each stage needs all of the stage before: a grid-wide dependency.
//
// Variants, timed in one process on the same weights:
//   launches    one GEMV kernel a stage (one warp a row, 16-byte loads), captured in a CUDA graph;
//   persistent  one cooperative kernel for all layers, one block a SM, grid_barrier (common.cuh) between stages, each
//               block's rows read from global memory after the barrier;
//   staged      the same, but each block's rows of stage i+2 are bulk-copied (cp.async.bulk, sm_90) into shared memory as
//               soon as stage i is done with its buffer, so the weights stream while blocks wait at barriers;
//   barriers    the persistent kernel's barriers alone (no loads): what the joins cost.
// Reported: µs a layer, and the weights' bytes a layer over that time against the measured device-to-device copy rate.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <cmath>
#include <cuda_runtime.h>
#include "../../../kernels/common.cuh"

#define CHECK(x)                                                                                                       \
    do                                                                                                                 \
    {                                                                                                                  \
        cudaError_t e_ = (x);                                                                                          \
        if (e_ != cudaSuccess)                                                                                         \
        {                                                                                                              \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));                          \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

constexpr int C = 896, F = 4864, QKV = 1152, STAGES = 4, THREADS = 512, WARPS = THREADS / 32;
__host__ __device__ constexpr int stage_rows(int s) { return s == 0 ? QKV : s == 1 ? C : s == 2 ? 2 * F : C; }
__host__ __device__ constexpr int stage_k(int s) { return s == 3 ? F : C; }

struct Layers
{
    const u16* w[STAGES]; // layer l's weights of stage s at w[s] + l · rows(s) · k(s)
    float* out[STAGES];   // outputs of stage s (the last layer's survive)
    float* x0;            // the step's input [C]
    unsigned long long* times; // block 0's %globaltimer at 5 points of every stage (the last launch's)
    float* act;                // silu(g)·u [F], written by region_kernel's stage 2
    unsigned long long* tagged[STAGES]; // region_kernel<1, 2>'s stage outputs: (tag << 32) | float bits
    int layers;
};

// The input of stage s into shared memory (fp32, k(s) values): stage 3 applies silu(g)·u to stage 2's output.
__device__ __forceinline__ void load_input(const Layers& t, int s, int layer, float* xs)
{
    int k = stage_k(s);
    const float* src = s == 0 ? (layer == 0 ? t.x0 : t.out[3]) : t.out[s - 1];
    for (int i = threadIdx.x * 4; i < k; i += THREADS * 4)
    {
        float4 v = load_written4(src + i);
        if (s == 3)
        {
            float4 u = load_written4(src + F + i);
            v = make_float4(v.x / (1.f + expf(-v.x)) * u.x, v.y / (1.f + expf(-v.y)) * u.y, v.z / (1.f + expf(-v.z)) * u.z,
                v.w / (1.f + expf(-v.w)) * u.w);
        }

        *(float4*)(xs + i) = v;
    }
}

// acc + the 8 products of one 16-byte chunk of bf16 weights with x[0 … 7], in one fixed order (every variant uses it).
__device__ __forceinline__ float dot8(uint4 q, const float* x, float acc)
{
    acc = fmaf(lo16<DT_BF16>(q.x), x[0], acc);
    acc = fmaf(hi16<DT_BF16>(q.x), x[1], acc);
    acc = fmaf(lo16<DT_BF16>(q.y), x[2], acc);
    acc = fmaf(hi16<DT_BF16>(q.y), x[3], acc);
    acc = fmaf(lo16<DT_BF16>(q.z), x[4], acc);
    acc = fmaf(hi16<DT_BF16>(q.z), x[5], acc);
    acc = fmaf(lo16<DT_BF16>(q.w), x[6], acc);
    return fmaf(hi16<DT_BF16>(q.w), x[7], acc);
}

// One row: the warp's lanes over its 16-byte chunks (8 bf16), in a fixed order, then a warp sum.
__device__ __forceinline__ float row_dot(const uint4* wr, const float* xs, int k, int lane)
{
    float acc = 0.f;
#pragma unroll 4
    for (int c = lane; c < k / 8; c += 32)
    {
        uint4 q = wr[c];
        float4 a = *(const float4*)(xs + c * 8), b = *(const float4*)(xs + c * 8 + 4);
        const float x8[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
        acc = dot8(q, x8, acc);
    }

    return warp_sum(acc);
}

// The residual norm before q/k/v and gate/up (stages 0 and 2), as every block does it for itself in a persistent
// step: warp 0 sums the squares in a fixed order (so both variants get the same bits), then every thread scales.
// Without it the random chain decays to zero within a few layers and the comparison below would check nothing.
__device__ __forceinline__ void normalize_input(float* xs, int k, float* scalar)
{
    __syncthreads();
    if (threadIdx.x < 32)
    {
        float sum = 0.f;
        for (int i = threadIdx.x; i < k; i += 32) sum = fmaf(xs[i], xs[i], sum);
        sum = warp_sum(sum);
        if (threadIdx.x == 0) *scalar = 1.f / sqrtf(sum / k + 1e-6f);
    }

    __syncthreads();
    float inv = *scalar;
    for (int i = threadIdx.x; i < k; i += blockDim.x) xs[i] *= inv;
}

// Grid barrier on a monotonic counter: each block adds 1 (release) and its thread 0 polls (acquire) until all blocks
// of barrier `index` of launch `epoch` have arrived; no reset, no second atomic (grid_barrier's generation word).
__device__ __forceinline__ void counter_barrier(unsigned* counter, unsigned target)
{
    __syncthreads();
    if (threadIdx.x == 0)
    {
        asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(counter) : "memory");
        unsigned v;
        do
        {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(counter) : "memory");
        } while ((int)(v - target) < 0);
    }

    __syncthreads();
}

// ---- launches: one kernel a stage ------------------------------------------------------------------------------
__global__ void __launch_bounds__(256) stage_kernel(Layers t, int s, int layer)
{
    __shared__ __align__(16) float xs[F];
    int k = stage_k(s);
    const float* src = s == 0 ? (layer == 0 ? t.x0 : t.out[3]) : t.out[s - 1];
    for (int i = threadIdx.x * 4; i < k; i += 256 * 4)
    {
        float4 v = *(const float4*)(src + i);
        if (s == 3)
        {
            float4 u = *(const float4*)(src + F + i);
            v = make_float4(v.x / (1.f + expf(-v.x)) * u.x, v.y / (1.f + expf(-v.y)) * u.y, v.z / (1.f + expf(-v.z)) * u.z,
                v.w / (1.f + expf(-v.w)) * u.w);
        }

        *(float4*)(xs + i) = v;
    }

    __shared__ float scalar;
    if (s == 0 || s == 2) normalize_input(xs, k, &scalar);
    __syncthreads();
    int row = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= stage_rows(s)) return;
    const uint4* wr = (const uint4*)(t.w[s] + ((i64)layer * stage_rows(s) + row) * k);
    float acc = 0.f;
    for (int c = lane; c < k / 8; c += 32)
    {
        uint4 q = load_stream(wr + c);
        float4 a = *(const float4*)(xs + c * 8), b = *(const float4*)(xs + c * 8 + 4);
        const float x8[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
        acc = dot8(q, x8, acc);
    }

    acc = warp_sum(acc);
    if (lane == 0) t.out[s][row] = acc;
}

// ---- persistent: one block a SM for the whole step ------------------------------------------------------------
// Block b owns rows [b·M/G, (b+1)·M/G) of every stage. mode 0: rows from global memory after the barrier; mode 1: from
// shared memory, staged two stages ahead by bulk copies; mode 2: barriers only.
constexpr int SMEM_A = 74 * C * 2;      // even stages (qkv 9 rows, gate/up 74 rows of K = 896)
constexpr int SMEM_B = 7 * F * 2;       // odd stages (o 7 rows of 896, down 7 rows of 4,864)
constexpr int SMEM_X = F * 4;           // the stage's input
constexpr int SMEM_TOTAL = SMEM_A + SMEM_B + SMEM_X + 64;

__device__ __forceinline__ unsigned long long now_ns()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ void block_rows(int s, int& r0, int& r1)
{
    int m = stage_rows(s), g = (int)gridDim.x, b = (int)blockIdx.x;
    r0 = (int)((i64)m * b / g);
    r1 = (int)((i64)m * (b + 1) / g);
}

// Thread 0: stage s of `layer`'s rows of this block into buf, completing on bar.
__device__ __forceinline__ void stage_copy(const Layers& t, int s, int layer, char* buf, unsigned long long* bar)
{
    int r0, r1;
    block_rows(s, r0, r1);
    int k = stage_k(s);
    unsigned bytes = (unsigned)((r1 - r0) * k * 2);
    const char* src = (const char*)(t.w[s] + ((i64)layer * stage_rows(s) + r0) * k);
    mbar_arrive_expect(bar, bytes);
    for (unsigned o = 0; o < bytes; o += 32768)
        bulk_copy(buf + o, src + o, min(32768u, bytes - o), bar);
}

__global__ void __launch_bounds__(THREADS, 1) persistent_kernel(Layers t, int* barrier, int mode, int counter_kind, unsigned epoch)
{
    __shared__ float scalar;
    extern __shared__ __align__(128) char smem[];
    char* buf[2] = {smem, smem + SMEM_A};
    float* xs = (float*)(smem + SMEM_A + SMEM_B);
    unsigned long long* bars = (unsigned long long*)(smem + SMEM_A + SMEM_B + SMEM_X);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int total = t.layers * STAGES;
    if (mode == 1)
    {
        if (threadIdx.x == 0)
        {
            mbar_init(&bars[0], 1);
            mbar_init(&bars[1], 1);
            mbar_init_fence();
        }

        __syncthreads();
        if (threadIdx.x == 0)
        {
            stage_copy(t, 0, 0, buf[0], &bars[0]);
            stage_copy(t, 1, 0, buf[1], &bars[1]);
        }
    }

    for (int i = 0; i < total; i++)
    {
        int s = i % STAGES, layer = i / STAGES, k = stage_k(s);
        bool timing = blockIdx.x == 0 && threadIdx.x == 0;
        if (timing) t.times[i * 5] = now_ns();
        if (i > 0)
        {
            if (counter_kind == 0) grid_barrier(barrier);
            else counter_barrier((unsigned*)barrier + 2, (epoch * (unsigned)(total - 1) + (unsigned)i) * gridDim.x);
        }

        if (mode == 2) continue;
        if (timing) t.times[i * 5 + 1] = now_ns();
        load_input(t, s, layer, xs);
        if (s == 0 || s == 2) normalize_input(xs, k, &scalar);
        __syncthreads();
        int r0, r1;
        block_rows(s, r0, r1);
        if (timing) t.times[i * 5 + 2] = now_ns();
        if (mode == 1) mbar_wait(&bars[i & 1], (unsigned)((i >> 1) & 1));
        if (timing) t.times[i * 5 + 3] = now_ns();
        for (int r = r0 + warp; r < r1; r += WARPS)
        {
            const uint4* wr = mode == 1 ? (const uint4*)(buf[i & 1] + (i64)(r - r0) * k * 2)
                                        : (const uint4*)(t.w[s] + ((i64)layer * stage_rows(s) + r) * k);
            float acc = row_dot(wr, xs, k, lane);
            if (lane == 0) t.out[s][r] = acc;
        }

        __syncthreads(); // buf[i & 1] and xs are free
        if (timing) t.times[i * 5 + 4] = now_ns();
        if (mode == 1 && threadIdx.x == 0 && i + 2 < total)
            stage_copy(t, (i + 2) % STAGES, (i + 2) / STAGES, buf[i & 1], &bars[i & 1]);
    }
}

// ---- regions: every stage of a layer has its own shared-memory region, so the next layer's copy of a stage goes out as
// soon as this layer's stage is done with it (three stages of lookahead: the copies stream while blocks wait at the
// barriers). x is held in registers, each warp owning rows (K = 896) or a K-slice of every row (down, K = 4,864), so
// shared memory serves each weight byte once and nothing else. A copy is issued by the last warp's lane 0 right after
// the barrier (a dedicated 17th producer warp, waiting on per-region "freed" mbarriers, measured slower: README). Gate/up runs as row pairs and writes silu(g)·u (as the runtime's gate_up_swiglu
// does), so down reads 4,864 activations instead of 9,728 sums.
// Region offsets (bytes): qkv 9 rows, o 7 rows, gate/up 74 rows of K = 896, then down 7 rows of K = 4,864.
__host__ __device__ constexpr int region_offset(int s) { return s == 0 ? 0 : s == 1 ? 9 * C * 2 : s == 2 ? 16 * C * 2 : 90 * C * 2; }
constexpr int REGIONS_END = 90 * C * 2 + 7 * F * 2;
constexpr int SMEM_REGIONS = REGIONS_END + 8 * WARPS * 4 + 4 * 8; // 229,920 bytes of the 232,448 a block may have
constexpr int LL_HALF = C / 2;                                      // words of x region_kernel<2> stages at a time
constexpr int SMEM_REGIONS_LL = SMEM_REGIONS + LL_HALF * 4;          // 231,712 bytes
constexpr int XCHUNKS = (C / 8 + 31) / 32; // 16-byte chunks of x a lane holds at K = 896 (4)
constexpr int DOWN_SLICE = F / 8 / WARPS;  // chunks of a down row a warp owns (38)

// region_kernel's copies: gate/up as pairs (block b: gate rows [p0, p1) and up rows F + [p0, p1), so a warp can apply
// SwiGLU to its own two sums); the other stages as stage_copy.
__device__ __forceinline__ void region_copy(const Layers& t, int s, int layer, char* dst, unsigned long long* bar)
{
    if (s != 2)
    {
        stage_copy(t, s, layer, dst, bar);
        return;
    }

    int g = (int)gridDim.x, b = (int)blockIdx.x;
    int p0 = (int)((i64)F * b / g), p1 = (int)((i64)F * (b + 1) / g);
    unsigned bytes = (unsigned)((p1 - p0) * C * 2);
    const char* gate = (const char*)(t.w[2] + ((i64)layer * 2 * F + p0) * C);
    const char* up = (const char*)(t.w[2] + ((i64)layer * 2 * F + F + p0) * C);
    mbar_arrive_expect(bar, 2 * bytes);
    for (unsigned o = 0; o < bytes; o += 32768)
    {
        bulk_copy(dst + o, gate + o, min(32768u, bytes - o), bar);
        bulk_copy(dst + 37 * C * 2 + o, up + o, min(32768u, bytes - o), bar);
    }
}

// LL (region_kernel<1, 2>): no grid barrier. Each stage output is one 8-byte word, the value with a tag naming the
// stage and launch (NCCL's LL protocol), stored relaxed; a consumer polls each word it needs until the tag is the one
// it expects, so data and "ready" travel in one hop. A buffer is rewritten only four stages later, by which time every
// consumer of it has read it (each stage needs all of the one before, so no block runs three stages ahead).
// Eight consecutive tagged words (64 bytes) as four 16-byte volatile loads issued together, re-read until every tag
// matches: one round trip a poll instead of eight dependent ones.
__device__ __forceinline__ bool tagged_load8(const unsigned long long* p, unsigned tag, float* out)
{
    bool ok = true;
#pragma unroll
    for (int q = 0; q < 4; q++)
    {
        unsigned long long a, b;
        asm volatile("ld.volatile.global.v2.u64 {%0, %1}, [%2];" : "=l"(a), "=l"(b) : "l"(p + 2 * q) : "memory");
        ok &= (unsigned)(a >> 32) == tag && (unsigned)(b >> 32) == tag;
        out[2 * q] = __uint_as_float((unsigned)a), out[2 * q + 1] = __uint_as_float((unsigned)b);
    }

    return ok;
}

__device__ __forceinline__ void tagged_store(unsigned long long* p, float x, unsigned tag)
{
    unsigned long long v = ((unsigned long long)tag << 32) | __float_as_uint(x);
    asm volatile("st.relaxed.gpu.global.b64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

// LL: 0 grid barrier (counter), 1 every warp polls the tagged words it needs, 2 the block polls x once into shared
// memory (half at a time: 1,792 bytes is what is left) and down's warps back off between polls.
template <int LL>
__global__ void __launch_bounds__(THREADS, 1) region_kernel(Layers t, unsigned* counter, unsigned epoch)
{
    extern __shared__ __align__(128) char smem[];
    float* partial = (float*)(smem + REGIONS_END); // [8 rows][WARPS] down partial sums
    unsigned long long* bars = (unsigned long long*)(partial + 8 * WARPS);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int total = t.layers * STAGES;
    if (threadIdx.x == 0)
    {
        for (int s = 0; s < STAGES; s++) mbar_init(&bars[s], 1);
        mbar_init_fence();
    }

    __syncthreads();
    if (threadIdx.x == 0)
        for (int s = 0; s < STAGES && s < total; s++) region_copy(t, s, 0, smem + region_offset(s), &bars[s]);

    for (int i = 0; i < total; i++)
    {
        int s = i % STAGES, layer = i / STAGES;
        bool timing = blockIdx.x == 0 && threadIdx.x == 0;
        if (timing) t.times[i * 5] = now_ns();
        if (i > 0 && !LL) counter_barrier(counter, (epoch * (unsigned)(total - 1) + (unsigned)i) * gridDim.x);
        if (LL) __syncthreads(); // this block's stage i - 1 is done with its region (the barrier's job otherwise)
        if (timing) t.times[i * 5 + 1] = now_ns();
        const unsigned in_tag = epoch * (unsigned)total + (unsigned)i, out_tag = in_tag + 1;
        // Stage i - 1 is done in this block (the barrier's __syncthreads): its region takes the next layer's copy.
        if (warp == WARPS - 1 && lane == 0 && i >= 1 && i + 3 < total)
            region_copy(t, (i - 1) % STAGES, (i + 3) / STAGES, smem + region_offset((i - 1) % STAGES), &bars[(i - 1) % STAGES]);
        int r0, r1;
        block_rows(s, r0, r1);
        const char* region = smem + region_offset(s);
        if (s < 3)
        {
            // Every warp reads all of x (3.5 KB: L2 once a block, then L1) into registers; no block barrier.
            const float* src = s == 0 ? (layer == 0 ? t.x0 : t.out[3]) : t.out[s - 1];
            float x[XCHUNKS][8];
            float sum = 0.f;
#pragma unroll
            for (int j = 0; j < XCHUNKS; j++)
            {
                int c = lane + 32 * j;
                if (LL == 2 && !(s == 0 && layer == 0))
                {
                    // (filled below, after this loop, from shared memory)
                    for (int e = 0; e < 8; e++) x[j][e] = 0.f;
                }
                else if (LL && !(s == 0 && layer == 0))
                {
                    const unsigned long long* tp = t.tagged[s == 0 ? 3 : s - 1] + c * 8;
                    if (c < C / 8)
                        while (!tagged_load8(tp, in_tag, x[j])) { }
                    else
                        for (int e = 0; e < 8; e++) x[j][e] = 0.f;
                }
                else
                {
                    float4 a = c < C / 8 ? load_written4(src + c * 8) : make_float4(0, 0, 0, 0);
                    float4 b = c < C / 8 ? load_written4(src + c * 8 + 4) : make_float4(0, 0, 0, 0);
                    x[j][0] = a.x, x[j][1] = a.y, x[j][2] = a.z, x[j][3] = a.w, x[j][4] = b.x, x[j][5] = b.y, x[j][6] = b.z, x[j][7] = b.w;
                }
#pragma unroll
                for (int e = 0; e < 8; e++) sum = fmaf(x[j][e], x[j][e], sum);
            }

            if (LL == 2 && !(s == 0 && layer == 0))
            {
                float* xs = (float*)(bars + STAGES);
                const unsigned long long* base = t.tagged[s == 0 ? 3 : s - 1];
                for (int half = 0; half < 2; half++)
                {
                    if ((int)threadIdx.x < LL_HALF / 2)
                    {
                        float two[2];
                        const unsigned long long* tp = base + half * LL_HALF + 2 * threadIdx.x;
                        for (;;)
                        {
                            unsigned long long a, b;
                            asm volatile("ld.volatile.global.v2.u64 {%0, %1}, [%2];" : "=l"(a), "=l"(b) : "l"(tp) : "memory");
                            two[0] = __uint_as_float((unsigned)a), two[1] = __uint_as_float((unsigned)b);
                            if ((unsigned)(a >> 32) == in_tag && (unsigned)(b >> 32) == in_tag) break;
                            __nanosleep(32);
                        }
                        xs[2 * threadIdx.x] = two[0], xs[2 * threadIdx.x + 1] = two[1];
                    }

                    __syncthreads();
#pragma unroll
                    for (int j = 0; j < XCHUNKS; j++)
                    {
                        int c = lane + 32 * j, c0 = half * (LL_HALF / 8);
                        if (c >= c0 && c < c0 + LL_HALF / 8)
                        {
                            float4 a = *(const float4*)(xs + (c - c0) * 8), b = *(const float4*)(xs + (c - c0) * 8 + 4);
                            x[j][0] = a.x, x[j][1] = a.y, x[j][2] = a.z, x[j][3] = a.w, x[j][4] = b.x, x[j][5] = b.y, x[j][6] = b.z, x[j][7] = b.w;
#pragma unroll
                            for (int e = 0; e < 8; e++) sum = fmaf(x[j][e], x[j][e], sum);
                        }
                    }

                    __syncthreads();
                }
            }

            if (s != 1)
            {
                float inv = 1.f / sqrtf(warp_sum(sum) / C + 1e-6f);
#pragma unroll
                for (int j = 0; j < XCHUNKS; j++)
#pragma unroll
                    for (int e = 0; e < 8; e++) x[j][e] *= inv;
            }

            if (timing) t.times[i * 5 + 2] = now_ns();
            mbar_wait(&bars[s], (unsigned)(layer & 1));
            if (timing) t.times[i * 5 + 3] = now_ns();
            auto dot = [&](const uint4* wr) {
                float acc = 0.f;
#pragma unroll
                for (int j = 0; j < XCHUNKS; j++)
                {
                    int c = lane + 32 * j;
                    if (c < C / 8)
                    {
                        uint4 q = wr[c];
                        acc = dot8(q, x[j], acc);
                    }
                }

                return warp_sum(acc);
            };
            if (s == 2)
            {
                int g = (int)gridDim.x, b = (int)blockIdx.x;
                int p0 = (int)((i64)F * b / g), p1 = (int)((i64)F * (b + 1) / g);
                for (int p = p0 + warp; p < p1; p += WARPS)
                {
                    float gs = dot((const uint4*)(region + (i64)(p - p0) * C * 2));
                    float us = dot((const uint4*)(region + (i64)(37 + p - p0) * C * 2));
                    float act = gs / (1.f + expf(-gs)) * us;
                    if (lane == 0)
                    {
                        if (LL) tagged_store(t.tagged[2] + p, act, out_tag);
                        else t.act[p] = act;
                    }
                }
            }
            else
            {
                for (int r = r0 + warp; r < r1; r += WARPS)
                {
                    float acc = dot((const uint4*)(region + (i64)(r - r0) * C * 2));
                    if (lane == 0)
                    {
                        if (LL) tagged_store(t.tagged[s] + r, acc, out_tag);
                        else t.out[s][r] = acc;
                    }
                }
            }
        }
        else
        {
            // down: warp w owns chunks [w·38, w·38 + 38) of every row; act = silu(g)·u of that slice, from L2.
            float x[2][8];
#pragma unroll
            for (int j = 0; j < 2; j++)
            {
                int c = warp * DOWN_SLICE + lane + 32 * j;
                bool in = lane + 32 * j < DOWN_SLICE;
#pragma unroll
                for (int h = 0; h < 2; h++)
                {
                    if (LL)
                    {
                        if (h == 0)
                        {
                            if (in)
                                while (!tagged_load8(t.tagged[2] + c * 8, in_tag, x[j]))
                                    if (LL == 2) __nanosleep(64);
                            else
                                for (int e = 0; e < 8; e++) x[j][e] = 0.f;
                        }
                    }
                    else
                    {
                        float4 a = in ? load_written4(t.act + c * 8 + h * 4) : make_float4(0, 0, 0, 0);
                        x[j][h * 4 + 0] = a.x, x[j][h * 4 + 1] = a.y, x[j][h * 4 + 2] = a.z, x[j][h * 4 + 3] = a.w;
                    }
                }
            }

            if (timing) t.times[i * 5 + 2] = now_ns();
            mbar_wait(&bars[s], (unsigned)(layer & 1));
            if (timing) t.times[i * 5 + 3] = now_ns();
            for (int r = r0; r < r1; r++)
            {
                const uint4* wr = (const uint4*)(region + (i64)(r - r0) * F * 2);
                float acc = 0.f;
#pragma unroll
                for (int j = 0; j < 2; j++)
                {
                    if (lane + 32 * j < DOWN_SLICE)
                    {
                        uint4 q = wr[warp * DOWN_SLICE + lane + 32 * j];
                        acc = dot8(q, x[j], acc);
                    }
                }

                acc = warp_sum(acc);
                if (lane == 0) partial[(r - r0) * WARPS + warp] = acc;
            }

            __syncthreads();
            if ((int)threadIdx.x < r1 - r0)
            {
                float total_ = 0.f;
                for (int w = 0; w < WARPS; w++) total_ += partial[threadIdx.x * WARPS + w];
                t.out[3][r0 + threadIdx.x] = total_;
                if (LL) tagged_store(t.tagged[3] + r0 + threadIdx.x, total_, out_tag);
            }
        }

        if (timing) t.times[i * 5 + 4] = now_ns();
    }
}

// ---- host -------------------------------------------------------------------------------------------------------
__global__ void fill_bf16(u16* w, i64 n, float scale, unsigned seed)
{
    GRID_STRIDE(i, n)
    {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 13;
        h *= 0x5bd1e995u;
        h ^= h >> 15;
        float v = ((h & 0xffffff) / 16777216.f * 2.f - 1.f) * scale;
        w[i] = (u16)(__float_as_uint(v) >> 16);
    }
}

int main(int argc, char** argv)
{
    int layers = argc > 1 ? atoi(argv[1]) : 24;
    int reps = argc > 2 ? atoi(argv[2]) : 50;
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    int sms = prop.multiProcessorCount;
    printf("device %s, %d SMs, %d layers, %d timed steps a variant\n", prop.name, sms, layers, reps);

    for (int s = 0; s < STAGES; s++)
    {
        int most = (stage_rows(s) + sms - 1) / sms;
        if ((long)most * stage_k(s) * 2 > (s % 2 == 0 ? SMEM_A : SMEM_B))
        {
            fprintf(stderr, "stage %d: %d rows a block do not fit its shared-memory buffer on %d SMs\n", s, most, sms);
            return 1;
        }
    }

    Layers t{};
    t.layers = layers;
    double bytes_layer = 0;
    for (int s = 0; s < STAGES; s++)
    {
        i64 n = (i64)layers * stage_rows(s) * stage_k(s);
        u16* w;
        CHECK(cudaMalloc(&w, n * 2));
        // ±√3/√K keeps a row's output near the input's scale; silu·u shrinks it, so down's weights are larger.
        float scale = sqrtf(3.f / stage_k(s)) * (s == 3 ? 4.f : 1.f);
        fill_bf16<<<1024, 256>>>(w, n, scale, 0x9e3779b9u * (s + 1));
        CHECK(cudaGetLastError());
        t.w[s] = w;
        CHECK(cudaMalloc(&t.out[s], (size_t)stage_rows(s) * 4));
        bytes_layer += (double)stage_rows(s) * stage_k(s) * 2;
    }

    CHECK(cudaMalloc(&t.x0, C * 4));
    CHECK(cudaMalloc(&t.act, F * 4));
    for (int s = 0; s < STAGES; s++)
    {
        size_t n = s == 2 ? F : stage_rows(s);
        CHECK(cudaMalloc(&t.tagged[s], n * 8));
        CHECK(cudaMemset(t.tagged[s], 0, n * 8));
    }
    CHECK(cudaMalloc(&t.times, (size_t)layers * STAGES * 5 * sizeof(unsigned long long)));
    std::vector<float> x0(C);
    for (int i = 0; i < C; i++) x0[i] = sinf(0.37f * i);
    CHECK(cudaMemcpy(t.x0, x0.data(), C * 4, cudaMemcpyHostToDevice));
    int* barrier;
    CHECK(cudaMalloc(&barrier, 3 * sizeof(int)));
    CHECK(cudaMemset(barrier, 0, 3 * sizeof(int)));
    unsigned epoch = 0; // counter_barrier launches so far: their targets continue from the last

    // Copy rate: 1 GiB device to device, bytes read + written.
    size_t copy_bytes = (size_t)1 << 30;
    void *ca, *cb;
    CHECK(cudaMalloc(&ca, copy_bytes));
    CHECK(cudaMalloc(&cb, copy_bytes));
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    CHECK(cudaMemcpy(cb, ca, copy_bytes, cudaMemcpyDeviceToDevice));
    CHECK(cudaEventRecord(e0));
    for (int r = 0; r < 10; r++) CHECK(cudaMemcpyAsync(cb, ca, copy_bytes, cudaMemcpyDeviceToDevice));
    CHECK(cudaEventRecord(e1));
    CHECK(cudaEventSynchronize(e1));
    float ms;
    CHECK(cudaEventElapsedTime(&ms, e0, e1));
    double copy_rate = 2.0 * copy_bytes * 10 / (ms * 1e-3);
    printf("copy rate %.0f GB/s (read + written); weights a layer %.2f MB = %.2f us at that rate\n", copy_rate / 1e9,
        bytes_layer / 1e6, bytes_layer / copy_rate * 1e6);
    CHECK(cudaFree(ca));
    CHECK(cudaFree(cb));

    // launches, as a CUDA graph
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    for (int l = 0; l < layers; l++)
        for (int s = 0; s < STAGES; s++) stage_kernel<<<(stage_rows(s) + 7) / 8, 256, 0, stream>>>(t, s, l);
    CHECK(cudaStreamEndCapture(stream, &graph));
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    std::vector<float> reference(C), got(C);
    // µs a step of `launch` (one step a call), after one untimed step.
    auto time_steps = [&](auto launch) {
        launch();
        CHECK(cudaStreamSynchronize(stream));
        CHECK(cudaEventRecord(e0, stream));
        for (int r = 0; r < reps; r++) launch();
        CHECK(cudaEventRecord(e1, stream));
        CHECK(cudaEventSynchronize(e1));
        float m;
        CHECK(cudaEventElapsedTime(&m, e0, e1));
        return m * 1e3 / reps;
    };

    // The step's output against `launches`': max |difference| and max |reference|.
    auto compare = [&](double& worst, double& top) {
        CHECK(cudaMemcpy(got.data(), t.out[3], C * 4, cudaMemcpyDeviceToHost));
        worst = 0, top = 0;
        for (int i = 0; i < C; i++)
        {
            worst = fmax(worst, fabs((double)got[i] - reference[i]));
            top = fmax(top, fabs((double)reference[i]));
        }
    };

    // Block 0's stages of the last step (layers 1 … L-1 averaged): barrier wait, input (+ norm), weights wait, rows, and
    // what follows before the next stage's barrier (the copy issue where the kernel issues copies there).
    auto print_breakdown = [&](const char* last) {
        std::vector<unsigned long long> ts((size_t)layers * STAGES * 5);
        CHECK(cudaMemcpy(ts.data(), t.times, ts.size() * 8, cudaMemcpyDeviceToHost));
        for (int st = 0; st < STAGES; st++)
        {
            double part[5] = {0, 0, 0, 0, 0};
            int n = 0;
            for (int l = 1; l < layers; l++)
            {
                int i = l * STAGES + st;
                if (i + 1 >= layers * STAGES) continue;
                const unsigned long long* a = &ts[(size_t)i * 5];
                for (int q = 0; q < 4; q++) part[q] += a[q + 1] - a[q];
                part[4] += ts[(size_t)(i + 1) * 5] - a[4];
                n++;
            }

            printf("           stage %d (%4d x %4d): barrier %5.2f  input %5.2f  weights %5.2f  rows %5.2f  %s %5.2f us\n", st,
                stage_rows(st), stage_k(st), part[0] / n / 1e3, part[1] / n / 1e3, part[2] / n / 1e3, part[3] / n / 1e3, last,
                part[4] / n / 1e3);
        }
    };

    CHECK(cudaFuncSetAttribute(persistent_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_TOTAL));
    int per_sm = 0;
    CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, persistent_kernel, THREADS, SMEM_TOTAL));
    if (per_sm < 1)
    {
        fprintf(stderr, "persistent_kernel does not fit a SM (%d bytes of shared memory)\n", SMEM_TOTAL);
        return 1;
    }

    CHECK(cudaFuncSetAttribute(region_kernel<0>, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_REGIONS));
    CHECK(cudaFuncSetAttribute(region_kernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_REGIONS));
    CHECK(cudaFuncSetAttribute(region_kernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_REGIONS_LL));
    unsigned region_epoch = 0, ll_epoch = 0, lls_epoch = 0; // launches of each: the counter's targets and the tags continue from them
    unsigned* region_counter;
    CHECK(cudaMalloc(&region_counter, sizeof(unsigned)));
    CHECK(cudaMemset(region_counter, 0, sizeof(unsigned)));

    const char* names[] = {"persistent", "staged", "barriers"};
    for (int round = 0; round < 2; round++)
    {
        double us = time_steps([&]() { CHECK(cudaGraphLaunch(exec, stream)); });
        CHECK(cudaMemcpy(reference.data(), t.out[3], C * 4, cudaMemcpyDeviceToHost));
        printf("round %d  launches             %8.1f us a step  %6.2f us a layer  %5.1f %% of copy rate\n", round, us, us / layers,
            100.0 * bytes_layer * layers / copy_rate * 1e6 / us);
        for (int variant = 0; variant < 6; variant++)
        {
            int mode = variant % 3, kind = variant / 3;
            CHECK(cudaMemset(t.out[3], 0, C * 4));
            void* args[] = {&t, &barrier, &mode, &kind, &epoch};
            double p = time_steps([&]() {
                CHECK(cudaLaunchCooperativeKernel((void*)persistent_kernel, dim3(sms), dim3(THREADS), args, SMEM_TOTAL, stream));
                if (kind == 1) epoch++;
            });
            printf("round %d  %-11s %-8s %8.1f us a step  %6.2f us a layer  %5.1f %% of copy rate", round, names[mode],
                kind == 0 ? "gen" : "counter", p, p / layers, 100.0 * bytes_layer * layers / copy_rate * 1e6 / p);
            if (mode < 2)
            {
                double worst, top;
                compare(worst, top);
                printf("  max |diff| %.3g of max |y| %.3g%s", worst, top, worst <= 1e-4 * top ? "" : "  MISMATCH");
            }

            printf("\n");
            if (mode < 2 && round == 1) print_breakdown("copy issue");
        }

        for (int ll = 0; ll < 3; ll++)
        {
            CHECK(cudaMemset(t.out[3], 0, C * 4));
            unsigned* epoch_of = ll == 2 ? &lls_epoch : ll ? &ll_epoch : &region_epoch;
            void* args[] = {&t, &region_counter, epoch_of};
            void* kernel = ll == 2 ? (void*)region_kernel<2> : ll ? (void*)region_kernel<1> : (void*)region_kernel<0>;
            double p = time_steps([&]() {
                CHECK(cudaLaunchCooperativeKernel(kernel, dim3(sms), dim3(THREADS), args, ll == 2 ? SMEM_REGIONS_LL : SMEM_REGIONS, stream));
                (*epoch_of)++;
            });
            double worst, top;
            compare(worst, top);
            // Other sums' order (x in registers, down split over warps): equal within fp32 rounding, not bit for bit.
            // The difference grows with depth (H200: 2.5e-7 of max |y| after 1 layer, 1.3e-6 after 4, 1.7e-3 after 24:
            // the random chain amplifies rounding), so the bound is per layer.
            double bound = 2e-6 * std::pow(1.4, layers - 1);
            printf("round %d  regions     %-8s %8.1f us a step  %6.2f us a layer  %5.1f %% of copy rate  max |diff| %.3g of max |y| %.3g%s\n",
                round, ll == 2 ? "LL block" : ll ? "LL" : "counter", p, p / layers, 100.0 * bytes_layer * layers / copy_rate * 1e6 / p, worst, top,
                worst <= bound * top ? "" : "  MISMATCH");
            if (round == 1) print_breakdown("to next");
        }
    }

    return 0;
}
