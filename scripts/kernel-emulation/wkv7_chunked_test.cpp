// wkv7_chunk_prep_f32_n* + wkv7_chunk_scan_f32_n* (kernels/wkv7_chunked.cu) under emu.h (see run-wkv7-chunked.sh)
// against the recurrence in float64: every y (NaN-poisoned first) and the final state, within 2e-5 of the outputs'
// scale (the chunked form sums in another order than the scan; the float64 scan is the definition). Shapes: head dims
// 64 and 128, T = 1, 15, 16, 17, 33 (a padded last chunk), several heads, two sequences in the grid's y and z, a
// non-zero state, and chunks whose decay leaves fp32's safe range (w down to 1e-3: the flagged token-by-token path);
// every shape with the scan in blocks of 32 state rows and of 16 (_r16). Argument: 32 or 16 for one of them only, or
// keys for keys() below only (the prompt op's prep against the plain one, which always runs first).
#include "emu.h"
#include <atomic>
#include <cstring>
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

// wkv7_chunk_prep_keys_f32_n* (IOps.Rwkv7RopeKeysWkv7's prep) against the plain prep fed what the composed ops
// (rwkv7_decay_f32, add_sigmoid_f32, rope_expand_f32, rwkv7_keys_vres_f32) make of the same raw inputs, computed here
// with the kernels' fp32 operations (common.cuh's sigmoid_, rope_cos_sin, rope_pair, warp_sum's butterfly order): the
// records and vh must have the same bits. GQA groups, RoPE on or off, stock or balanced keys, layer 0 or later; a NaN
// decay pre-activation flags its chunk, which must then carry the composed r, w, k̃, a, b in the workspace instead.
template <int N> void keys(int heads, int groups, int tokens, int start, bool rope, bool balanced, bool residual, bool nan)
{
    constexpr int L = WKV7C_L, KPL = N / 32;
    const int kvh = heads / groups, chunks = (tokens + L - 1) / L;
    const size_t width = (size_t)heads * N, kvw = (size_t)kvh * N, count = (size_t)tokens * width;
    auto r = uniform(count, -1, 1), k = uniform((size_t)tokens * kvw, -1, 1), v = uniform((size_t)tokens * kvw, -1, 1);
    auto zw = uniform(count, -3, 3), za = uniform(count, -3, 3), zv = uniform(count, -3, 3), first = uniform(count, -1, 1);
    auto w0 = uniform(width, -1, 1), a0 = uniform(width, -1, 1), v0 = uniform(width, -1, 1);
    auto ks = uniform(width, 0.5f, 1.2f), ka = uniform(width, 0.5f, 1.5f);
    if (nan) zw[(size_t)(L + 5) * width + (size_t)(heads - 1) * N + 3] = NAN; // chunk 1 of the last head
    const float scale = (float)-std::exp(-0.5);
    // The composed ops.
    std::vector<float> rr(count), w(count), kt(count), a(count), b(count), vh(count);
    for (int t = 0; t < tokens; t++)
        for (int h = 0; h < heads; h++)
        {
            const size_t o = (size_t)t * width + (size_t)h * N, okv = (size_t)t * kvw + (size_t)(h / groups) * N;
            float kr[N], ar[N];
            for (int j = 0; j < N; j++)
            {
                w[o + j] = expf(c7::sigmoid_(zw[o + j] + w0[h * N + j]) * scale);
                ar[j] = c7::sigmoid_(za[o + j] + a0[h * N + j]);
                rr[o + j] = r[o + j];
                kr[j] = k[okv + j];
                float vi = v[okv + j];
                if (residual) vi = vi + (first[o + j] - vi) * c7::sigmoid_(zv[o + j] + v0[h * N + j]);
                vh[o + j] = vi;
            }

            if (rope)
                for (int i = 0; i < N / 2; i++)
                {
                    float cf, sf;
                    c7::rope_cos_sin((double)(start + t), i, N, 1e6f, cf, sf);
                    c7::rope_pair(rr[o + i], rr[o + i + N / 2], cf, sf);
                    c7::rope_pair(kr[i], kr[i + N / 2], cf, sf);
                }

            float lane[32];
            for (int l = 0; l < 32; l++)
            {
                lane[l] = 0.f;
                for (int u = 0; u < KPL; u++)
                {
                    const int j = l + 32 * u;
                    const float kappa = balanced ? kr[j] : kr[j] * ks[h * N + j];
                    lane[l] = fmaf(kappa, kappa, lane[l]);
                }
            }

            for (int off = 16; off > 0; off >>= 1)
            {
                float next[32];
                for (int l = 0; l < 32; l++) next[l] = lane[l] + lane[l ^ off];
                std::copy(next, next + 32, lane);
            }

            const float inv = 1.f / fmaxf(sqrtf(lane[0]), 1e-12f);
            for (int j = 0; j < N; j++)
            {
                const float kappa = (balanced ? kr[j] : kr[j] * ks[h * N + j]) * inv;
                kt[o + j] = balanced ? kr[j] * (1.f - w[o + j] + ar[j]) : kr[j] * (1.f + (ar[j] - 1.f) * ka[h * N + j]);
                a[o + j] = -kappa;
                b[o + j] = kappa * ar[j];
            }
        }

    const size_t size = Wkv7cRecord<N>::SIZE;
    std::vector<float> plain((size_t)heads * chunks * size, NAN), fused = plain;
    launch([&] {
        blockIdx.z = 0;
        if constexpr (N == 64) c7::wkv7_chunk_prep_f32_n64(rr.data(), w.data(), kt.data(), a.data(), b.data(), tokens, heads, plain.data());
        else c7::wkv7_chunk_prep_f32_n128(rr.data(), w.data(), kt.data(), a.data(), b.data(), tokens, heads, plain.data());
    }, (unsigned)chunks, (unsigned)heads, WKV7C_PREP_THREADS, WKV7C_PREP_SHARED(N) * 4);
    std::vector<float2> table((size_t)tokens * N / 2);
    for (int t = 0; t < tokens; t++)
        for (int i = 0; i < N / 2; i++) c7::rope_cos_sin((double)(start + t), i, N, 1e6f, table[(size_t)t * N / 2 + i].x, table[(size_t)t * N / 2 + i].y);
    std::vector<float> vo(count, NAN), fr(count, NAN), fw(count, NAN), fk(count, NAN), fa(count, NAN), fb(count, NAN);
    launch([&] {
        blockIdx.z = 0;
        auto prep = N == 64 ? c7::wkv7_chunk_prep_keys_f32_n64 : c7::wkv7_chunk_prep_keys_f32_n128;
        prep(r.data(), k.data(), v.data(), groups, rope ? table.data() : nullptr, zw.data(), w0.data(), 0, scale, za.data(), a0.data(), 0,
            balanced ? nullptr : ks.data(), 0, balanced ? nullptr : ka.data(), 0, balanced, residual ? zv.data() : nullptr, residual ? v0.data() : nullptr,
            0, residual ? first.data() : nullptr, vo.data(), fr.data(), fw.data(), fk.data(), fa.data(), fb.data(), tokens, heads, fused.data());
    }, (unsigned)chunks, (unsigned)heads, WKV7C_PREP_THREADS, WKV7C_PREP_SHARED(N) * 4);

    checks++;
    auto same = [](float x, float y) { return std::memcmp(&x, &y, 4) == 0; };
    auto fail = [&](const char* what, size_t at, float got, float want) {
        printf("FAIL keys prep n %d H %d groups %d T %d%s%s%s%s: %s element %zu is %.9g, the composed ops give %.9g\n", N, heads, groups, tokens,
            rope ? " rope" : "", balanced ? " balanced" : " stock", residual ? " residual" : "", nan ? " NaN" : "", what, at, got, want);
        failures++;
    };
    for (size_t i = 0; i < count; i++)
        if (!same(vo[i], vh[i])) return fail("vh", i, vo[i], vh[i]);
    int flagged = 0;
    for (int h = 0; h < heads; h++)
        for (int c = 0; c < chunks; c++)
        {
            const float* pr = plain.data() + ((size_t)h * chunks + c) * size;
            const float* fu = fused.data() + ((size_t)h * chunks + c) * size;
            if (!same(pr[Wkv7cRecord<N>::FLAG], fu[Wkv7cRecord<N>::FLAG])) return fail("flag", ((size_t)h * chunks + c), fu[Wkv7cRecord<N>::FLAG], pr[Wkv7cRecord<N>::FLAG]);
            if (fu[Wkv7cRecord<N>::FLAG] != 0.f)
            {
                // Flagged: the workspace rows of this chunk and head carry the composed values.
                flagged++;
                for (int t = c * L; t < std::min(tokens, (c + 1) * L); t++)
                    for (int j = 0; j < N; j++)
                    {
                        const size_t o = (size_t)t * width + (size_t)h * N + j;
                        const float got[5] = {fr[o], fw[o], fk[o], fa[o], fb[o]}, want[5] = {rr[o], w[o], kt[o], a[o], b[o]};
                        for (int q = 0; q < 5; q++)
                            if (!same(got[q], want[q]) && !(std::isnan(got[q]) && std::isnan(want[q]))) return fail("flagged row", o, got[q], want[q]);
                    }

                continue;
            }

            // Every word the scan reads: MA rows (N wide), BK rows (2L wide), QW rows (L wide), γ_L.
            auto part = [&](int base, int rows, int stride, int used) {
                for (int x = 0; x < rows; x++)
                    for (int y = 0; y < used; y++)
                    {
                        const size_t at = base + (size_t)x * stride + y;
                        if (!same(fu[at], pr[at])) return fail("record", ((size_t)h * chunks + c) * size + at, fu[at], pr[at]), false;
                    }
                return true;
            };
            using Rec = Wkv7cRecord<N>;
            if (!part(Rec::MA, 2 * L, Rec::MS, N) || !part(Rec::BK, N, Rec::BS, 2 * L) || !part(Rec::QW, 2 * L, Rec::QS, L) || !part(Rec::GAMMA, 1, N, N)) return;
        }

    if (flagged != (nan ? 1 : 0))
    {
        printf("FAIL keys prep n %d T %d: %d chunks flagged, expected %d\n", N, tokens, flagged, nan ? 1 : 0);
        failures++;
    }
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
    const int rows = argc > 1 && strcmp(argv[1], "keys") != 0 ? atoi(argv[1]) : 0;
    const bool keysOnly = argc > 1 && strcmp(argv[1], "keys") == 0;
    keys<64>(2, 1, 40, 4097, true, true, true, false);
    keys<64>(4, 2, 33, 0, true, false, false, false);
    keys<128>(7, 7, 20, 7, true, true, true, false);
    keys<128>(2, 2, 17, 100003, false, false, true, false);
    keys<64>(2, 1, 40, 3, true, true, true, true);
    if (!keysOnly && rows != 16) shapes<32>();
    if (!keysOnly && rows != 32) shapes<16>();
    printf("%d checks, %d failures; worst error %.3g of its output's scale\n", checks, failures, worst_ratio);
    return failures == 0 ? 0 : 1;
}
