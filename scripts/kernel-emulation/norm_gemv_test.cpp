// The fused norm + GEMV kernels under emu.h (see run-norm-gemv.sh), with the host logic of
// CudaOps.AddRmsNormMatMulShared / AddRmsNormGateUpSwiGlu (CudaOps.NormGeometry, GemvLevel, GateUpGeometry) replayed
// in C++: h, normed and every output must be the bits of the unfused kernels, all written (NaN-poisoned first), and
// the block counter back at 0 after each launch, whatever order the blocks run in.
#include "emu.h"
#define EMU_SEED 5
#include "gemv_emu.h"

struct Weights
{
    std::vector<float> f32;
    std::vector<u16> b16;
    Weights(size_t n) : f32(normal(n, 0.05f)) { for (float v : f32) b16.push_back(bf(v)); }
    const void* at(int dt) const { return dt == 2 ? (const void*)b16.data() : (const void*)f32.data(); }
};

#define BY_LEVEL(prefix, dt, level, ...)                                                                                  \
    do {                                                                                                                  \
        if (dt == 2) { if (level == 0) mm::prefix##bf16_vec1(__VA_ARGS__); else if (level == 1) mm::prefix##bf16_vec2(__VA_ARGS__); \
            else if (level == 2) mm::prefix##bf16_vec4(__VA_ARGS__); else mm::prefix##bf16_vec8(__VA_ARGS__); }             \
        else { if (level == 0) mm::prefix##f32_vec1(__VA_ARGS__); else if (level == 1) mm::prefix##f32_vec2(__VA_ARGS__);   \
            else if (level == 2) mm::prefix##f32_vec4(__VA_ARGS__); else mm::prefix##f32_vec8(__VA_ARGS__); }                \
    } while (0)

// The unfused norm: add_rms_norm_f32 (h += b) or rms_norm_f32 (b null) into y.
void norm(std::vector<float>& h, const std::vector<float>* b, const std::vector<float>& w, float eps, std::vector<float>& y)
{
    int c = (int)h.size();
    int nt = norm_threads(c);
    if (b) launch([&] { nm::add_rms_norm_f32(h.data(), b->data(), w.data(), 0, eps, y.data(), c, 1); }, 1, 1, nt, 0);
    else launch([&] { nm::rms_norm_f32(h.data(), w.data(), 0, eps, y.data(), c, 1); }, 1, 1, nt, 0);
}

// q/k/v-like group of `count` matrices (m0, m1, m2 rows; biases on the first `biased`) after the norm.
void group(int dt, int c, int count, const int* ms, bool biased, bool add, int sms, unsigned seed)
{
    auto h = normal(c, 1), b = normal(c, 1), nw = normal(c, 1);
    float eps = 1e-6f;
    std::vector<Weights> ws;
    std::vector<std::vector<float>> biases;
    for (int i = 0; i < 3; i++) { ws.emplace_back((size_t)(i < count ? ms[i] : 0) * c); biases.push_back(normal(i < count ? ms[i] : 0, 1)); }
    int m[3] = {0, 0, 0};
    for (int i = 0; i < count; i++) m[i] = ms[i];
    long rows = (long)m[0] + m[1] + m[2];
    int level = level_for(rows, sms), perBlock = 8 >> level;
    unsigned grid = (unsigned)((rows + perBlock - 1) / perBlock);
    auto bias = [&](int i) { return biased && i < count ? (const void*)biases[i].data() : (const void*)nullptr; };
    auto run = [&](bool fused, std::vector<float>& hh, std::vector<float>& normed, std::vector<std::vector<float>>& ys, int* counter) {
        const void* w[3] = {ws[0].at(dt), ws[1].at(dt), ws[2].at(dt)};
        float* y[3] = {ys[0].data(), ys[1].data(), ys[2].data()};
        if (!fused)
        {
            norm(hh, add ? &b : nullptr, nw, eps, normed);
            launch([&] { BY_LEVEL(gemv_group_, dt, level, normed.data(), c, w[0], bias(0), 0, y[0], m[0], w[1], bias(1), 0, y[1], m[1], w[2], bias(2), 0, y[2], m[2]); },
                grid, 1, 256, 0);
            return;
        }
        int nt = norm_threads(c);
        emu_block_order_seed = seed;
        launch([&] { BY_LEVEL(norm_gemv_group_, dt, level, hh.data(), add ? b.data() : nullptr, nw.data(), 0, eps, normed.data(), counter, nt, c,
            w[0], bias(0), 0, y[0], m[0], w[1], bias(1), 0, y[1], m[1], w[2], bias(2), 0, y[2], m[2]); }, grid, 1, 256, (size_t)c * 4);
        emu_block_order_seed = 0;
    };
    std::vector<float> h1 = h, h2 = h, n1(c, NAN), n2(c, NAN);
    std::vector<std::vector<float>> y1, y2;
    for (int i = 0; i < 3; i++) { y1.emplace_back(m[i], NAN); y2.emplace_back(m[i], NAN); }
    int counter = 0;
    run(false, h1, n1, y1, nullptr);
    run(true, h2, n2, y2, &counter);
    char what[128];
    snprintf(what, sizeof what, "norm_gemv_group dt %d c %d m %d/%d/%d bias %d add %d level %d order %u", dt, c, m[0], m[1], m[2], biased, add, level, seed);
    int before = failures;
    same(h1, h2, what, "h");
    same(n1, n2, what, "normed");
    for (int i = 0; i < count; i++) same(y1[i], y2[i], what, "y");
    if (counter != 0) { printf("FAIL %s: counter %d after the launch\n", what, counter); failures++; }
    printf("%s: %s\n", what, failures == before ? "same bits" : "DIFFERENT");
}

void gate_up(int dt, int c, int f, bool add, int sms, unsigned seed)
{
    auto h = normal(c, 1), b = normal(c, 1), nw = normal(c, 1);
    float eps = 1e-5f;
    Weights wg((size_t)f * c), wu((size_t)f * c);
    int level = level_for(2L * f, sms);
    int pairs = level < 3 ? 4 >> level : 1;
    unsigned threads = (unsigned)(64 << level) * pairs, grid = (unsigned)((f + pairs - 1) / pairs);
    std::vector<float> h1 = h, h2 = h, n1(c, NAN), n2(c, NAN), y1(f, NAN), y2(f, NAN);
    norm(h1, add ? &b : nullptr, nw, eps, n1);
    launch([&] { BY_LEVEL(gate_up_swiglu_, dt, level, n1.data(), c, wg.at(dt), wu.at(dt), y1.data(), f); }, grid, 1, threads, 0);
    int counter = 0, nt = norm_threads(c);
    emu_block_order_seed = seed;
    launch([&] { BY_LEVEL(norm_gate_up_swiglu_, dt, level, h2.data(), add ? b.data() : nullptr, nw.data(), 0, eps, n2.data(), &counter, nt, c,
        wg.at(dt), wu.at(dt), y2.data(), f); }, grid, 1, threads, (size_t)c * 4);
    emu_block_order_seed = 0;
    char what[128];
    snprintf(what, sizeof what, "norm_gate_up_swiglu dt %d c %d f %d add %d level %d order %u", dt, c, f, add, level, seed);
    int before = failures;
    same(h1, h2, what, "h");
    same(n1, n2, what, "normed");
    same(y1, y2, what, "y");
    if (counter != 0) { printf("FAIL %s: counter %d after the launch\n", what, counter); failures++; }
    printf("%s: %s\n", what, failures == before ? "same bits" : "DIFFERENT");
}

int main()
{
    // C = 64 (one warp of norm threads), 896 (64), 3584 (224 of a 256-thread block), 1032 (odd multiple of 8);
    // levels 0..3 through the SM count; blocks in order (0) and shuffled.
    int qkv[3] = {96, 16, 16}, one[1] = {40}, two[2] = {24, 72};
    group(2, 64, 3, qkv, true, true, 1, 0);
    group(2, 896, 3, qkv, true, true, 4, 7);
    group(2, 3584, 3, qkv, false, true, 132, 3);
    group(0, 896, 2, two, true, false, 1, 11);
    group(2, 1032, 1, one, false, false, 40, 5);
    group(0, 64, 1, one, true, true, 132, 9);
    group(2, 896, 3, qkv, true, false, 16, 13);
    gate_up(2, 64, 40, true, 1, 0);
    gate_up(2, 896, 33, true, 4, 21);
    gate_up(0, 896, 20, false, 132, 17);
    gate_up(2, 3584, 24, true, 40, 19);
    gate_up(2, 1032, 200, true, 10, 23);
    printf(failures ? "FAILED (%d)\n" : "all same bits\n", failures);
    return failures ? 1 : 0;
}
