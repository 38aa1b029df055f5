// The fused forward kernels (IOps.RopeExpand, RopeExpandRows, ExpandKv, ScaleMultiply) under emu.h (see run.sh)
// against the unfused kernels they replace, run the same way: rope_f32 / rope_rows_f32 on r and k, then repeat_kv_f32
// on k and v; scale_f32 then multiply_f32. Every output is poisoned with NaN first and must match bit for bit.
#include "emu.h"
#include <cstdint>
#include <random>
namespace at {
#include "attention.inc"
}
namespace db {
#include "decode_batch.inc"
}
namespace el {
#include "elementwise.inc"
}
typedef long long i64;
static std::mt19937 rng(7);
std::vector<float> normal(size_t n) { std::normal_distribution<float> d(0, 1); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
std::vector<float> nans(size_t n) { return std::vector<float>(n, NAN); }
int failures = 0;
void same(const char* what, const std::vector<float>& e, const std::vector<float>& a)
{
    int bad = 0;
    for (size_t i = 0; i < e.size(); i++)
        if (std::isnan(a[i]) || memcmp(&e[i], &a[i], 4) != 0) { if (bad < 3) printf("  %s[%zu] expected %.9g got %.9g\n", what, i, e[i], a[i]); bad++; }
    printf("%s %s: %d/%zu differ\n", bad ? "FAIL" : "ok  ", what, bad, e.size());
    if (bad) failures++;
}
// Blocks of 64 threads, at most 3 blocks: the grid-stride loops run several rounds on the larger shapes.
unsigned blocks(i64 n) { return (unsigned)std::min<i64>(3, (n + 63) / 64); }

void rope_expand(int T, int H, int KVH, int N, int start, bool rows, bool expand, bool perKv = false)
{
    int G = H / KVH, A = H * N, KV = KVH * N;
    float theta = 1e6f;
    auto r = normal((size_t)T * A), k = normal((size_t)T * KV), v = normal((size_t)T * KV);
    auto r1 = r, k1 = k, kh1 = nans((size_t)T * A), vh1 = nans((size_t)T * A);
    auto r2 = r, k2 = k, kh2 = nans((size_t)T * A), vh2 = nans((size_t)T * A);
    db::DecodeTable table{};
    for (int b = 0; b < T && b < 64; b++) table.value[b] = start + 9973 * b + 1;
    int offset = 3;  // a recorded step's position in the step buffer
    i64 pr = (i64)T * H * (N / 2), pk = (i64)T * KVH * (N / 2), pe = (i64)T * A;
    if (rows)
    {
        launch([&] { db::rope_rows_f32(r1.data(), T, H, N, table, theta); }, blocks(pr), 1, 64, 0);
        launch([&] { db::rope_rows_f32(k1.data(), T, KVH, N, table, theta); }, blocks(pk), 1, 64, 0);
    }
    else
    {
        launch([&] { at::rope_f32(r1.data(), T, H, N, start, &offset, theta); }, blocks(pr), 1, 64, 0);
        launch([&] { at::rope_f32(k1.data(), T, KVH, N, start, &offset, theta); }, blocks(pk), 1, 64, 0);
    }
    if (expand)
    {
        launch([&] { at::repeat_kv_f32(k1.data(), T, KVH, N, G, kh1.data()); }, blocks(pe), 1, 64, 0);
        launch([&] { at::repeat_kv_f32(v.data(), T, KVH, N, G, vh1.data()); }, blocks(pe), 1, 64, 0);
    }
    float* kh = expand ? kh2.data() : nullptr;
    float* vh = expand ? vh2.data() : nullptr;
    const float* vv = expand ? v.data() : nullptr;
    if (rows) launch([&] { db::rope_expand_rows_f32(r2.data(), k2.data(), vv, kh, vh, T, KVH, G, N, table, theta); }, blocks(pr), 1, 64, 0);
    else if (perKv) launch([&] { at::rope_expand_f32(r2.data(), k2.data(), vv, kh, vh, T, KVH, G, N, start, &offset, theta, G); }, blocks(pk), 1, 64, 0);
    else launch([&] { at::rope_expand_f32(r2.data(), k2.data(), vv, kh, vh, T, KVH, G, N, start, &offset, theta, 1); }, blocks(pr), 1, 64, 0);
    char name[160];
    snprintf(name, sizeof name, "%s T=%d H=%d KVH=%d N=%d start=%d%s", rows ? "rope_expand_rows" : perKv ? "rope_expand (per group)" : "rope_expand", T, H, KVH, N, start,
        expand ? "" : " (RoPE only)");
    std::string s = name;
    if (r1 == r)
    {
        // Positions past 0 rotate: equal outputs of two kernels that did nothing would prove nothing.
        printf("FAIL %s: r not rotated\n", name);
        failures++;
    }
    same((s + " r").c_str(), r1, r2);
    same((s + " k").c_str(), k1, k2);
    if (expand)
    {
        same((s + " kh").c_str(), kh1, kh2);
        same((s + " vh").c_str(), vh1, vh2);
    }
}

void expand_kv(int T, int H, int KVH, int N)
{
    int G = H / KVH;
    auto k = normal((size_t)T * KVH * N), v = normal((size_t)T * KVH * N);
    auto kh1 = nans((size_t)T * H * N), vh1 = nans((size_t)T * H * N), kh2 = kh1, vh2 = vh1;
    i64 n = (i64)T * H * N;
    launch([&] { at::repeat_kv_f32(k.data(), T, KVH, N, G, kh1.data()); }, blocks(n), 1, 64, 0);
    launch([&] { at::repeat_kv_f32(v.data(), T, KVH, N, G, vh1.data()); }, blocks(n), 1, 64, 0);
    launch([&] { at::expand_kv_f32(k.data(), v.data(), T, KVH, N, G, kh2.data(), vh2.data()); }, blocks(n), 1, 64, 0);
    char name[96];
    snprintf(name, sizeof name, "expand_kv T=%d H=%d KVH=%d N=%d", T, H, KVH, N);
    same((std::string(name) + " kh").c_str(), kh1, kh2);
    same((std::string(name) + " vh").c_str(), vh1, vh2);
}

void scale_multiply(i64 n)
{
    auto a = normal(n), b = normal(n);
    float s = 1.f / std::sqrt(64.f);
    auto y1 = nans(n), y2 = a;  // y2: in place over a, as RAD-RWKV7's output step
    launch([&] { el::scale_f32(a.data(), s, y1.data(), n); }, blocks(n), 1, 64, 0);
    launch([&] { el::multiply_f32(y1.data(), b.data(), y1.data(), n); }, blocks(n), 1, 64, 0);
    launch([&] { el::scale_multiply_f32(y2.data(), s, b.data(), y2.data(), n); }, blocks(n), 1, 64, 0);
    same("scale_multiply", y1, y2);
}

// swiglu_bf16_f32 / scale_multiply_bf16_f32 (prefill: fp32 output plus its bf16 copy for the next cuBLASLt GEMM)
// against swiglu_f32 / scale_multiply_f32 and f32_to_bf16_bits (what f32_to_bf16 writes), with the host's vec choice:
// 1 on aligned rows (float4 steps and the n % 4 tail), 0 on rows 8 bytes past a 16-byte boundary.
void with_bf16_copy(bool swiglu, i64 n, bool aligned)
{
    size_t shift = aligned ? 0 : 2;  // floats: 8 bytes off
    auto a = normal(n + shift), b = normal(n + shift);
    float s = 0.125f;
    auto y1 = nans(n + shift);
    std::vector<float> y2 = a;  // in place over the first operand, as the model calls both
    std::vector<unsigned short> yb((size_t)n + 4, 0xFFFF);
    float *pa = a.data() + shift, *pb = b.data() + shift, *p1 = y1.data() + shift, *p2 = y2.data() + shift;
    int vec = aligned ? 1 : 0;
    if (swiglu)
    {
        launch([&] { el::swiglu_f32(pa, pb, p1, n); }, blocks(n), 1, 64, 0);
        launch([&] { el::swiglu_bf16_f32(p2, pb, p2, yb.data(), n, vec); }, blocks(n), 1, 64, 0);
    }
    else
    {
        launch([&] { el::scale_multiply_f32(pa, s, pb, p1, n); }, blocks(n), 1, 64, 0);
        launch([&] { el::scale_multiply_bf16_f32(p2, s, pb, p2, yb.data(), n, vec); }, blocks(n), 1, 64, 0);
    }
    char name[96];
    snprintf(name, sizeof name, "%s_bf16_f32 n=%lld%s", swiglu ? "swiglu" : "scale_multiply", n, aligned ? "" : " (vec 0)");
    std::vector<float> e(p1, p1 + n), got(p2, p2 + n);
    same(name, e, got);
    int bad = 0;
    for (i64 i = 0; i < n; i++)
        if (yb[i] != (unsigned short)el::f32_to_bf16_bits(p1[i])) bad++;
    for (i64 i = n; i < n + 4; i++)
        if (yb[i] != 0xFFFF) bad++;  // nothing past the end
    printf("%s %s copy: %d/%lld differ\n", bad ? "FAIL" : "ok  ", name, bad, n);
    if (bad) failures++;
}

int main()
{
    int shapes[][2] = {{2, 2}, {6, 2}, {14, 2}, {28, 4}};
    for (int T : {1, 2, 5})
        for (auto& hk : shapes)
            for (int N : {64, 128})
                for (int start : {0, 100000})
                {
                    rope_expand(T, hk[0], hk[1], N, start, false, true);
                    rope_expand(T, hk[0], hk[1], N, start, true, true);
                    rope_expand(T, hk[0], hk[1], N, start, false, true, true);
                }
    rope_expand(3, 14, 2, 64, 4093, false, false);
    rope_expand(3, 14, 2, 64, 4093, true, false);
    rope_expand(3, 14, 2, 64, 4093, false, false, true);
    expand_kv(1, 14, 2, 64);
    expand_kv(5, 28, 4, 128);
    scale_multiply(1);
    scale_multiply(896);
    scale_multiply(1000);
    for (bool swiglu : {true, false})
        for (i64 n : {1, 4, 6, 250, 1000, 4250})
        {
            with_bf16_copy(swiglu, n, true);
            with_bf16_copy(swiglu, n, false);
        }
    printf(failures ? "%d FAILED\n" : "all passed\n", failures);
    return failures ? 1 : 0;
}
