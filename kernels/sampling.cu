// Token sampling (IOps.Sample): one block per row of logits picks one id, so only ids cross the bus.
// The arithmetic repeats src/Radlads.Runtime/Generation/SamplingMath.cs bit for bit (read its summary first):
//   - tokens are ranked by a 64-bit key (logit descending, id ascending), a total order;
//   - weights are a portable float64 exp (fused multiply-adds and exact scalings only, with the _rn intrinsics so
//     that nothing is contracted differently from the C# code) turned into integer units ⌊w · 2^shift⌋;
//   - top-k, top-p and the draw are each "the smallest key whose prefix (keys ≤ it) reaches a target measure"
//     (a count, or a sum of units), found by a radix select over the key's digits. Every histogram bin is a sum
//     of integers, so the order in which threads add to it cannot change anything: the CPU's quickselect and this
//     select give the same key.
// Result per row in ids[row]: the id, or an error code the host turns into a RadladsException:
//   -1 every logit is -Infinity; -2 - 2·id a NaN at id (the lowest bad id); -3 - 2·id +Infinity at id.
// A row whose temperature is negative is skipped (nothing written): a recorded decode step that ends with this
// kernel, replayed when the caller wants the logits rather than a token.
#include "common.cuh"

typedef unsigned long long u64;

// IOps.SampleRow as the host lays it out (24 bytes, the double 8-aligned).
struct SampleRow
{
    float temperature;
    int top_k;
    float top_p;
    float min_p;
    double uniform;
};

#define SAMPLE_THREADS 512
#define SAMPLE_WARPS (SAMPLE_THREADS / 32)
#define UNITS_MASK 0x3fffffffffffffffULL
#define MINP_FAIL 0x8000000000000000ULL

__device__ __forceinline__ u64 sample_key(float logit, int id)
{
    u32 bits = __float_as_uint(logit == 0.f ? 0.f : logit); // -0 and +0 tie
    u32 ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return ((u64)(~ascending) << 32) | (u32)id;
}

// SamplingMath.Exp: e^x for x <= 0, the same double on every IEEE device.
__device__ __forceinline__ double portable_exp(double x)
{
    if (!(x >= -700.0)) return 0.0;
    if (x > 0.0) x = 0.0;
    double t = __dmul_rn(x, 1.4426950408889634);
    double k = floor(t);
    if (t > __dadd_rn(k, 0.5)) k = __dadd_rn(k, 1.0);
    double r = fma(-k, 6.93147180369123816490e-01, x);
    r = fma(-k, 1.90821492927058770002e-10, r);
    double p = 1.6059043836821613e-10;
    p = fma(p, r, 2.08767569878681e-09);
    p = fma(p, r, 2.505210838544172e-08);
    p = fma(p, r, 2.755731922398589e-07);
    p = fma(p, r, 2.7557319223985893e-06);
    p = fma(p, r, 2.48015873015873e-05);
    p = fma(p, r, 0.0001984126984126984);
    p = fma(p, r, 0.001388888888888889);
    p = fma(p, r, 0.008333333333333333);
    p = fma(p, r, 0.041666666666666664);
    p = fma(p, r, 0.16666666666666666);
    p = fma(p, r, 0.5);
    p = fma(p, r, 1.0);
    p = fma(p, r, 1.0);
    return __dmul_rn(p, __longlong_as_double((long long)((int)k + 1023) << 52));
}

__device__ __forceinline__ double pow2(int e) { return __longlong_as_double((long long)(e + 1023) << 52); }

__device__ __forceinline__ u64 shfl_up_u64(u64 v, int d)
{
    u32 lo = __shfl_up_sync(0xffffffffu, (u32)v, d);
    u32 hi = __shfl_up_sync(0xffffffffu, (u32)(v >> 32), d);
    return ((u64)hi << 32) | lo;
}

__device__ __forceinline__ u64 shfl_u64(u64 v, int src)
{
    u32 lo = __shfl_sync(0xffffffffu, (u32)v, src);
    u32 hi = __shfl_sync(0xffffffffu, (u32)(v >> 32), src);
    return ((u64)hi << 32) | lo;
}

// Shared state of one row's block.
struct SampleShared
{
    u64 hist[SAMPLE_WARPS][256]; // a histogram per warp: atomics contend within a warp only
    u64 total[256];              // bins summed over the warps (exact integer sums)
    u64 red_u64[SAMPLE_WARPS];
    float red_f[SAMPLE_WARPS];
    int red_i[SAMPLE_WARPS];
    u64 prefix;
    u64 before;
};

// Measures of a select: 0 = count of finite logits, 1 = units (0 beyond top-k), 2 = units of tokens kept for the draw.
#define MEASURE_COUNT 0
#define MEASURE_UNITS 1
#define MEASURE_DRAW 2

// The start of a radix-select pass: every warp's histogram cleared.
__device__ __forceinline__ void radix_clear(SampleShared& s)
{
    for (int i = threadIdx.x; i < SAMPLE_WARPS * 256; i += blockDim.x) (&s.hist[0][0])[i] = 0;
    __syncthreads();
}

// The end of a radix-select pass, once the block has counted the digit at `shift` of its keys that match prefix under
// mask into s.hist: the digit at which the running count (from `before`) first reaches target is appended to prefix,
// before becomes the count below that digit, and mask takes the digit's byte. Every thread of the block calls it.
__device__ void radix_digit(int shift, u64 target, u64& prefix, u64& mask, u64& before, SampleShared& s)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    for (int b = threadIdx.x; b < 256; b += blockDim.x)
    {
        u64 t = 0;
        for (int w = 0; w < SAMPLE_WARPS; w++) t += s.hist[w][b];
        s.total[b] = t;
    }
    __syncthreads();
    if (warp == 0)
    {
        // Lane owns bins [8·lane, 8·lane + 8): an inclusive scan of the lane sums finds the crossing lane.
        u64 own = 0;
        for (int j = 0; j < 8; j++) own += s.total[lane * 8 + j];
        u64 incl = own;
        for (int d = 1; d < 32; d <<= 1)
        {
            u64 v = shfl_up_u64(incl, d);
            if (lane >= d) incl += v;
        }
        unsigned crossing = __ballot_sync(0xffffffffu, before + incl >= target);
        // Always some lane: the target is at most the measure of the keys still matching the prefix.
        int at = crossing ? __ffs(crossing) - 1 : 31;
        u64 excl = shfl_u64(incl - own, at);
        if (lane == at)
        {
            u64 cum = before + excl;
            int digit = lane * 8 + 7;
            for (int j = 0; j < 8; j++)
            {
                u64 t = s.total[lane * 8 + j];
                if (cum + t >= target)
                {
                    digit = lane * 8 + j;
                    break;
                }
                cum += t;
            }
            s.prefix = prefix | ((u64)digit << shift);
            s.before = cum;
        }
    }
    __syncthreads();
    prefix = s.prefix;
    before = s.before;
    mask |= (u64)255 << shift;
    __syncthreads();
}

// The smallest key whose prefix measure reaches target (target >= 1 and at most the whole row's measure).
// Digits of 8 bits from the top; the id part of a key is below 2^24, so its top byte is skipped.
__device__ u64 select_key(const float* logits, const u64* units, int n, int measure, u64 bound, u64 target, SampleShared& s)
{
    const int shifts[7] = {56, 48, 40, 32, 16, 8, 0};
    int warp = threadIdx.x >> 5;
    u64 prefix = 0, mask = 0, before = 0;
    for (int pass = 0; pass < 7; pass++)
    {
        int shift = shifts[pass];
        radix_clear(s);
        for (int id = threadIdx.x; id < n; id += blockDim.x)
        {
            float l = logits[id];
            u64 key = sample_key(l, id);
            if ((key & mask) != prefix) continue;
            u64 m;
            if (measure == MEASURE_COUNT)
            {
                m = l != neg_infinity() ? 1 : 0;
            }
            else
            {
                u64 u = units[id];
                m = (measure == MEASURE_DRAW && ((u & MINP_FAIL) || key > bound)) ? 0 : (u & UNITS_MASK);
            }

            if (m) atomicAdd(&s.hist[warp][(key >> shift) & 255], m);
        }
        radix_digit(shift, target, prefix, mask, before, s);
    }
    return prefix;
}

__device__ u64 block_sum_u64(u64 v, SampleShared& s)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += shfl_u64(v, lane ^ o);
    __syncthreads();
    if (lane == 0) s.red_u64[warp] = v;
    __syncthreads();
    u64 t = 0;
    for (int w = 0; w < SAMPLE_WARPS; w++) t += s.red_u64[w];
    __syncthreads();
    return t;
}

__device__ float block_max_f32(float v, SampleShared& s)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) s.red_f[warp] = v;
    __syncthreads();
    float t = s.red_f[0];
    for (int w = 1; w < SAMPLE_WARPS; w++) t = fmaxf(t, s.red_f[w]);
    __syncthreads();
    return t;
}

__device__ int block_min_i32(int v, SampleShared& s)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) s.red_i[warp] = v;
    __syncthreads();
    int t = s.red_i[0];
    for (int w = 1; w < SAMPLE_WARPS; w++) t = min(t, s.red_i[w]);
    __syncthreads();
    return t;
}

// Everything after the checks, over the whole row: greedy, then top-k (radix select), units, top-p, min-p, the draw.
// top = the largest finite logit, count = the number of finite logits (>= 1). Used by sample_f32 and, when top-k is
// off or above SAMPLE_TOPK_BOUND, by sample_finish_f32.
__device__ void sample_row_exhaustive(const float* logits, int n, const SampleRow& p, int shift, u64* units, int* ids,
    int row, float top, u64 count, SampleShared& s)
{
    const int big = 0x7fffffff;
    if (p.temperature == 0.f)
    {
        // Greedy: the lowest id holding the largest logit (-0 == +0).
        int first = big;
        for (int id = threadIdx.x; id < n; id += blockDim.x)
        {
            if (logits[id] == top) first = min(first, id);
        }
        first = block_min_i32(first, s);
        if (threadIdx.x == 0) ids[row] = first;
        return;
    }

    // Top-k: the k-th key among the finite logits bounds the candidates.
    u64 top_k_key = ~0ULL;
    if (p.top_k > 0 && (u64)p.top_k < count) top_k_key = select_key(logits, units, n, MEASURE_COUNT, 0, (u64)p.top_k, s);

    // Units of the candidates (0 for the rest, which then never change a prefix measure), flagged when min-p drops them.
    const double inverse_t = 1.0 / (double)p.temperature;
    const double scale = pow2(shift);
    const double min_p = (double)p.min_p;
    u64 total = 0;
    for (int id = threadIdx.x; id < n; id += blockDim.x)
    {
        float l = logits[id];
        u64 u = 0;
        if (l != neg_infinity() && sample_key(l, id) <= top_k_key)
        {
            double w = portable_exp(__dmul_rn(__dsub_rn((double)l, (double)top), inverse_t));
            u = (u64)__dmul_rn(w, scale);
            total += u;
            if (min_p > 0.0 && w < min_p) u |= MINP_FAIL;
        }
        units[id] = u;
    }
    __syncthreads(); // units written by other threads are read by the selects below (global memory, same block)
    total = block_sum_u64(total, s);

    // Top-p: the smallest prefix holding ceil(P · total) units.
    u64 nucleus_key = ~0ULL;
    if (p.top_p < 1.f)
    {
        double target = ceil(__dmul_rn((double)p.top_p, (double)total));
        u64 t = (u64)target;
        if (t > total) t = total;
        nucleus_key = select_key(logits, units, n, MEASURE_UNITS, 0, t, s);
    }

    // The draw: units of the kept tokens (in the nucleus, not dropped by min-p), then r = floor(u · kept).
    u64 kept = 0;
    for (int id = threadIdx.x; id < n; id += blockDim.x)
    {
        u64 u = units[id];
        if (!(u & MINP_FAIL) && sample_key(logits[id], id) <= nucleus_key) kept += u & UNITS_MASK;
    }
    kept = block_sum_u64(kept, s);
    u64 r = (u64)__dmul_rn(p.uniform, (double)kept);
    if (r >= kept) r = kept - 1;
    u64 chosen = select_key(logits, units, n, MEASURE_DRAW, nucleus_key, r + 1, s);
    if (threadIdx.x == 0) ids[row] = (int)(u32)chosen;
}

// grid = rows, block = SAMPLE_THREADS. logits [rows, stride] (the first n of each row are sampled); units: scratch
// of rows · n u64; shift = SamplingMath.UnitShift(n).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_f32(const float* __restrict__ all_logits, i64 stride, int n,
    const SampleRow* __restrict__ params, int shift, u64* __restrict__ all_units, int* __restrict__ ids)
{
    pdl_begin();
    __shared__ SampleShared s;
    const int row = blockIdx.x;
    const float* logits = all_logits + (i64)row * stride;
    u64* units = all_units + (i64)row * n;
    const SampleRow p = params[row];
    const int big = 0x7fffffff;
    if (p.temperature < 0.f) return; // a recorded step replayed without sampling (uniform across the block)

    // Check and find the largest logit: NaN and +Infinity are errors (lowest id), -Infinity bans a token.
    float top = neg_infinity();
    int bad = big, finite = 0;
    for (int id = threadIdx.x; id < n; id += blockDim.x)
    {
        float l = logits[id];
        if (isnan(l) || l == -neg_infinity())
        {
            bad = min(bad, id);
        }
        else if (l != neg_infinity())
        {
            top = fmaxf(top, l);
            finite++;
        }
    }
    bad = block_min_i32(bad, s);
    top = block_max_f32(top, s);
    u64 count = block_sum_u64((u64)finite, s);
    if (bad != big)
    {
        if (threadIdx.x == 0) ids[row] = isnan(logits[bad]) ? -2 - 2 * bad : -3 - 2 * bad;
        return;
    }
    if (count == 0)
    {
        if (threadIdx.x == 0) ids[row] = -1;
        return;
    }

    sample_row_exhaustive(logits, n, p, shift, units, ids, row, top, count, s);
}

// ---- The multi-block path: sample_scan_f32 (many blocks per row) then sample_finish_f32 (one block per row). ----
// Launch shapes depend on n only (never on a row's options, which a recorded decode step reads from device memory).
// Scan: block b of row r reads ids [b·SAMPLE_CHUNK, (b+1)·SAMPLE_CHUNK) and writes its check results (largest finite
// logit, lowest NaN/+Inf id, count of finite logits) and, when the row's effective top-k k (1 for greedy) is at most
// SAMPLE_TOPK_BOUND, its min(k, chunk) smallest keys (banned and missing ids pad as ~0) to a candidate slab of
// SAMPLE_TOPK_BOUND keys. Every member of the row's top k is among its block's k smallest keys, so the candidates
// hold the whole top k. Finish: merges the check results; greedy = the smallest candidate key; top-k = a radix select
// of the k-th smallest candidate, then the exact maths (units, top-p, min-p, draw) on the k survivors sorted by key;
// without a usable top-k it runs the whole-row select (sample_row_exhaustive), as sample_f32 does.
#define SAMPLE_CHUNK 1024
#define SAMPLE_TOPK_BOUND 1024
#define SCAN_THREADS 512

struct ScanStats
{
    float top;
    int bad;
    int count;
    int pad;
};

// The top-k the multi-block path serves for this row: 1 for greedy, k for 1 <= k <= bound, else 0 (whole-row path).
__device__ __forceinline__ int effective_top_k(const SampleRow& p)
{
    if (p.temperature == 0.f) return 1;
    return p.top_k > 0 && p.top_k <= SAMPLE_TOPK_BOUND ? p.top_k : 0;
}

// Ascending bitonic sort of the first `size` keys in shared memory (size a power of two ≤ SAMPLE_CHUNK) by the whole
// block (blockDim.x ≥ size / 2; every thread reaches every barrier). The finish sorts only the power of two that holds
// its survivors (the slots after them hold ~0, the largest key, so they stay last): 15 barrier stages for top-k 20
// instead of the 55 of a whole chunk.
__device__ void bitonic_sort_keys(u64* keys, int size)
{
    for (int width = 2; width <= size; width <<= 1)
    {
        for (int stride = width >> 1; stride > 0; stride >>= 1)
        {
            __syncthreads();
            int t = threadIdx.x;
            if (t < size / 2)
            {
                int i = 2 * t - (t & (stride - 1));
                int j = i + stride;
                bool ascending = (i & width) == 0;
                u64 a = keys[i], b = keys[j];
                if ((a > b) == ascending)
                {
                    keys[i] = b;
                    keys[j] = a;
                }
            }
        }
    }
    __syncthreads();
}

__device__ __forceinline__ u64 min_u64(u64 a, u64 b) { return a < b ? a : b; }
__device__ __forceinline__ u64 max_u64(u64 a, u64 b) { return a < b ? b : a; }

// ---- Top-k up to SAMPLE_WARP_TOPK by warp sorting networks: a warp holds 32 keys, one a lane, and keeps a sorted list
// of the 32 smallest it has seen in registers. The chunk's full bitonic sort in shared memory (55 barrier stages) and
// the finish's 7-pass radix select over every candidate were ~12 and ~22 µs of a decode step (H200 trace, 2026-11-28);
// these take shuffles and a log2(warps)-level tree. The kept keys are the same set in the same (ascending) order.
#define SAMPLE_WARP_TOPK 32

__device__ __forceinline__ u64 shfl_xor_u64(u64 v, int o)
{
    u32 lo = __shfl_xor_sync(0xffffffffu, (u32)v, o);
    u32 hi = __shfl_xor_sync(0xffffffffu, (u32)(v >> 32), o);
    return ((u64)hi << 32) | lo;
}

// The warp's 32 keys (one a lane) sorted ascending over the lanes: a bitonic network, 15 compare-exchange steps.
__device__ __forceinline__ u64 warp_sort32(u64 v)
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int width = 2; width <= 32; width <<= 1)
    {
#pragma unroll
        for (int stride = width >> 1; stride > 0; stride >>= 1)
        {
            u64 other = shfl_xor_u64(v, stride);
            bool ascending = (lane & width) == 0;
            bool low = (lane & stride) == 0;
            v = low == ascending ? min_u64(v, other) : max_u64(v, other);
        }
    }
    return v;
}

// The 32 smallest of two ascending lists a and b (one key a lane), ascending: min(a, b reversed) is a bitonic sequence
// holding them (the half-cleaner of a bitonic merge), then 5 merge steps.
__device__ __forceinline__ u64 warp_merge32(u64 a, u64 b)
{
    const int lane = threadIdx.x & 31;
    u64 v = min_u64(a, shfl_u64(b, 31 - lane));
#pragma unroll
    for (int stride = 16; stride > 0; stride >>= 1)
    {
        u64 other = shfl_xor_u64(v, stride);
        v = (lane & stride) == 0 ? min_u64(v, other) : max_u64(v, other);
    }
    return v;
}

// Every warp's ascending list m merged into warp 0's: a tree of log2(WARPS) levels through lists (WARPS · 32 keys of
// shared memory). Returns the 32 smallest keys of the block, ascending, in warp 0 (other warps: partial lists). Every
// thread of the block calls it; WARPS is a power of two.
template <int WARPS>
__device__ __forceinline__ u64 block_merge32(u64 m, u64* lists)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    lists[warp * 32 + lane] = m;
    __syncthreads();
#pragma unroll
    for (int half = WARPS / 2; half > 0; half >>= 1)
    {
        // Level half: warps below half read the lists of [half, 2·half) (written a level earlier) and write their own.
        if (warp < half)
        {
            m = warp_merge32(m, lists[(warp + half) * 32 + lane]);
            lists[warp * 32 + lane] = m;
        }
        __syncthreads();
    }
    return m;
}

// grid = (blocks = ceil(n / SAMPLE_CHUNK), rows), block = SCAN_THREADS. stats [rows, blocks]; candidates
// [rows, blocks, SAMPLE_TOPK_BOUND] keys.
extern "C" __global__ void __launch_bounds__(SCAN_THREADS) sample_scan_f32(const float* __restrict__ all_logits, i64 stride,
    int n, const SampleRow* __restrict__ params, ScanStats* __restrict__ stats, u64* __restrict__ candidates)
{
    pdl_begin();
    __shared__ u64 keys[SAMPLE_CHUNK];
    __shared__ float red_f[SCAN_THREADS / 32];
    __shared__ int red_i[SCAN_THREADS / 32];
    __shared__ int red_c[SCAN_THREADS / 32];
    __shared__ u64 red_k[SCAN_THREADS / 32];
    const int row = blockIdx.y, block = blockIdx.x, blocks = gridDim.x;
    const SampleRow p = params[row];
    if (p.temperature < 0.f) return;
    const float* logits = all_logits + (i64)row * stride;
    const int k = effective_top_k(p);
    const int big = 0x7fffffff;
    float top = neg_infinity();
    int bad = big, finite = 0;
    u64 least = ~0ULL;
    // Thread t holds the keys of ids t + r · SCAN_THREADS of the chunk (a warp: 32 consecutive ids per r).
    static_assert(SAMPLE_CHUNK % SCAN_THREADS == 0, "whole keys per thread");
    u64 mine[SAMPLE_CHUNK / SCAN_THREADS];
#pragma unroll
    for (int r = 0; r < SAMPLE_CHUNK / SCAN_THREADS; r++)
    {
        int i = threadIdx.x + r * SCAN_THREADS;
        int id = block * SAMPLE_CHUNK + i;
        u64 key = ~0ULL;
        if (id < n)
        {
            float l = logits[id];
            if (isnan(l) || l == -neg_infinity())
            {
                bad = min(bad, id);
            }
            else if (l != neg_infinity())
            {
                top = fmaxf(top, l);
                finite++;
                key = sample_key(l, id);
            }
        }
        mine[r] = key;
        least = min_u64(least, key);
    }

    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
    {
        top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
        bad = min(bad, __shfl_xor_sync(0xffffffffu, bad, o));
        finite += __shfl_xor_sync(0xffffffffu, finite, o);
        least = min_u64(least, shfl_u64(least, lane ^ o));
    }
    if (lane == 0)
    {
        red_f[warp] = top;
        red_i[warp] = bad;
        red_c[warp] = finite;
        red_k[warp] = least;
    }
    __syncthreads();
    u64* out = candidates + ((i64)row * blocks + block) * SAMPLE_TOPK_BOUND;
    if (threadIdx.x == 0)
    {
        for (int w = 1; w < SCAN_THREADS / 32; w++)
        {
            red_f[0] = fmaxf(red_f[0], red_f[w]);
            red_i[0] = min(red_i[0], red_i[w]);
            red_c[0] += red_c[w];
            red_k[0] = min_u64(red_k[0], red_k[w]);
        }
        ScanStats st;
        st.top = red_f[0];
        st.bad = red_i[0];
        st.count = red_c[0];
        st.pad = 0;
        stats[(i64)row * blocks + block] = st;
        if (k == 1) out[0] = red_k[0];
    }
    if (k <= 1) return; // greedy / k = 1 wrote its smallest key; k = 0 needs no candidates

    if (k <= SAMPLE_WARP_TOPK)
    {
        // Each warp's 32 smallest of its keys by shuffles, then the block's 32 smallest in warp 0: the first k of the
        // sorted chunk. keys serves as the tree's lists (SCAN_THREADS keys ≤ SAMPLE_CHUNK).
        u64 m = warp_sort32(mine[0]);
#pragma unroll
        for (int r = 1; r < SAMPLE_CHUNK / SCAN_THREADS; r++) m = warp_merge32(m, warp_sort32(mine[r]));
        m = block_merge32<SCAN_THREADS / 32>(m, keys);
        if (warp == 0 && lane < k) out[lane] = m;
        return;
    }

#pragma unroll
    for (int r = 0; r < SAMPLE_CHUNK / SCAN_THREADS; r++) keys[threadIdx.x + r * SCAN_THREADS] = mine[r];
    bitonic_sort_keys(keys, SAMPLE_CHUNK);
    const int kept = min(k, SAMPLE_CHUNK);
    for (int i = threadIdx.x; i < kept; i += SCAN_THREADS) out[i] = keys[i];
}

// Counts key's digit at `shift` in its warp's histogram when key matches prefix under mask (the sentinel ~0 never
// counts). The candidates share their high bytes (top-k logits are close), so most of a warp's lanes hit one bin: the
// lanes of a bin add their count once, through the lowest of them (32 serialised atomics become 1). Every lane of
// the warp calls it (__match_any_sync).
__device__ __forceinline__ void count_candidate(u64 key, u64 mask, u64 prefix, int shift, SampleShared& s)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    bool counted = key != ~0ULL && (key & mask) == prefix;
    int bin = counted ? (int)((key >> shift) & 255) : -1;
    unsigned peers = __match_any_sync(0xffffffffu, bin);
    if (counted && __ffs(peers) - 1 == lane) atomicAdd(&s.hist[warp][bin], (u64)__popc(peers));
}

// The smallest candidate key whose count of non-sentinel keys <= it reaches target (1 <= target <= their count).
// The candidates of block b are keys[b · SAMPLE_TOPK_BOUND + [0, per_block)].
// Up to SELECT_CACHED · blockDim.x candidates (top-k ≤ 27 over the 149 chunks of a 151,936 vocabulary) are read from
// global memory once, into registers, instead of once a pass.
#define SELECT_CACHED 8
__device__ u64 select_candidate(const u64* keys, int blocks, int per_block, u64 target, SampleShared& s)
{
    const int shifts[7] = {56, 48, 40, 32, 16, 8, 0};
    u64 prefix = 0, mask = 0, before = 0;
    const int total = blocks * per_block;
    const bool cached = total <= SELECT_CACHED * (int)blockDim.x;
    u64 cache[SELECT_CACHED];
#pragma unroll
    for (int c = 0; c < SELECT_CACHED; c++)
    {
        int i = threadIdx.x + c * (int)blockDim.x;
        cache[c] = cached && i < total ? keys[(i64)(i / per_block) * SAMPLE_TOPK_BOUND + i % per_block] : ~0ULL;
    }
    for (int pass = 0; pass < 7; pass++)
    {
        int shift = shifts[pass];
        radix_clear(s);
        if (cached)
        {
#pragma unroll
            for (int c = 0; c < SELECT_CACHED; c++) count_candidate(cache[c], mask, prefix, shift, s);
        }
        else
        {
            // One trip count for the whole block (lanes past the end count the sentinel), as count_candidate needs.
            for (int base = 0; base < total; base += blockDim.x)
            {
                int i = base + threadIdx.x;
                count_candidate(i < total ? keys[(i64)(i / per_block) * SAMPLE_TOPK_BOUND + i % per_block] : ~0ULL, mask, prefix, shift, s);
            }
        }
        radix_digit(shift, target, prefix, mask, before, s);
    }
    return prefix;
}

// The scan blocks' checks merged by the block with one barrier: the lowest bad id, the largest finite logit and the
// count of finite logits, each the same whatever the order (a minimum, a maximum, an integer sum).
struct StatsShared
{
    float top[SAMPLE_WARPS];
    int bad[SAMPLE_WARPS];
    u64 count[SAMPLE_WARPS];
};

__device__ __forceinline__ void block_stats(float& top, int& bad, u64& count, StatsShared& s)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
    {
        top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
        bad = min(bad, __shfl_xor_sync(0xffffffffu, bad, o));
        count += shfl_xor_u64(count, o);
    }
    if (lane == 0)
    {
        s.top[warp] = top;
        s.bad[warp] = bad;
        s.count[warp] = count;
    }
    __syncthreads();
    top = s.top[0];
    bad = s.bad[0];
    count = s.count[0];
    for (int w = 1; w < SAMPLE_WARPS; w++)
    {
        top = fmaxf(top, s.top[w]);
        bad = min(bad, s.bad[w]);
        count += s.count[w];
    }
}

// An inclusive prefix sum over the warp's lanes.
__device__ __forceinline__ u64 warp_scan_u64(u64 v)
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int d = 1; d < 32; d <<= 1)
    {
        u64 o = shfl_up_u64(v, d);
        if (lane >= d) v += o;
    }
    return v;
}

// sample_finish_f32 for 2 ≤ k ≤ SAMPLE_WARP_TOPK (after the checks): each block's candidates are its first k keys,
// ascending, so every warp merges the lists of blocks warp, warp + SAMPLE_WARPS, … and the tree leaves the row's 32
// smallest candidates in warp 0, lane i holding the i-th. The first min(k, count) are the survivors (every finite
// candidate when count < k), in the order the radix path sorts them; warp 0 then does the exact maths of that path's
// thread 0 with one survivor a lane: the same integer sums by scans, the same comparisons by ballots.
// lists: SAMPLE_WARPS · 32 keys of shared memory. Every thread calls it.
__device__ void sample_finish_warp(const float* logits, const SampleRow& p, int shift, int* ids, int row, float top,
    u64 count, int k, const u64* candidates, int blocks, u64* lists)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    u64 m = ~0ULL;
#pragma unroll 4
    for (int b = warp; b < blocks; b += SAMPLE_WARPS)
        m = warp_merge32(m, lane < k ? candidates[(i64)b * SAMPLE_TOPK_BOUND + lane] : ~0ULL);
    m = block_merge32<SAMPLE_WARPS>(m, lists);
    if (warp != 0) return;

    const int survivors = (int)((u64)k < count ? (u64)k : count);
    const bool in = lane < survivors;
    u64 u = 0;
    if (in)
    {
        float l = logits[(u32)m];
        double w = portable_exp(__dmul_rn(__dsub_rn((double)l, (double)top), 1.0 / (double)p.temperature));
        u = (u64)__dmul_rn(w, pow2(shift));
        if ((double)p.min_p > 0.0 && w < (double)p.min_p) u |= MINP_FAIL;
    }
    const u64 masked = u & UNITS_MASK;
    const u64 cum = warp_scan_u64(masked);
    const u64 total = shfl_u64(cum, 31);
    int nucleus = survivors - 1; // the last survivor in the nucleus
    if (p.top_p < 1.f)
    {
        u64 t = (u64)ceil(__dmul_rn((double)p.top_p, (double)total));
        if (t > total) t = total;
        unsigned reached = __ballot_sync(0xffffffffu, in && cum >= t);
        if (reached) nucleus = __ffs(reached) - 1;
    }
    const u64 keep = lane <= nucleus && !(u & MINP_FAIL) ? u : 0;
    const u64 drawn = warp_scan_u64(keep);
    const u64 kept = shfl_u64(drawn, 31);
    u64 r = (u64)__dmul_rn(p.uniform, (double)kept);
    if (r >= kept) r = kept - 1;
    unsigned hit = __ballot_sync(0xffffffffu, lane <= nucleus && drawn >= r + 1);
    const int chosen = hit ? __ffs(hit) - 1 : nucleus;
    const u64 key = shfl_u64(m, chosen);
    if (lane == 0) ids[row] = (int)(u32)key;
}

// grid = rows, block = SAMPLE_THREADS; blocks = the scan's grid width. units: rows · n u64 scratch for the whole-row path.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_finish_f32(const float* __restrict__ all_logits, i64 stride,
    int n, const SampleRow* __restrict__ params, int shift, u64* __restrict__ all_units, int* __restrict__ ids,
    const ScanStats* __restrict__ all_stats, const u64* __restrict__ all_candidates, int blocks)
{
    pdl_begin();
    __shared__ SampleShared s;
    __shared__ u64 sorted[SAMPLE_TOPK_BOUND];
    __shared__ int survivors;
    __shared__ StatsShared merged;
    const int row = blockIdx.x;
    const SampleRow p = params[row];
    if (p.temperature < 0.f) return;
    const float* logits = all_logits + (i64)row * stride;
    const ScanStats* stats = all_stats + (i64)row * blocks;
    const u64* candidates = all_candidates + (i64)row * blocks * SAMPLE_TOPK_BOUND;
    const int big = 0x7fffffff;

    float top = neg_infinity();
    int bad = big;
    u64 count = 0;
    for (int b = threadIdx.x; b < blocks; b += blockDim.x)
    {
        ScanStats st = stats[b];
        top = fmaxf(top, st.top);
        bad = min(bad, st.bad);
        count += (u64)st.count;
    }
    block_stats(top, bad, count, merged);
    if (bad != big)
    {
        if (threadIdx.x == 0) ids[row] = isnan(logits[bad]) ? -2 - 2 * bad : -3 - 2 * bad;
        return;
    }
    if (count == 0)
    {
        if (threadIdx.x == 0) ids[row] = -1;
        return;
    }

    const int k = effective_top_k(p);
    if (k == 0)
    {
        sample_row_exhaustive(logits, n, p, shift, all_units + (i64)row * n, ids, row, top, count, s);
        return;
    }

    if (k == 1)
    {
        // Greedy or top-k 1: the smallest key of the row (largest logit, then the lowest id) is every block's first.
        u64 least = ~0ULL;
        for (int b = threadIdx.x; b < blocks; b += blockDim.x) least = min_u64(least, candidates[(i64)b * SAMPLE_TOPK_BOUND]);
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        for (int o = 16; o > 0; o >>= 1) least = min_u64(least, shfl_u64(least, lane ^ o));
        if (lane == 0) s.red_u64[warp] = least;
        __syncthreads();
        if (threadIdx.x == 0)
        {
            for (int w = 1; w < SAMPLE_WARPS; w++) s.red_u64[0] = min_u64(s.red_u64[0], s.red_u64[w]);
            ids[row] = (int)(u32)s.red_u64[0];
        }
        return;
    }

    if (k <= SAMPLE_WARP_TOPK)
    {
        sample_finish_warp(logits, p, shift, ids, row, top, count, k, candidates, blocks, sorted);
        return;
    }

    // The k-th smallest candidate (or every finite one when k >= count): exactly min(k, count) survivors, gathered
    // by block into slab order (SAMPLE_TOPK_BOUND keys per block, the first min(k, chunk) used) and sorted.
    const int per_block = min(k, SAMPLE_CHUNK);
    const u64 wanted = (u64)k < count ? (u64)k : count;
    if (threadIdx.x == 0) survivors = 0;
    for (int i = threadIdx.x; i < SAMPLE_TOPK_BOUND; i += blockDim.x) sorted[i] = ~0ULL;
    u64 bound = ~0ULL - 1; // every finite candidate
    if ((u64)k < count) bound = select_candidate(candidates, blocks, per_block, wanted, s);
    __syncthreads();
    for (int i = threadIdx.x; i < blocks * per_block; i += blockDim.x)
    {
        u64 key = candidates[(i64)(i / per_block) * SAMPLE_TOPK_BOUND + i % per_block];
        if (key != ~0ULL && key <= bound)
        {
            int at = atomicAdd(&survivors, 1);
            sorted[at] = key;
        }
    }
    __syncthreads();
    // Sort the m ≤ SAMPLE_TOPK_BOUND = SAMPLE_CHUNK survivors (in slots [0, m), ~0 after them): the smallest power of two
    // that holds them, with up to SAMPLE_CHUNK / 2 = SAMPLE_THREADS threads.
    const int m = (int)wanted;
    int size = 2;
    while (size < m) size <<= 1;
    bitonic_sort_keys(sorted, size);

    // Units of the survivors in key order (the hist area is free now), flagged when min-p drops them.
    u64* units = &s.hist[0][0];
    const double inverse_t = 1.0 / (double)p.temperature;
    const double scale = pow2(shift);
    const double min_p = (double)p.min_p;
    for (int i = threadIdx.x; i < m; i += blockDim.x)
    {
        u64 key = sorted[i];
        float l = logits[(u32)key];
        double w = portable_exp(__dmul_rn(__dsub_rn((double)l, (double)top), inverse_t));
        u64 u = (u64)__dmul_rn(w, scale);
        if (min_p > 0.0 && w < min_p) u |= MINP_FAIL;
        units[i] = u;
    }
    __syncthreads();
    if (threadIdx.x != 0) return;

    // Integer sums in key order: the prefix measures of the whole-row selects, walked directly.
    u64 total = 0;
    for (int i = 0; i < m; i++) total += units[i] & UNITS_MASK;
    int nucleus = m - 1; // index of the last key in the nucleus
    if (p.top_p < 1.f)
    {
        double target = ceil(__dmul_rn((double)p.top_p, (double)total));
        u64 t = (u64)target;
        if (t > total) t = total;
        u64 cum = 0;
        for (int i = 0; i < m; i++)
        {
            cum += units[i] & UNITS_MASK;
            if (cum >= t)
            {
                nucleus = i;
                break;
            }
        }
    }
    u64 kept = 0;
    for (int i = 0; i <= nucleus; i++)
        if (!(units[i] & MINP_FAIL)) kept += units[i];
    u64 r = (u64)__dmul_rn(p.uniform, (double)kept);
    if (r >= kept) r = kept - 1;
    u64 cum = 0;
    int chosen = nucleus;
    for (int i = 0; i <= nucleus; i++)
    {
        if (!(units[i] & MINP_FAIL)) cum += units[i];
        if (cum >= r + 1)
        {
            chosen = i;
            break;
        }
    }
    ids[row] = (int)(u32)sorted[chosen];
}
