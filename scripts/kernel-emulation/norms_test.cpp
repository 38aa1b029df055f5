// The norms with a bf16 copy under emu.h (see run-norms.sh): rms_norm_bf16_f32 and add_rms_norm_bf16_f32 against
// rms_norm_f32 / add_rms_norm_f32 (y, and h for the add, bit for bit) and against f32_to_bf16_pairs / f32_to_bf16 run
// on the old kernel's y (the copy, bit for bit), with the host's launch geometry: CudaOps.NormGeometry (vector path
// when C % 4 == 0 and the rows are 16-byte aligned, else the strided loop on 256 threads) and CudaOps.ToBf16 (pairs
// when T·C is even and x 8-byte aligned). Outputs NaN-poisoned (the copy 0xFFFF, with 4 guard elements past its end).
#include "emu.h"
#include <random>
template <class T> inline T __ldg(const T* p) { return *p; }
inline void __threadfence() {}
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
namespace nm {
#include "norms.inc"
}
namespace mm {
#include "matmul.inc"
}
typedef unsigned short u16;
typedef long long i64;
static std::mt19937 rng(13);
std::vector<float> normal(size_t n, float s) { std::normal_distribution<float> d(0, s); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
int failures = 0;
void same(const char* what, const float* e, const float* a, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (std::isnan(a[i]) || memcmp(&e[i], &a[i], 4) != 0) { if (bad < 3) printf("  %s[%zu] expected %.9g got %.9g\n", what, i, e[i], a[i]); bad++; }
    printf("%s %s: %zu/%zu differ\n", bad ? "FAIL" : "ok  ", what, bad, n);
    if (bad) failures++;
}

// CudaOps.NormGeometry.
void geometry(int c, bool aligned, unsigned& threads, int& vec)
{
    vec = c % 4 == 0 && aligned && c / 4 <= 4 * 1024;
    if (!vec) { threads = 256; return; }
    int needed = (c / 4 + 3) / 4;
    threads = (unsigned)std::clamp((needed + 31) / 32 * 32, 32, 1024);
}

// One case: T rows of C; add: AddRmsNorm (h += b, y = norm(h)), else RmsNorm (in place over x when inPlace);
// aligned false: every fp32 row array starts 8 bytes past a 16-byte boundary (the strided path); weights bf16 or f32.
void norm_case(int T, int C, bool add, bool inPlace, bool aligned, bool bf16Weights)
{
    size_t n = (size_t)T * C, shift = aligned ? 0 : 2;
    auto hv = normal(n + shift, 3.f), bv = normal(n + shift, 1.f), wf = normal(C, 0.2f);
    for (auto& w : wf) w += 1.f;
    std::vector<u16> wb(C);
    for (int i = 0; i < C; i++) wb[i] = (u16)mm::f32_to_bf16_bits(wf[i]);
    const void* w = bf16Weights ? (const void*)wb.data() : (const void*)wf.data();
    int dtype = bf16Weights ? 2 : 0;
    float eps = 1e-6f;
    unsigned threads;
    int vec;
    geometry(C, aligned, threads, vec);
    // Old kernel: h1 (x), y1.
    std::vector<float> h1 = hv, y1(n + shift, NAN);
    float* ph1 = h1.data() + shift;
    float* py1 = inPlace ? ph1 : y1.data() + shift;
    // New kernel: h2, y2, yb.
    std::vector<float> h2 = hv, y2(n + shift, NAN);
    float* ph2 = h2.data() + shift;
    float* py2 = inPlace ? ph2 : y2.data() + shift;
    std::vector<u16> yb(n + 4, 0xFFFF);
    const float* pb = bv.data() + shift;
    if (add)
    {
        launch([&] { nm::add_rms_norm_f32(ph1, pb, w, dtype, eps, py1, C, vec); }, T, 1, threads, 0);
        launch([&] { nm::add_rms_norm_bf16_f32(ph2, pb, w, dtype, eps, py2, yb.data(), C, vec); }, T, 1, threads, 0);
    }
    else
    {
        launch([&] { nm::rms_norm_f32(ph1, w, dtype, eps, py1, C, vec); }, T, 1, threads, 0);
        launch([&] { nm::rms_norm_bf16_f32(ph2, w, dtype, eps, py2, yb.data(), C, vec); }, T, 1, threads, 0);
    }
    // What the GEMM would have rounded: CudaOps.ToBf16 on the old kernel's y (blocks of 256 threads, at most 3).
    std::vector<u16> expected(n + 4, 0xFFFF);
    i64 count = (i64)n;
    if (count % 2 == 0 && aligned)
    {
        i64 pairs = count / 2;
        launch([&] { mm::f32_to_bf16_pairs(py1, (unsigned*)expected.data(), pairs); }, (unsigned)std::min<i64>(3, (pairs + 255) / 256), 1, 256, 0);
    }
    else
    {
        launch([&] { mm::f32_to_bf16(py1, expected.data(), count); }, (unsigned)std::min<i64>(3, (count + 255) / 256), 1, 256, 0);
    }
    char name[160];
    snprintf(name, sizeof name, "%s T=%d C=%d %s weights, vec %d%s", add ? "add_rms_norm_bf16_f32" : "rms_norm_bf16_f32", T, C,
        bf16Weights ? "bf16" : "f32", vec, inPlace ? ", in place" : "");
    std::string s = name;
    same((s + " y").c_str(), py1, py2, n);
    if (add) same((s + " h").c_str(), ph1, ph2, n);
    size_t bad = 0;
    for (size_t i = 0; i < n + 4; i++)
        if (yb[i] != expected[i]) bad++;  // past n: both still 0xFFFF (nothing written past the end)
    printf("%s %s copy vs %s: %zu/%zu differ\n", bad ? "FAIL" : "ok  ", name, count % 2 == 0 && aligned ? "f32_to_bf16_pairs" : "f32_to_bf16", bad, n);
    if (bad) failures++;
    // Equal outputs of kernels that wrote nothing would prove nothing: the old kernel must have written y.
    bool written = true;
    for (size_t i = 0; i < n; i++) written &= !std::isnan(py1[i]);
    if (!written) { printf("FAIL %s: the old kernel left NaN in y\n", name); failures++; }
}

int main()
{
    for (bool add : {false, true})
        for (int C : {64, 256, 250, 896, 3584})
            for (int T : {1, 3})
                for (bool aligned : {true, false})
                    norm_case(T, C, add, false, aligned, true);
    norm_case(5, 256, false, true, true, true);   // the final norm runs in place
    norm_case(5, 250, false, true, true, false);
    norm_case(3, 896, true, false, true, false);  // fp32 norm weights
    norm_case(3, 4100, false, false, true, true); // C = 4,100: a partial last float4 chunk per thread
    printf(failures ? "%d FAILED\n" : "all passed\n", failures);
    return failures ? 1 : 0;
}
