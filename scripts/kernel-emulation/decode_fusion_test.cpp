// The fused decode kernels under emu.h (see run-decode-fusion.sh), with the host logic of CudaOps.GateUpSwiGlu and
// CudaOps.Rwkv7KeysValueResidual replayed in C++: each must give the bits of the unfused kernels and write every output
// (NaN-poisoned first).
#include "emu.h"
#include <random>
#include <atomic>
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
template <class T> inline T __ldg(const T* p) { return *p; }
namespace mm {
#include "matmul.inc"
}
namespace ew {
#include "elementwise.inc"
}
namespace r7 {
#include "rwkv7.inc"
}
namespace db {
#include "decode_batch.inc"
}
typedef unsigned short u16;
static std::mt19937 rng(11);
std::vector<float> normal(size_t n, float s) { std::normal_distribution<float> d(0, s); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
std::vector<float> uniform(size_t n, float lo, float hi) { std::uniform_real_distribution<float> d(lo, hi); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
u16 bf(float f) { unsigned b; memcpy(&b, &f, 4); return (u16)((b + 0x7fff + ((b >> 16) & 1)) >> 16); }
int failures = 0;
void same(const std::vector<float>& e, const std::vector<float>& a, const char* what)
{
    for (size_t i = 0; i < e.size(); i++)
        if (std::isnan(a[i]) || memcmp(&e[i], &a[i], 4) != 0) { printf("FAIL %s element %zu: %.9g vs %.9g\n", what, i, a[i], e[i]); failures++; return; }
}

// bf16 (dt 2) or f32 (dt 0) weights; sms and blocks-per-SM set the warps-per-row level as the host picks it.
void gate_up(int dt, int k, int f, int sms)
{
    auto x = normal(k, 1);
    auto g32 = normal((size_t)f * k, 0.2f), u32 = normal((size_t)f * k, 0.2f);
    std::vector<u16> g16, u16v;
    for (float v : g32) g16.push_back(bf(v));
    for (float v : u32) u16v.push_back(bf(v));
    const void* wg = dt == 2 ? (const void*)g16.data() : (const void*)g32.data();
    const void* wu = dt == 2 ? (const void*)u16v.data() : (const void*)u32.data();
    long rows = 2L * f, wanted = 8L * sms;
    int level = 0;
    while (level < 3 && (rows + (8 >> level) - 1) / (8 >> level) < wanted) level++;
    int perBlock = 8 >> level;
    std::vector<float> gate(f, NAN), up(f, NAN), y(f, NAN);
    const void* none = nullptr;
    auto group = [&] {
        launch([&] {
            if (dt == 2) { if (level == 0) mm::gemv_group_bf16_vec1(x.data(), k, wg, none, 0, gate.data(), f, wu, none, 0, up.data(), f, none, none, 0, nullptr, 0);
                else if (level == 1) mm::gemv_group_bf16_vec2(x.data(), k, wg, none, 0, gate.data(), f, wu, none, 0, up.data(), f, none, none, 0, nullptr, 0);
                else if (level == 2) mm::gemv_group_bf16_vec4(x.data(), k, wg, none, 0, gate.data(), f, wu, none, 0, up.data(), f, none, none, 0, nullptr, 0);
                else mm::gemv_group_bf16_vec8(x.data(), k, wg, none, 0, gate.data(), f, wu, none, 0, up.data(), f, none, none, 0, nullptr, 0); }
            else { if (level == 0) mm::gemv_group_f32_vec1(x.data(), k, wg, none, 0, gate.data(), f, wu, none, 0, up.data(), f, none, none, 0, nullptr, 0);
                else if (level == 1) mm::gemv_group_f32_vec2(x.data(), k, wg, none, 0, gate.data(), f, wu, none, 0, up.data(), f, none, none, 0, nullptr, 0);
                else if (level == 2) mm::gemv_group_f32_vec4(x.data(), k, wg, none, 0, gate.data(), f, wu, none, 0, up.data(), f, none, none, 0, nullptr, 0);
                else mm::gemv_group_f32_vec8(x.data(), k, wg, none, 0, gate.data(), f, wu, none, 0, up.data(), f, none, none, 0, nullptr, 0); }
        }, (unsigned)((rows + perBlock - 1) / perBlock), 1, 256, 0);
    };
    group();
    launch([&] { ew::swiglu_f32(gate.data(), up.data(), gate.data(), f); }, (f + 255) / 256, 1, 256, 0);
    int pairs = level < 3 ? 4 >> level : 1;
    unsigned threads = (unsigned)(64 << level) * pairs;
    launch([&] {
        if (dt == 2) { if (level == 0) mm::gate_up_swiglu_bf16_vec1(x.data(), k, wg, wu, y.data(), f);
            else if (level == 1) mm::gate_up_swiglu_bf16_vec2(x.data(), k, wg, wu, y.data(), f);
            else if (level == 2) mm::gate_up_swiglu_bf16_vec4(x.data(), k, wg, wu, y.data(), f);
            else mm::gate_up_swiglu_bf16_vec8(x.data(), k, wg, wu, y.data(), f); }
        else { if (level == 0) mm::gate_up_swiglu_f32_vec1(x.data(), k, wg, wu, y.data(), f);
            else if (level == 1) mm::gate_up_swiglu_f32_vec2(x.data(), k, wg, wu, y.data(), f);
            else if (level == 2) mm::gate_up_swiglu_f32_vec4(x.data(), k, wg, wu, y.data(), f);
            else mm::gate_up_swiglu_f32_vec8(x.data(), k, wg, wu, y.data(), f); }
    }, (unsigned)((f + pairs - 1) / pairs), 1, threads, 0);
    char what[96];
    snprintf(what, sizeof what, "gate_up_swiglu dt %d k %d f %d level %d", dt, k, f, level);
    int before = failures;
    same(gate, y, what);
    printf("%s: %s\n", what, failures == before ? "same bits" : "DIFFERENT");
}

void keys(int t, int heads, int n, int balanced, int residual)
{
    int a = heads * n;
    auto k = normal((size_t)t * a, 1);
    for (int i = 0; i < n; i++) k[i] = 0;
    auto w = uniform((size_t)t * a, 0.55f, 1), ic = uniform((size_t)t * a, 0, 1);
    auto kk = uniform(a, 0.5f, 1.2f), ka = uniform(a, 0.5f, 1.5f);
    auto v = normal((size_t)t * a, 1), first = normal((size_t)t * a, 1), nu = uniform((size_t)t * a, 0, 1);
    size_t sz = (size_t)t * a;
    std::vector<float> rem(sz, NAN), rep(sz, NAN), til(sz, NAN), v1 = v;
    std::vector<float> rem2(sz, NAN), rep2(sz, NAN), til2(sz, NAN), v2 = v;
    int warps = t * heads;
    launch([&] { r7::rwkv7_keys_f32(k.data(), w.data(), ic.data(), kk.data(), 0, ka.data(), 0, t, a, n, balanced, rem.data(), rep.data(), til.data()); },
        (unsigned)((warps * 32 + 127) / 128), 1, 128, 0);
    if (residual) launch([&] { r7::rwkv7_value_residual_f32(v1.data(), first.data(), nu.data(), v1.data(), (long long)sz); }, (unsigned)((sz + 255) / 256), 1, 256, 0);
    launch([&] { r7::rwkv7_keys_vres_f32(k.data(), w.data(), ic.data(), kk.data(), 0, ka.data(), 0, t, a, n, balanced, rem2.data(), rep2.data(), til2.data(),
        v2.data(), residual ? first.data() : nullptr, residual ? nu.data() : nullptr, residual); }, (unsigned)warps, 1, 32, 0);
    char what[96];
    snprintf(what, sizeof what, "rwkv7_keys_vres t %d heads %d n %d balanced %d residual %d", t, heads, n, balanced, residual);
    int before = failures;
    same(rem, rem2, what); same(rep, rep2, what); same(til, til2, what); same(v1, v2, what);
    printf("%s: %s\n", what, failures == before ? "same bits" : "DIFFERENT");
}

// wkv7_decode_f32 (one sequence) and wkv7_decode_rows_f32 (`rows` sequences) with a gate (IOps.Wkv7DecodeScaleGate)
// against the same kernel without one, then scale_multiply_f32 on y: y and the updated states must have the same bits.
void wkv7_scale_gate(int rows, int heads, int n, bool single)
{
    int a = heads * n;
    size_t sz = (size_t)rows * a, ss = (size_t)heads * n * n;
    auto r = normal(sz, 1), w = uniform(sz, 0.545f, 1), k = normal(sz, 0.3f), v = normal(sz, 1), g = normal(sz, 1);
    auto kap = normal(sz, 1), ic = uniform(sz, 0, 1);
    std::vector<float> rem(sz), rep(sz);
    for (size_t p = 0; p < sz; p += n)
    {
        double norm = 0;
        for (int i = 0; i < n; i++) norm += (double)kap[p + i] * kap[p + i];
        norm = sqrt(norm);
        for (int i = 0; i < n; i++) { rem[p + i] = (float)(-kap[p + i] / norm); rep[p + i] = (float)(kap[p + i] / norm * ic[p + i]); }
    }
    auto s0 = normal(ss * rows, 0.5f);
    float scale = 1.f / sqrtf((float)n);
    std::vector<float> st1 = s0, st2 = s0, y1(sz, NAN), y2(sz, NAN);
    long long warps = (long long)rows * heads * n;
    unsigned blocks = (unsigned)((warps * 32 + 255) / 256);
    auto run = [&](std::vector<float>& st, std::vector<float>& y, float s, const float* gate) {
        if (single)
            launch([&] { r7::wkv7_decode_f32(r.data(), w.data(), k.data(), v.data(), rem.data(), rep.data(), st.data(), heads, n, y.data(), s, gate); },
                blocks, 1, 256, 0);
        else
        {
            db::DecodeTable table{};
            for (int b = 0; b < rows; b++) table.first[b] = (unsigned long long)(st.data() + ss * b);
            launch([&] { db::wkv7_decode_rows_f32(r.data(), w.data(), k.data(), v.data(), rem.data(), rep.data(), rows, heads, n, table, y.data(), s, gate); },
                blocks, 1, 256, 0);
        }
    };
    run(st1, y1, 1.f, nullptr);
    launch([&] { ew::scale_multiply_f32(y1.data(), scale, g.data(), y1.data(), (long long)sz); }, (unsigned)((sz + 255) / 256), 1, 256, 0);
    run(st2, y2, scale, g.data());
    char what[96];
    snprintf(what, sizeof what, "%s scale+gate rows %d heads %d n %d", single ? "wkv7_decode_f32" : "wkv7_decode_rows_f32", rows, heads, n);
    int before = failures;
    same(y1, y2, what); same(st1, st2, what);
    printf("%s: %s\n", what, failures == before ? "same bits" : "DIFFERENT");
}

// rwkv7_rope_keys_rows_f32 (rwkv7.cu) against rope_expand_rows_f32 (decode_batch.cu) then rwkv7_keys_vres_f32 on the
// expanded k and v, with CudaOps' launch geometry (a 32-thread block per row and query head; the unfused kernels as
// CudaOps launches them). recorded: one row whose position is split between the table and a step-buffer offset.
void rope_keys(int rows, int heads, int kv_heads, int n, int balanced, int residual, bool recorded)
{
    int a = heads * n, kvw = kv_heads * n, groups = heads / kv_heads;
    size_t sz = (size_t)rows * a, kvsz = (size_t)rows * kvw;
    auto r = normal(sz, 1), k = normal(kvsz, 1), v = normal(kvsz, 1);
    for (int i = 0; i < n; i++) k[i] = 0;
    auto w = uniform(sz, 0.55f, 1), ic = uniform(sz, 0, 1), kk = uniform(a, 0.5f, 1.2f), ka = uniform(a, 0.5f, 1.5f);
    auto first = normal(sz, 1), nu = uniform(sz, 0, 1);
    std::vector<int> positions(rows);
    for (int b = 0; b < rows; b++) positions[b] = b == 0 ? 5 : b == 1 ? 100003 : (b * 7919) % 120000;
    float theta = 1e6f;
    // Unfused.
    auto r1 = r, k1 = k;
    std::vector<float> kh1(sz, NAN), vh1(sz, NAN), rem1(sz, NAN), rep1(sz, NAN), til1(sz, NAN);
    db::DecodeTable dt{};
    for (int b = 0; b < rows; b++) dt.value[b] = positions[b];
    long long pairs = (long long)rows * heads * (n / 2);
    launch([&] { db::rope_expand_rows_f32(r1.data(), k1.data(), v.data(), kh1.data(), vh1.data(), rows, kv_heads, groups, n, dt, theta); },
        (unsigned)((pairs + 255) / 256), 1, 256, 0);
    launch([&] { r7::rwkv7_keys_vres_f32(kh1.data(), w.data(), ic.data(), kk.data(), 0, ka.data(), 0, rows, a, n, balanced, rem1.data(),
        rep1.data(), til1.data(), vh1.data(), residual ? first.data() : nullptr, residual ? nu.data() : nullptr, residual); },
        (unsigned)(rows * heads), 1, 32, 0);
    // Fused.
    auto r2 = r, k2 = k;
    std::vector<float> kh2(sz, NAN), vh2(sz, NAN), rem2(sz, NAN), rep2(sz, NAN), til2(sz, NAN);
    r7::RowPositions rp{};
    int step = 0;
    for (int b = 0; b < rows; b++) rp.value[b] = positions[b];
    if (recorded) { step = positions[0] - 2; rp.value[0] = 2; }
    launch([&] { r7::rwkv7_rope_keys_rows_f32(r2.data(), k2.data(), v.data(), kh2.data(), vh2.data(), rows, kv_heads, groups, n, rp,
        recorded ? &step : nullptr, theta, w.data(), ic.data(), kk.data(), 0, ka.data(), 0, balanced, rem2.data(), rep2.data(), til2.data(),
        residual ? first.data() : nullptr, residual ? nu.data() : nullptr, residual); }, (unsigned)(rows * heads), 1, 32, 0);
    char what[128];
    snprintf(what, sizeof what, "rwkv7_rope_keys_rows rows %d heads %d kv %d n %d balanced %d residual %d recorded %d", rows, heads, kv_heads, n,
        balanced, residual, (int)recorded);
    int before = failures;
    same(r1, r2, what); same(kh1, kh2, what); same(vh1, vh2, what); same(rem1, rem2, what); same(rep1, rep2, what); same(til1, til2, what);
    same(k, k2, what); // k is only read
    printf("%s: %s\n", what, failures == before ? "same bits" : "DIFFERENT");
}

// rwkv7_rope_keys_wkv7_rows_f32 (decode_batch.cu) against rwkv7_rope_keys_rows_f32 then wkv7_decode_f32 (one row) or
// wkv7_decode_rows_f32 with the scale and gate, as CudaOps launches them (IOps.Rwkv7RopeKeysWkv7Rows: a block of
// RKW_ROWS warps per row, head and 8 value rows). y, vh and the states must have the same bits; k is only read.
void rope_keys_wkv7(int rows, int heads, int kv_heads, int n, int balanced, int residual, bool recorded)
{
    int a = heads * n, kvw = kv_heads * n, groups = heads / kv_heads;
    size_t sz = (size_t)rows * a, kvsz = (size_t)rows * kvw, ss = (size_t)heads * n * n;
    auto r = normal(sz, 1), k = normal(kvsz, 0.3f), v = normal(kvsz, 1), g = normal(sz, 1);
    for (int i = 0; i < n; i++) k[i] = 0;
    auto w = uniform(sz, 0.545f, 1), ic = uniform(sz, 0, 1), kk = uniform(a, 0.5f, 1.2f), ka = uniform(a, 0.5f, 1.5f);
    auto first = normal(sz, 1), nu = uniform(sz, 0, 1);
    auto s0 = normal(ss * rows, 0.5f);
    std::vector<int> positions(rows);
    for (int b = 0; b < rows; b++) positions[b] = b == 0 ? 5 : b == 1 ? 100003 : (b * 7919) % 120000;
    float theta = 1e6f, scale = 1.f / sqrtf((float)n);
    int step = 0;
    // Unfused: the two launches of the composition.
    auto r1 = r, k1 = k, st1 = s0;
    std::vector<float> kh1(sz, NAN), vh1(sz, NAN), rem1(sz, NAN), rep1(sz, NAN), til1(sz, NAN), y1(sz, NAN);
    r7::RowPositions rp{};
    for (int b = 0; b < rows; b++) rp.value[b] = positions[b];
    if (recorded) { step = positions[0] - 2; rp.value[0] = 2; }
    launch([&] { r7::rwkv7_rope_keys_rows_f32(r1.data(), k1.data(), v.data(), kh1.data(), vh1.data(), rows, kv_heads, groups, n, rp,
        recorded ? &step : nullptr, theta, w.data(), ic.data(), kk.data(), 0, ka.data(), 0, balanced, rem1.data(), rep1.data(), til1.data(),
        residual ? first.data() : nullptr, residual ? nu.data() : nullptr, residual); }, (unsigned)(rows * heads), 1, 32, 0);
    long long warps = (long long)rows * heads * n;
    unsigned blocks = (unsigned)((warps * 32 + 255) / 256);
    db::DecodeTable table{};
    for (int b = 0; b < rows; b++) table.first[b] = (unsigned long long)(st1.data() + ss * b);
    if (rows == 1)
        launch([&] { r7::wkv7_decode_f32(r1.data(), w.data(), til1.data(), vh1.data(), rem1.data(), rep1.data(), st1.data(), heads, n, y1.data(),
            scale, g.data()); }, blocks, 1, 256, 0);
    else
        launch([&] { db::wkv7_decode_rows_f32(r1.data(), w.data(), til1.data(), vh1.data(), rem1.data(), rep1.data(), rows, heads, n, table,
            y1.data(), scale, g.data()); }, blocks, 1, 256, 0);
    // Fused.
    auto r2 = r, k2 = k, st2 = s0;
    std::vector<float> vh2(sz, NAN), y2(sz, NAN);
    db::DecodeTable ft{};
    for (int b = 0; b < rows; b++) { ft.first[b] = (unsigned long long)(st2.data() + ss * b); ft.value[b] = rp.value[b]; }
    int tiles = (n + 7) / 8;
    auto kernel = n <= 32 ? db::rwkv7_rope_keys_wkv7_rows_f32_e1 : n <= 64 ? db::rwkv7_rope_keys_wkv7_rows_f32_e2
        : n <= 128 ? db::rwkv7_rope_keys_wkv7_rows_f32_e4 : db::rwkv7_rope_keys_wkv7_rows_f32_e8;
    launch([&] { kernel(r2.data(), k2.data(), v.data(), vh2.data(), rows, kv_heads, groups, n, ft,
        recorded ? &step : nullptr, theta, w.data(), ic.data(), kk.data(), 0, ka.data(), 0, balanced,
        residual ? first.data() : nullptr, residual ? nu.data() : nullptr, residual, y2.data(), scale, g.data()); },
        (unsigned)(rows * heads * tiles), 1, 256, 0);
    char what[128];
    snprintf(what, sizeof what, "rwkv7_rope_keys_wkv7_rows rows %d heads %d kv %d n %d balanced %d residual %d recorded %d", rows, heads,
        kv_heads, n, balanced, residual, (int)recorded);
    int before = failures;
    same(y1, y2, what); same(vh1, vh2, what); same(st1, st2, what);
    same(k, k2, what); same(r, r2, what); // only read
    printf("%s: %s\n", what, failures == before ? "same bits" : "DIFFERENT");
}

int main()
{
    // Levels 0..3: one SM gives level 0 for big F; many SMs push small F to 8 warps a row.
    gate_up(2, 896, 40, 1);
    gate_up(2, 256, 200, 132);
    gate_up(2, 136, 64, 132);
    gate_up(0, 64, 33, 4);
    gate_up(0, 128, 200, 132);
    gate_up(2, 64, 600, 40);
    gate_up(2, 256, 200, 10);
    keys(1, 4, 128, 1, 1);
    keys(1, 14, 64, 0, 1);
    keys(1, 3, 8, 1, 0);
    keys(1, 2, 256, 0, 1);
    keys(3, 2, 40, 0, 1);
    keys(2, 3, 96, 1, 0);
    wkv7_scale_gate(1, 4, 128, true);
    wkv7_scale_gate(1, 3, 64, true);
    wkv7_scale_gate(1, 2, 40, true);
    wkv7_scale_gate(1, 1, 256, true);
    wkv7_scale_gate(1, 4, 128, false);
    wkv7_scale_gate(3, 2, 64, false);
    wkv7_scale_gate(5, 2, 40, false);
    wkv7_scale_gate(2, 1, 256, false);
    rope_keys(1, 28, 4, 128, 1, 1, false);
    rope_keys(1, 28, 4, 128, 1, 1, true);
    rope_keys(1, 14, 2, 64, 1, 0, false);
    rope_keys(1, 2, 2, 64, 0, 1, true);
    rope_keys(3, 4, 2, 128, 0, 0, false);
    rope_keys(3, 7, 1, 40, 1, 1, false);
    rope_keys(2, 2, 1, 8, 0, 1, false);
    rope_keys(2, 2, 1, 256, 1, 1, false);
    rope_keys_wkv7(1, 28, 4, 128, 1, 1, false);
    rope_keys_wkv7(1, 28, 4, 128, 1, 1, true);
    rope_keys_wkv7(1, 14, 2, 64, 1, 0, true);
    rope_keys_wkv7(1, 2, 2, 64, 0, 1, false);
    rope_keys_wkv7(3, 4, 2, 128, 0, 0, false);
    rope_keys_wkv7(3, 7, 1, 40, 1, 1, false);
    rope_keys_wkv7(2, 2, 1, 8, 0, 1, false);
    rope_keys_wkv7(2, 2, 1, 256, 1, 1, false);
    printf(failures ? "FAILED (%d)\n" : "all same bits\n", failures);
    return failures ? 1 : 0;
}
