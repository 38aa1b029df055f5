// The persistent MLP kernel mlp_decode_bf16_g{G}_d{D} (kernels/matmul.cu) under emu.h (see run-mlp-decode.sh), with
// the host logic of CudaOps.AddRmsNormMlp (NormGeometry, GemvLevel, GateUpGeometry) replayed in C++: h, normed, act
// and y must be the bits of add_rms_norm_f32 (rms_norm_f32 without a branch), gate_up_swiglu_bf16 and gemv_bf16_vec,
// every output written (NaN-poisoned first) and the barrier's arrival count back at 0. The emulator runs blocks one at
// a time, so the grid here is one block (grid_barrier needs every block resident): it walks every virtual block of
// both phases, which checks the indexing, the shared-memory reuse between rows and the once-only norm and barrier.
#include "emu.h"
#define EMU_SEED 7
#include "gemv_emu.h"
std::vector<u16> weights(size_t n) { std::vector<u16> w; for (float v : normal(n, 0.05f)) w.push_back(bf(v)); return w; }

#define GATE_UP_BY_LEVEL(level, ...) do { if (level == 0) mm::gate_up_swiglu_bf16_vec1(__VA_ARGS__); \
    else if (level == 1) mm::gate_up_swiglu_bf16_vec2(__VA_ARGS__); else mm::gate_up_swiglu_bf16_vec4(__VA_ARGS__); } while (0)
#define GEMV_BY_LEVEL(level, ...) do { if (level == 0) mm::gemv_bf16_vec1(__VA_ARGS__); else if (level == 1) mm::gemv_bf16_vec2(__VA_ARGS__); \
    else if (level == 2) mm::gemv_bf16_vec4(__VA_ARGS__); else mm::gemv_bf16_vec8(__VA_ARGS__); } while (0)
#define MLP_BY_LEVEL(g, d, ...) do { \
    if (g == 0) { if (d == 0) mm::mlp_decode_bf16_g0_d0(__VA_ARGS__); else if (d == 1) mm::mlp_decode_bf16_g0_d1(__VA_ARGS__); else if (d == 2) mm::mlp_decode_bf16_g0_d2(__VA_ARGS__); else mm::mlp_decode_bf16_g0_d3(__VA_ARGS__); } \
    else if (g == 1) { if (d == 0) mm::mlp_decode_bf16_g1_d0(__VA_ARGS__); else if (d == 1) mm::mlp_decode_bf16_g1_d1(__VA_ARGS__); else if (d == 2) mm::mlp_decode_bf16_g1_d2(__VA_ARGS__); else mm::mlp_decode_bf16_g1_d3(__VA_ARGS__); } \
    else { if (d == 0) mm::mlp_decode_bf16_g2_d0(__VA_ARGS__); else if (d == 1) mm::mlp_decode_bf16_g2_d1(__VA_ARGS__); else if (d == 2) mm::mlp_decode_bf16_g2_d2(__VA_ARGS__); else mm::mlp_decode_bf16_g2_d3(__VA_ARGS__); } } while (0)
#define STREAM_BY_LEVEL(g, d, ...) do { \
    if (g == 0) { if (d == 0) mm::mlp_stream_bf16_g0_d0(__VA_ARGS__); else if (d == 1) mm::mlp_stream_bf16_g0_d1(__VA_ARGS__); else if (d == 2) mm::mlp_stream_bf16_g0_d2(__VA_ARGS__); else mm::mlp_stream_bf16_g0_d3(__VA_ARGS__); } \
    else if (g == 1) { if (d == 0) mm::mlp_stream_bf16_g1_d0(__VA_ARGS__); else if (d == 1) mm::mlp_stream_bf16_g1_d1(__VA_ARGS__); else if (d == 2) mm::mlp_stream_bf16_g1_d2(__VA_ARGS__); else mm::mlp_stream_bf16_g1_d3(__VA_ARGS__); } \
    else { if (d == 0) mm::mlp_stream_bf16_g2_d0(__VA_ARGS__); else if (d == 1) mm::mlp_stream_bf16_g2_d1(__VA_ARGS__); else if (d == 2) mm::mlp_stream_bf16_g2_d2(__VA_ARGS__); else mm::mlp_stream_bf16_g2_d3(__VA_ARGS__); } } while (0)

void mlp(int c, int f, bool add, int sms, bool y_is_b = false)
{
    auto h = normal(c, 1), b = normal(c, 1), nw = normal(c, 1);
    float eps = 1e-6f;
    auto wg = weights((size_t)f * c), wu = weights((size_t)f * c), wd = weights((size_t)c * f);
    int g = level_for(2L * f, sms), d = level_for(c, sms);
    if (g > 2) { printf("FAIL c %d f %d sms %d: gate/up level %d is not fused\n", c, f, sms, g); failures++; return; }
    int pairs = 4 >> g, nt = norm_threads(c);
    unsigned threads = (unsigned)(64 << g) * pairs; // 256 for levels 0..2

    // Unfused: the norm, gate_up_swiglu, gemv_vec.
    std::vector<float> h1 = h, n1(c, NAN), a1(f, NAN), y1(c, NAN);
    if (add) launch([&] { nm::add_rms_norm_f32(h1.data(), b.data(), nw.data(), 0, eps, n1.data(), c, 1); }, 1, 1, nt, 0);
    else launch([&] { nm::rms_norm_f32(h1.data(), nw.data(), 0, eps, n1.data(), c, 1); }, 1, 1, nt, 0);
    launch([&] { GATE_UP_BY_LEVEL(g, n1.data(), c, wg.data(), wu.data(), a1.data(), f); }, (unsigned)((f + pairs - 1) / pairs), 1, threads, 0);
    int rows = 8 >> d;
    launch([&] { GEMV_BY_LEVEL(d, a1.data(), wd.data(), nullptr, 0, y1.data(), f, c); }, (unsigned)((c + rows - 1) / rows), 1, 256, 0);

    // Each persistent kernel on fresh copies of the inputs (y over b when y_is_b, as the model passes the mixer's output
    // buffer as both; sk: the op's upScratch, F >= C floats), one block: it must give the three kernels' bits and leave
    // the grid barrier's arrival count at 0 (its generation moved on once).
    auto persistent = [&](const char* kernel, unsigned threads, size_t shared, auto run) {
        std::vector<float> h2 = h, n2(c, NAN), a2(f, NAN), y2(c, NAN), b2 = b, sk(std::max(c, f), NAN);
        int bar[2] = {0, 5};
        float* yp = y_is_b ? b2.data() : y2.data();
        launch([&] { run(h2.data(), add ? b2.data() : nullptr, n2.data(), a2.data(), yp, bar, sk.data()); }, 1, 1, threads, shared);
        char what[128];
        snprintf(what, sizeof what, "%s c %d f %d add %d y=b %d gate/up level %d down level %d", kernel, c, f, add, y_is_b, g, d);
        int before = failures;
        same(h1, h2, what, "h");
        same(n1, n2, what, "normed");
        same(a1, a2, what, "act");
        same(y1, y_is_b ? b2 : y2, what, "y");
        if (bar[0] != 0 || bar[1] != 6) { printf("FAIL %s: barrier state %d/%d after the launch (want 0/6)\n", what, bar[0], bar[1]); failures++; }
        printf("%s: %s\n", what, failures == before ? "same bits" : "DIFFERENT");
    };

    // mlp_decode: one block walks every virtual block.
    persistent("mlp_decode", 256, (size_t)c * 4, [&](float* hp, float* bp, float* np, float* ap, float* yp, int* bar, float* sk) {
        MLP_BY_LEVEL(g, d, hp, bp, nw.data(), 0, eps, np, nt, c, wg.data(), wu.data(), wd.data(), ap, f, yp, bar, sk); });

    // mlp_stream, a ring of 3 stages: before sm_90 the 256 consumers copy each stage themselves; with EMU_SM90 (adapt
    // --sm90) the producer warp and two consumer groups of 256 run the mbarrier protocol, one slot a group (3 / 2), so
    // every stage wraps its ring.
#ifdef EMU_SM90
    const unsigned stream_threads = 544;
#else
    const unsigned stream_threads = 256;
#endif
    const int stages = 3;
    persistent("mlp_stream", stream_threads, (size_t)stages * (16384 + 16) + (size_t)std::max(c, f) * 4,
        [&](float* hp, float* bp, float* np, float* ap, float* yp, int* bar, float* sk) {
            STREAM_BY_LEVEL(g, d, hp, bp, nw.data(), 0, eps, np, nt, c, wg.data(), wu.data(), wd.data(), ap, f, yp, bar, sk, stages); });
}

int main()
{
    // Gate/up levels 0..2 and down levels 0..3 through the SM count (the host's GemvLevel); C = 64, 896 (0.5B), 1032
    // (a multiple of 8, not of 64), 3584 (7B); F a multiple of 8, not always of the pairs; with and without a branch.
    mlp(64, 160, true, 1);           // levels g0 d0
    mlp(64, 160, false, 2);          // g0 d1
    mlp(64, 160, true, 4, true);     // g0 d2, y written over b
    mlp(896, 1216, true, 132, true); // g2 d3 (0.5B's C)
    mlp(1032, 264, true, 16);        // g1 d0
    mlp(3584, 376, true, 40);        // g2 d0 (7B's C)
    mlp(64, 1000, true, 60);         // g1 d3
    mlp(1536, 2056, true, 12, true); // g0 d0: stream stages end mid-row (gate/up 1,024 + 512 columns; down 2 × 1,024 + 8)
    printf(failures == 0 ? "all same bits\n" : "%d FAILURES\n", failures);
    return failures == 0 ? 0 : 1;
}
