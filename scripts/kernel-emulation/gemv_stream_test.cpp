// gemv_stream_{bf16,f16} (kernels/matmul.cu) under emu.h (see run-gemv-stream.sh) against a float64 reference with the
// host's geometry (CudaOps.GemvStreamGeometry, for a made-up GPU of `sms` SMs): rows per block and blocks, chunk
// streams crossing rows (K < 2048: a thread's step skips rows; K ≥ 2048: every thread touches every row), bias or
// none. Outputs NaN-poisoned with a guard row past the end; run twice to check the sums do not change.
#include "emu.h"
#include <random>
template <class T> inline T __ldg(const T* p) { return *p; }
inline void __threadfence() {}
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
namespace mm {
#include "matmul.inc"
}
static std::mt19937 rng(29);
int failures = 0, cases = 0;
double worst = 0;
unsigned short bf16(float f) { unsigned u; memcpy(&u, &f, 4); u += 0x7fff + ((u >> 16) & 1); return (unsigned short)(u >> 16); }
float from_bf16(unsigned short b) { unsigned u = (unsigned)b << 16; float f; memcpy(&f, &u, 4); return f; }

void run(int m, int k, int sms, bool bias)
{
    const int stages = 6, rows_max = 24, per_sm = 4, threads = 256;
    long resident = (long)per_sm * sms;
    int rpb = (int)((m + resident - 1) / resident);
    if (rpb > rows_max) { printf("skip m=%d (more rows than resident blocks take)\n", m); return; }
    unsigned blocks = (unsigned)((m + rpb - 1) / rpb);
    size_t shared = (size_t)stages * threads * 16 + (size_t)rpb * threads * 4;
    std::normal_distribution<float> d(0, 1);
    std::vector<unsigned short> w((size_t)m * k);
    std::vector<float> x(k), b(m), wf((size_t)m * k);
    for (size_t i = 0; i < w.size(); i++) { w[i] = bf16(d(rng) * 0.05f); wf[i] = from_bf16(w[i]); }
    for (auto& v : x) v = d(rng);
    for (auto& v : b) v = d(rng);
    std::vector<float> y1(m + 1, NAN), y2(m + 1, NAN);
    y1[m] = y2[m] = 777.f;
    for (auto* y : {&y1, &y2})
        launch([&] { mm::gemv_stream_bf16(x.data(), w.data(), bias ? (const void*)b.data() : nullptr, 0, y->data(), k, m, rpb); },
            blocks, 1, threads, shared);
    cases++;
    for (int r = 0; r < m; r++)
    {
        double e = bias ? b[r] : 0;
        for (int i = 0; i < k; i++) e += (double)wf[(size_t)r * k + i] * x[i];
        double err = std::fabs(y1[r] - e) / (1 + std::fabs(e));
        if (!(err < 1e-5) || memcmp(&y1[r], &y2[r], 4) != 0)
        {
            if (failures++ < 10) printf("FAIL m=%d k=%d sms=%d row %d: %.7g vs %.7g (second run %.7g)\n", m, k, sms, r, y1[r], e, y2[r]);
            return;
        }
        worst = std::max(worst, err);
    }
    if (y1[m] != 777.f) { if (failures++ < 10) printf("FAIL m=%d k=%d: the guard past the last row was written\n", m, k); }
}

int main()
{
    // Rows per block 1 (m ≤ resident blocks), several, and the cap; K below, at and above 256 chunks (2048).
    int ks[] = {8, 64, 264, 2048, 2056, 4104};
    for (int k : ks)
        for (int m : {1, 5, 12, 13, 47, 96})
            run(m, k, 3, (m + k) % 2 == 0);
    run(288, 64, 3, true);  // 24 rows a block: the cap
    run(289, 64, 3, false); // past the cap: the host runs gemv_vec
    printf("gemv_stream: %d cases, %d failures; worst |error| / (1 + |expected|) = %.3g\n", cases, failures, worst);
    return failures ? 1 : 0;
}
