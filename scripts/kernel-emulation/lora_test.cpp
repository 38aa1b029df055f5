// kernels/lora.cu (LoraSet at decode) under emu.h (see run-lora.sh): the host's launch geometry of CudaOps.LoraSet.cs
// replayed in C++ (split-K of lora_down, 4 or 8 lanes of lora_up), bf16 factors, outputs poisoned with NaN, checked
// against float64 with the conformance tolerance (5e-5), and the split counters checked reset. Blocks run one at a
// time here, so the last-block protocol is exercised for its indexing, not for races.
#include "emu.h"
#include <random>
#include <atomic>
template <class T> inline T __ldg(const T* p) { return *p; }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
#define __launch_bounds__(x)
namespace lo {
#include "lora.inc"
}
typedef unsigned short u16;
static std::mt19937 rng(7);
std::vector<float> normal(size_t n, float s) { std::normal_distribution<float> d(0, s); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
u16 bf(float f) { unsigned b; memcpy(&b, &f, 4); return (u16)((b + 0x7fff + ((b >> 16) & 1)) >> 16); }
float unbf(u16 h) { unsigned b = (unsigned)h << 16; float f; memcpy(&f, &b, 4); return f; }
int failures = 0;
struct Br { int r, m, inner, outer; };
void run(int C, std::vector<Br> brs, int sms)
{
    int n = brs.size();
    auto x = normal(C, 1);
    std::vector<std::vector<u16>> A(n), B(n); std::vector<std::vector<float>> off(n), hid(n), y(n);
    lo::LoraTable t{}; t.count = n; int ranks = 0;
    for (int i = 0; i < n; i++) {
        auto a = normal((size_t)C * brs[i].r, 1 / sqrtf(C)); auto b = normal((size_t)brs[i].r * brs[i].m, 1 / sqrtf(brs[i].r));
        for (float v : a) A[i].push_back(bf(v)); for (float v : b) B[i].push_back(bf(v));
        off[i] = normal(brs[i].m, 1); hid[i].assign(brs[i].r, NAN); y[i].assign(brs[i].m, NAN);
        t.down[i] = (unsigned long long)A[i].data(); t.up[i] = (unsigned long long)B[i].data();
        t.offset[i] = brs[i].outer ? (unsigned long long)off[i].data() : 0; t.offset_dtype[i] = 0;
        t.hidden[i] = (unsigned long long)hid[i].data(); t.y[i] = (unsigned long long)y[i].data();
        t.rank[i] = brs[i].r; t.width[i] = brs[i].m; t.column[i] = ranks; t.inner[i] = brs[i].inner; t.outer[i] = brs[i].outer;
        ranks += brs[i].r;
    }
    t.ranks = ranks;
    // Host logic of CudaOps.LoraDown / LoraUp.
    int tiles = (ranks + 255) / 256, splits = 1;
    if (C > 256 && tiles <= 4096) splits = std::clamp((2 * sms + tiles - 1) / tiles, 1, (C + 31) / 32);
    int rps = (C + splits - 1) / splits; splits = (C + rps - 1) / rps;
    std::vector<float> partial((size_t)splits * ranks, NAN); std::vector<int> counters(4096, 0);
    launch([&] { lo::lora_down_bf16(x.data(), t, splits > 1 ? partial.data() : nullptr, counters.data(), C, rps); }, tiles, splits, 256, 0);
    auto blocksFor = [&](int lanes) { int b = 0; for (int i = 0; i < n; i++) { t.block[i] = b; b += (t.width[i] + 8 * lanes - 1) / (8 * lanes); } return b; };
    int lanes = blocksFor(8) >= 2 * sms ? 8 : 4; int blocks = blocksFor(lanes);
    float scale = -expf(-0.5f);
    if (lanes == 8) launch([&] { lo::lora_up_bf16_l8(t, scale); }, blocks, 1, 256, 0);
    else launch([&] { lo::lora_up_bf16_l4(t, scale); }, blocks, 1, 256, 0);
    bool countersZero = std::all_of(counters.begin(), counters.end(), [](int c) { return c == 0; });
    double worst = 0; int bad = 0;
    for (int i = 0; i < n; i++) {
        std::vector<double> h(brs[i].r);
        for (int r = 0; r < brs[i].r; r++) { double s = 0; for (int k = 0; k < C; k++) s += (double)x[k] * unbf(A[i][(size_t)k * brs[i].r + r]);
            h[r] = brs[i].inner == 1 ? tanh(s) : brs[i].inner == 2 ? 1 / (1 + exp(-s)) : s;
            double e = fabs(hid[i][r] - h[r]); if (!(e <= 5e-5 + 5e-5 * fabs(h[r]))) bad++; worst = std::max(worst, e); }
        for (int m = 0; m < brs[i].m; m++) { double z = 0; for (int r = 0; r < brs[i].r; r++) z += h[r] * unbf(B[i][(size_t)r * brs[i].m + m]);
            double o = off[i][m], v = z;
            if (brs[i].outer == 1) v = 1 / (1 + exp(-(z + o)));
            if (brs[i].outer == 2) v = exp(-exp(-0.5) / (1 + exp(-(z + o))));
            if (brs[i].outer == 3) v = exp(std::max(-exp(o + z), -5.0));
            double e = fabs(y[i][m] - v); if (!(e <= 5e-5 + 5e-5 * fabs(v))) { if (bad < 3) printf("  y%d[%d] expected %g got %g\n", i, m, v, y[i][m]); bad++; } worst = std::max(worst, e); }
    }
    printf("%s C=%d branches=%d tiles=%d splits=%d lanes=%d upblocks=%d: %d bad, worst abs %.3g, counters %s\n", bad || !countersZero ? "FAIL" : "ok  ",
        C, n, tiles, splits, lanes, blocks, bad, worst, countersZero ? "reset" : "NOT reset");
    if (bad || !countersZero) failures++;
}
// lora_inner_bf16 (prefill): hidden gets inner in place (tanhf / 1/(1+e^-h) / itself) and hb its bf16 bits, every
// element written (hb poisoned with 0xFFFF, nothing past n touched), for the host's launch of n elements.
void inner_bf16(long long n, int inner)
{
    auto h = normal((size_t)n, 2);
    auto before = h;
    std::vector<u16> hb((size_t)n + 2, 0xFFFF);
    unsigned blocks = (unsigned)std::min<long long>(3, (n + 63) / 64);
    launch([&] { lo::lora_inner_bf16(h.data(), hb.data(), n, inner); }, blocks, 1, 64, 0);
    int bad = 0;
    for (long long i = 0; i < n; i++)
    {
        float e = inner == 1 ? tanhf(before[i]) : inner == 2 ? 1.f / (1.f + expf(-before[i])) : before[i];
        if (memcmp(&e, &h[i], 4) != 0 || hb[i] != bf(e)) bad++;
    }
    if (hb[n] != 0xFFFF || hb[n + 1] != 0xFFFF) bad++;
    printf("%s lora_inner_bf16 n=%lld inner=%d: %d bad\n", bad ? "FAIL" : "ok  ", n, inner, bad);
    if (bad) failures++;
}

int main()
{
    for (int inner : {0, 1, 2})
        for (long long n : {1, 12 * 17, 64 * 300 + 1})
            inner_bf16(n, inner);
    run(3584, {{96, 3584, 1, 2}, {96, 3584, 0, 1}, {64, 3584, 0, 1}, {416, 3584, 2, 0}}, 132);
    run(896, {{32, 896, 1, 2}, {32, 896, 0, 1}, {64, 896, 2, 0}}, 132);
    run(896, {{8, 24, 1, 3}, {32, 40, 0, 0}, {416, 128, 2, 1}, {96, 896, 1, 2}}, 132);
    run(64, {{8, 64, 0, 2}}, 132);
    run(3584, {{416, 896, 2, 3}}, 8);
    run(1000, {{96, 3584, 1, 2}, {96, 3584, 0, 1}}, 4);
    return failures ? 1 : 0;
}
