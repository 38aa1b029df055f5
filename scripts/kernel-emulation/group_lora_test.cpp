// gemv_group_lora_down_bf16_* under emu.h (see run-group-lora.sh), with the host logic of
// CudaOps.AddRmsNormMatMulSharedLoraSet (GemvLevel, LoraDownGeometry) replayed in C++: q/k/v and every branch's hidden
// must be the bits of gemv_group_bf16_* then lora_down_bf16, all written (NaN-poisoned first), and the split counters
// back at 0, whatever order the blocks run in.
#include "emu.h"
#define EMU_SEED 9
#include "gemv_emu.h"
namespace lo {
#include "lora.inc"
}

#define GROUP(prefix, level, ...)                                                                                        \
    do {                                                                                                                  \
        if (level == 0) mm::prefix##bf16_vec1(__VA_ARGS__); else if (level == 1) mm::prefix##bf16_vec2(__VA_ARGS__);     \
        else if (level == 2) mm::prefix##bf16_vec4(__VA_ARGS__); else mm::prefix##bf16_vec8(__VA_ARGS__);                 \
    } while (0)

std::vector<u16> bf16s(size_t n, float s) { std::vector<u16> v; for (float f : normal(n, s)) v.push_back(bf(f)); return v; }

void run(int c, std::vector<int> m, std::vector<int> ranks, int sms, unsigned seed)
{
    auto x = normal(c, 1);
    std::vector<std::vector<u16>> w, a;
    std::vector<std::vector<float>> bias;
    for (int r : m) { w.push_back(bf16s((size_t)r * c, 1 / sqrtf(c))); bias.push_back(normal(r, 1)); }
    int total = 0;
    for (int r : ranks) { a.push_back(bf16s((size_t)c * r, 1 / sqrtf(c))); total += r; }
    // The branch table (up factors unused by lora_down), once per namespace.
    auto fill = [&](auto& t, std::vector<std::vector<float>>& hidden) {
        t.count = (int)ranks.size();
        int column = 0;
        for (size_t i = 0; i < ranks.size(); i++) {
            t.down[i] = (unsigned long long)a[i].data(); t.hidden[i] = (unsigned long long)hidden[i].data();
            t.rank[i] = ranks[i]; t.column[i] = column; t.inner[i] = (int)(i % 3); column += ranks[i];
        }
        t.ranks = column;
    };
    // Host geometry: CudaOps.GemvLevel and CudaOps.LoraDownGeometry.
    long rows = (long)m[0] + m[1] + m[2];
    int level = level_for(rows, sms), perBlock = 8 >> level;
    int groupBlocks = (int)((rows + perBlock - 1) / perBlock);
    int tiles = (total + 255) / 256, splits = 1;
    if (c > 256 && tiles <= 4096) splits = std::clamp((2 * sms + tiles - 1) / tiles, 1, (c + 31) / 32);
    int rps = (c + splits - 1) / splits; splits = (c + rps - 1) / rps;

    std::vector<std::vector<float>> y1, y2, h1, h2;
    for (int r : m) { y1.emplace_back(r, NAN); y2.emplace_back(r, NAN); }
    for (int r : ranks) { h1.emplace_back(r, NAN); h2.emplace_back(r, NAN); }
    std::vector<float> p1((size_t)splits * total, NAN), p2((size_t)splits * total, NAN);
    std::vector<int> c1(4096, 0), c2(4096, 0);
    lo::LoraTable t1{}; fill(t1, h1);
    mm::LoraTable t2{}; fill(t2, h2);

    launch([&] { GROUP(gemv_group_, level, x.data(), c, w[0].data(), bias[0].data(), 0, y1[0].data(), m[0], w[1].data(), bias[1].data(), 0,
        y1[1].data(), m[1], w[2].data(), nullptr, 0, y1[2].data(), m[2]); }, groupBlocks, 1, 256, 0);
    launch([&] { lo::lora_down_bf16(x.data(), t1, splits > 1 ? p1.data() : nullptr, c1.data(), c, rps); }, tiles, splits, 256, 0);

    emu_block_order_seed = seed;
    launch([&] { GROUP(gemv_group_lora_down_, level, x.data(), c, w[0].data(), bias[0].data(), 0, y2[0].data(), m[0], w[1].data(), bias[1].data(), 0,
        y2[1].data(), m[1], w[2].data(), nullptr, 0, y2[2].data(), m[2], t2, splits > 1 ? p2.data() : nullptr, c2.data(), rps, tiles, splits); },
        groupBlocks + tiles * splits, 1, 256, 0);
    emu_block_order_seed = 0;

    char what[160];
    snprintf(what, sizeof what, "gemv_group_lora_down c %d m %d/%d/%d ranks %d (%d tiles x %d splits) level %d order %u", c, m[0], m[1], m[2], total,
        tiles, splits, level, seed);
    int before = failures;
    for (size_t i = 0; i < m.size(); i++) same(y1[i], y2[i], what, "q/k/v");
    for (size_t i = 0; i < ranks.size(); i++) same(h1[i], h2[i], what, "hidden");
    if (!std::all_of(c2.begin(), c2.end(), [](int v) { return v == 0; })) { printf("FAIL %s: a split counter is not back at 0\n", what); failures++; }
    printf("%s: %s\n", what, failures == before ? "same bits" : "DIFFERENT");
}

int main()
{
    // The 7B layer's LoRA set (C = 3584: K split, four tiles, a tile boundary inside a branch) behind a short q/k/v,
    // 0.5B's layer 0 (C = 896), and C = 64 (one split, no partials); blocks in launch order and shuffled.
    run(3584, {512, 128, 128}, {96, 96, 64, 416}, 132, 0);
    run(3584, {512, 128, 128}, {96, 96, 64, 416}, 132, 5);
    run(896, {896, 128, 128}, {32, 32, 64}, 132, 7);
    run(64, {64, 32, 32}, {8, 32}, 4, 3);
    printf(failures ? "FAILED (%d)\n" : "all same bits\n", failures);
    return failures ? 1 : 0;
}
