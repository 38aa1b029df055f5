// wkv7_tile_f32_ne*_r*_l* (kernels/rwkv7.cu) under emu.h (see run-wkv7-tile.sh) against T calls of wkv7_decode_f32,
// bit for bit: state and every y (NaN-poisoned first), over head dims that hit each NE (16, 40,
// 64, 128, 256), rows per thread 1 and 2, chunk boundaries (T = chunk ± 1, partial groups of 8), several heads, two
// sequences in the grid's y, a non-zero initial state, and 8 or 16 lanes a row. The host geometry is CudaOps.Wkv7TileGeometry's.
#include "emu.h"
#include <random>
namespace r7 {
#include "rwkv7.inc"
}
static std::mt19937 rng(7);
std::vector<float> uniform(size_t n, float lo, float hi) { std::uniform_real_distribution<float> d(lo, hi); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
int failures = 0, checks = 0;
void same(const std::vector<float>& e, const std::vector<float>& a, const char* what, int n, int t, int r)
{
    checks++;
    for (size_t i = 0; i < e.size(); i++)
        if (std::isnan(a[i]) || memcmp(&e[i], &a[i], 4) != 0)
        {
            printf("FAIL %s (n %d, T %d, R %d) element %zu: %.9g vs %.9g\n", what, n, t, r, i, a[i], e[i]);
            failures++;
            return;
        }
}

using Tile = void (*)(const float*, const float*, const float*, const float*, const float*, const float*, float*, int, int, int, int, float*);
Tile tile(int ne, int r, int l)
{
#define PICK(NE, R, L) if (ne == NE && r == R && l == L) return r7::wkv7_tile_f32_ne##NE##_r##R##_l##L;
    PICK(1, 1, 8) PICK(2, 1, 8) PICK(4, 1, 8) PICK(8, 1, 8) PICK(1, 2, 8) PICK(2, 2, 8) PICK(4, 2, 8) PICK(8, 2, 8)
    PICK(2, 2, 16) PICK(4, 2, 16) PICK(8, 2, 16)
    printf("no kernel for NE %d R %d L %d\n", ne, r, l);
    exit(1);
}

void run(int seqs, int heads, int n, int tokens, int r, int chunkOverride, int l = 8)
{
    int ne = 1;
    while (32 * ne < n) ne *= 2;
    if (l == 16 && ne == 1) ne = 2; // a lane reads its keys as float4: 2·NE of them
    int np = 32 * ne, rows = (32 / l) * r * WKV7_TILE_WARPS;
    int chunk = chunkOverride > 0 ? chunkOverride : (np <= 128 ? 16 : 8);
    size_t width = (size_t)heads * n, count = (size_t)seqs * tokens * width;
    auto rv = uniform(count, -1, 1), wv = uniform(count, 0.5f, 1), kv = uniform(count, -1, 1), vv = uniform(count, -1, 1);
    auto kap = uniform(count, -0.3f, 0.3f), av = kap, bv = kap;
    auto ai = uniform(count, 0, 1);
    for (size_t i = 0; i < count; i++) { av[i] = -kap[i]; bv[i] = kap[i] * ai[i]; }
    auto s0 = uniform((size_t)seqs * heads * n * n, -0.5f, 0.5f);

    // Reference: token by token through the decode kernel, each sequence on its own.
    std::vector<float> sd = s0, yd(count, NAN);
    for (int q = 0; q < seqs; q++)
        for (int t = 0; t < tokens; t++)
        {
            size_t o = ((size_t)q * tokens + t) * width;
            float* st = sd.data() + (size_t)q * heads * n * n;
            long warps = (long)heads * n;
            launch([&] { r7::wkv7_decode_f32(rv.data() + o, wv.data() + o, kv.data() + o, vv.data() + o, av.data() + o, bv.data() + o, st, heads, n, yd.data() + o, 1.f, nullptr); },
                (unsigned)((warps * 32 + 255) / 256), 1, 256, 0);
        }

    std::vector<float> st = s0, yt(count, NAN);
    unsigned blocks = (unsigned)(heads * ((n + rows - 1) / rows));
    size_t shared = 2 * (size_t)chunk * (5 * np + rows) * 4;
    Tile f = tile(ne, r, l);
    launch([&] { f(rv.data(), wv.data(), kv.data(), vv.data(), av.data(), bv.data(), st.data(), tokens, heads, n, chunk, yt.data()); },
        blocks, (unsigned)seqs, 32 * WKV7_TILE_WARPS, shared);
    same(yd, yt, l == 16 ? "tile (L 16) y vs decode" : "tile y vs decode", n, tokens, r);
    same(sd, st, l == 16 ? "tile (L 16) state vs decode" : "tile state vs decode", n, tokens, r);
}

int main()
{
    for (int r : {1, 2})
    {
        for (int n : {16, 40, 64}) for (int t : {2, 7, 8, 9, 15, 16, 17, 33}) run(1, 2, n, t, r, 0);
        for (int t : {2, 9, 17, 31, 32, 33}) run(1, 1, 128, t, r, 0);
        run(2, 2, 64, 20, r, 0);
        run(1, 3, 40, 21, r, 8);
        run(1, 2, 64, 25, r, 12);
        run(1, 1, 256, 10, r, 0);
        run(1, 1, 200, 9, r, 0);
    }
    // 16 lanes a row (NE ≥ 2), two rows a thread: y reduced over groups of 16 tokens.
    for (int n : {16, 40, 64}) for (int t : {2, 15, 16, 17, 33}) run(1, 2, n, t, 2, 0, 16);
    for (int t : {9, 16, 17, 31, 33}) run(1, 1, 128, t, 2, 0, 16);
    run(2, 2, 64, 20, 2, 0, 16);
    run(1, 3, 40, 21, 2, 8, 16);
    run(1, 1, 256, 10, 2, 0, 16);
    printf("%d comparisons, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
