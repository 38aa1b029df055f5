// wkv7_chunk_prep_f32_n* + wkv7_chunk_scan_f32_n* (kernels/wkv7_chunked.cu) under emu.h (see run-wkv7-chunked.sh)
// against the recurrence in float64: every y (NaN-poisoned first) and the final state, within 2e-5 of the outputs'
// scale (the chunked form sums in another order than the scan; the float64 scan is the definition). Shapes: head dims
// 64 and 128, T = 1, 15, 16, 17, 33 (a padded last chunk), several heads, two sequences in the grid's y and z, a
// non-zero state, and chunks whose decay leaves fp32's safe range (w down to 1e-3: the flagged token-by-token path);
// every shape with the scan in blocks of 32 state rows and of 16 (_r16). Argument: 32 or 16 for one of them only.
#include "emu.h"
#include <atomic>
#include <random>
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); } // common.cuh's grid barrier (unused here)
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
namespace c7 {
#include "wkv7_chunked.inc"
}
using c7::Wkv7cRecord; // WKV7C_RECORD names it
static std::mt19937 rng(11);
std::vector<float> uniform(size_t n, float lo, float hi) { std::uniform_real_distribution<float> d(lo, hi); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
int failures = 0, checks = 0;
double worst_ratio = 0; // the largest error seen, relative to its output's scale

void close(const std::vector<double>& e, const std::vector<float>& a, const char* what, int n, int t, bool tiny)
{
    checks++;
    double scale = 0, worst = 0;
    for (double x : e) scale = std::max(scale, std::fabs(x));
    size_t at = 0;
    for (size_t i = 0; i < e.size(); i++)
    {
        double d = std::isnan(a[i]) ? INFINITY : std::fabs(a[i] - e[i]);
        if (d > worst) { worst = d; at = i; }
    }
    worst_ratio = std::max(worst_ratio, worst / scale);
    if (worst > 2e-5 * scale)
    {
        printf("FAIL %s (n %d, T %d%s) element %zu: %.9g vs %.9g (worst %.3g of scale %.3g)\n", what, n, t, tiny ? ", small w" : "", at, a[at], e[at], worst, scale);
        failures++;
    }
}

template <int N, int R> void run(int seqs, int heads, int tokens, bool tiny)
{
    using G = c7::Wkv7cScan<N, R, R == 32 ? N / 8 : WKV7C_R16_WARPS(N)>;
    constexpr int L = WKV7C_L;
    size_t width = (size_t)heads * N, count = (size_t)seqs * tokens * width;
    auto rv = uniform(count, -1, 1), wv = uniform(count, 0.545f, 1), kv = uniform(count, -0.3f, 0.3f), vv = uniform(count, -1, 1);
    // Small decays in the second chunk only (γ over it ~1e-32 in half the channels): chunks 0 and 2 run the chunked
    // form, chunk 1 the flagged token-by-token path.
    if (tiny)
        for (int z = 0; z < seqs; z++)
            for (int t = L; t < std::min(2 * L, tokens); t++)
                for (size_t j = 0; j < width; j += 2) wv[((size_t)z * tokens + t) * width + j] = 1e-4f;
    // a = −κ, b = κ ⊙ iclr with κ a unit vector per (token, head), as the model feeds them.
    std::vector<float> av(count), bv(count);
    auto kap = uniform(count, -1, 1), iclr = uniform(count, 0, 1);
    for (size_t p = 0; p < count / N; p++)
    {
        double norm = 0;
        for (int j = 0; j < N; j++) norm += (double)kap[p * N + j] * kap[p * N + j];
        norm = std::sqrt(norm);
        for (int j = 0; j < N; j++) { av[p * N + j] = (float)(-kap[p * N + j] / norm); bv[p * N + j] = (float)(kap[p * N + j] / norm * iclr[p * N + j]); }
    }
    auto s0 = uniform((size_t)seqs * heads * N * N, -0.5f, 0.5f);

    // Reference: the recurrence in float64 (IOps.Wkv7's definition).
    std::vector<double> sd(s0.begin(), s0.end()), yd(count);
    for (int z = 0; z < seqs; z++)
        for (int t = 0; t < tokens; t++)
            for (int h = 0; h < heads; h++)
            {
                size_t o = ((size_t)z * tokens + t) * width + (size_t)h * N;
                double* S = sd.data() + ((size_t)z * heads + h) * N * N;
                for (int i = 0; i < N; i++)
                {
                    double sa = 0, y = 0;
                    for (int j = 0; j < N; j++) sa += av[o + j] * S[i * N + j];
                    for (int j = 0; j < N; j++)
                    {
                        S[i * N + j] = S[i * N + j] * wv[o + j] + (double)kv[o + j] * vv[o + i] + sa * bv[o + j];
                        y += S[i * N + j] * rv[o + j];
                    }
                    yd[o + i] = y;
                }
            }

    int chunks = (tokens + L - 1) / L;
    std::vector<float> records((size_t)seqs * heads * chunks * WKV7C_RECORD(N), NAN), st = s0, yc(count, NAN);
    // Grid (chunks, heads, sequences): emu.h launches x and y only, so sequences are launched one by one with z set.
    for (int z = 0; z < seqs; z++)
    {
        launch([&] {
            blockIdx.z = z;
            if constexpr (N == 64) c7::wkv7_chunk_prep_f32_n64(rv.data(), wv.data(), kv.data(), av.data(), bv.data(), tokens, heads, records.data());
            else c7::wkv7_chunk_prep_f32_n128(rv.data(), wv.data(), kv.data(), av.data(), bv.data(), tokens, heads, records.data());
        }, (unsigned)chunks, (unsigned)heads, WKV7C_PREP_THREADS, WKV7C_PREP_SHARED(N) * 4);
    }
    launch([&] {
        auto scan = N == 64 ? (R == 32 ? c7::wkv7_chunk_scan_f32_n64 : c7::wkv7_chunk_scan_f32_n64_r16)
                            : (R == 32 ? c7::wkv7_chunk_scan_f32_n128 : c7::wkv7_chunk_scan_f32_n128_r16);
        scan(rv.data(), wv.data(), kv.data(), vv.data(), av.data(), bv.data(), records.data(), st.data(), tokens, heads, yc.data());
    }, (unsigned)(heads * (N / R)), (unsigned)seqs, G::THREADS, WKV7C_SCAN_SHARED(G) * 4);
    int flagged = 0;
    for (size_t c = 0; c < (size_t)seqs * heads * chunks; c++) flagged += records[c * c7::Wkv7cRecord<N>::SIZE + c7::Wkv7cRecord<N>::FLAG] != 0.f;
    if (flagged != (tiny ? seqs * heads : 0))
    {
        printf("FAIL n %d R %d T %d: %d chunks flagged, expected %d\n", N, R, tokens, flagged, tiny ? seqs * heads : 0);
        failures++;
    }
    close(yd, yc, "chunked y", N, tokens, tiny);
    close(sd, st, "chunked state", N, tokens, tiny);
}

template <int R> void shapes()
{
    for (int t : {1, 15, 16, 17, 33}) run<64, R>(1, 2, t, false);
    for (int t : {1, 16, 17, 40}) run<128, R>(1, 2, t, false);
    run<64, R>(2, 3, 20, false);
    run<128, R>(2, 1, 33, false);
    run<64, R>(1, 2, 40, true);
    run<128, R>(1, 1, 33, true);
}

int main(int argc, char** argv)
{
    const int rows = argc > 1 ? atoi(argv[1]) : 0;
    if (rows != 16) shapes<32>();
    if (rows != 32) shapes<16>();
    printf("%d checks, %d failures; worst error %.3g of its output's scale\n", checks, failures, worst_ratio);
    return failures == 0 ? 0 : 1;
}
