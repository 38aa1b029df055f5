// What the GEMV emulation tests share (norm_gemv_test.cpp, mlp_decode_test.cpp; include after emu.h, with EMU_SEED
// set for the random inputs): the atomics and __ldg the kernels use, matmul.cu and norms.cu in namespaces mm and nm,
// random inputs, bf16 rounding, bit-for-bit comparison, and the host's norm block size and GEMV level.
#ifndef EMU_SEED
#define EMU_SEED 5
#endif
#include <random>
#include <atomic>
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
template <class T> inline T __ldg(const T* p) { return *p; }
namespace mm {
#include "matmul.inc"
}
namespace nm {
#include "norms.inc"
}
typedef unsigned short u16;
static std::mt19937 rng(EMU_SEED);
std::vector<float> normal(size_t n, float s) { std::normal_distribution<float> d(0, s); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
u16 bf(float f) { unsigned b; memcpy(&b, &f, 4); return (u16)((b + 0x7fff + ((b >> 16) & 1)) >> 16); }
int failures = 0;
void same(const std::vector<float>& e, const std::vector<float>& a, const char* what, const char* part)
{
    for (size_t i = 0; i < e.size(); i++)
        if (std::isnan(a[i]) || memcmp(&e[i], &a[i], 4) != 0) { printf("FAIL %s %s element %zu: %.9g vs %.9g\n", what, part, i, a[i], e[i]); failures++; return; }
}

// CudaOps.NormGeometry's block size (vector path; the callers only fuse there).
int norm_threads(int c) { int needed = (c / 4 + 3) / 4; return std::clamp((needed + 31) / 32 * 32, 32, 1024); }
int level_for(long rows, int sms) { long wanted = 8L * sms; int level = 0; while (level < 3 && (rows + (8 >> level) - 1) / (8 >> level) < wanted) level++; return level; }
