// attention_kv_to_bf16 + attention_prefill_tc_{16,32,64,128} (kernels/attention.cu) under emu.h (see
// run-attention-tc.sh): the host's launch geometry (the conversion's grid-stride loop, then grid (heads, ⌈T/64⌉),
// 128 threads, two stages of dynamic shared memory) against float64 causal attention of the
// unrounded fp32 inputs, over T = 1 … 130, cache offsets 0 and > 0, GQA groups 1, 2 and 7, several heads. y is
// NaN-poisoned (every element of the T rows must be written) with one sentinel row past the last token (must stay
// untouched); the caches have spare rows of large values past start + T (must be ignored).
#include "emu.h"
#include <random>
#include <string>
namespace at {
#include "attention.inc"
}
static std::mt19937 rng(7);
std::vector<float> normal(size_t n, float s) { std::normal_distribution<float> d(0, s); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
int failures = 0, cases = 0;
double worst = 0; // max |error| / (1 + |expected|) over every case

// The bound the C# conformance test uses (Tolerances.Bf16AttentionAbsolute / Bf16AttentionRelative).
const double absolute_bound = 1.0 / 32, relative_bound = 1.0 / 64;

void run(int t, int start, int heads, int kv_heads, int n)
{
    int width = heads * n, kv_width = kv_heads * n, length = start + t;
    auto q = normal((size_t)t * width, 1);
    auto k = normal((size_t)(length + 3) * kv_width, 1), v = normal((size_t)(length + 3) * kv_width, 1);
    for (size_t i = (size_t)length * kv_width; i < k.size(); i++) { k[i] *= 100; v[i] *= 100; } // spare rows
    std::vector<float> y((size_t)(t + 1) * width, NAN);
    for (size_t i = (size_t)t * width; i < y.size(); i++) y[i] = 12345.f; // the row past the last token
    float scale = 1.f / std::sqrt((float)n);
    // The host (CudaOps.Attention): K and V to bf16 (grid-stride, 256 threads; a few blocks here), then the attention.
    int padded = (length + 63) / 64 * 64;
    std::vector<unsigned> kb((size_t)padded * kv_width / 2, 0xffffffffu), vtb((size_t)kv_width * padded / 2, 0xffffffffu);
    long items = (long)padded * (kv_width / 2);
    launch([&] { at::attention_kv_to_bf16(k.data(), v.data(), length, padded, kv_width, kb.data(), vtb.data()); },
        (unsigned)std::min(3L, (items + 255) / 256), 1, 256, 0);
    for (size_t i = 0; i < kb.size(); i++)
        if (kb[i] == 0xffffffffu || vtb[i] == 0xffffffffu) { if (failures++ < 10) printf("FAIL T=%d N=%d: bf16 word %zu not written\n", t, n, i); return; }
    unsigned blocks = (unsigned)((t + 63) / 64);
    size_t shared = 2 * (64 * (n / 2 + 4) + n * 36) * 4;
    // The bf16 copy of y (every other case; null in the rest, as the host passes when it keeps none).
    bool copy = cases % 2 == 0;
    std::vector<unsigned> yb((size_t)(t + 1) * width / 2, 0xdeadbeefu);
    unsigned* pyb = copy ? yb.data() : nullptr;
    launch([&] {
        if (n == 16) at::attention_prefill_tc_16(q.data(), kb.data(), vtb.data(), padded, t, heads, kv_heads, start, scale, y.data(), pyb);
        else if (n == 32) at::attention_prefill_tc_32(q.data(), kb.data(), vtb.data(), padded, t, heads, kv_heads, start, scale, y.data(), pyb);
        else if (n == 64) at::attention_prefill_tc_64(q.data(), kb.data(), vtb.data(), padded, t, heads, kv_heads, start, scale, y.data(), pyb);
        else at::attention_prefill_tc_128(q.data(), kb.data(), vtb.data(), padded, t, heads, kv_heads, start, scale, y.data(), pyb);
    }, (unsigned)heads, blocks, 128, shared);
    if (copy)
    {
        // Every word of the first T rows is f32_to_bf16_pairs' packing of y; the row past them is untouched.
        for (size_t i = 0; i < yb.size(); i++)
        {
            unsigned want = i < (size_t)t * width / 2 ? at::f32_to_bf16_bits(y[2 * i]) | (at::f32_to_bf16_bits(y[2 * i + 1]) << 16) : 0xdeadbeefu;
            if (yb[i] != want) { if (failures++ < 10) printf("FAIL T=%d N=%d: bf16 copy word %zu is %08x, not %08x\n", t, n, i, yb[i], want); return; }
        }
    }
    cases++;
    int groups = heads / kv_heads;
    double case_worst = 0;
    for (int r = 0; r < t; r++)
        for (int h = 0; h < heads; h++)
        {
            int kvh = h / groups, position = start + r;
            std::vector<double> s(position + 1);
            double top = -INFINITY;
            for (int j = 0; j <= position; j++)
            {
                double dot = 0;
                for (int i = 0; i < n; i++) dot += (double)q[(size_t)r * width + h * n + i] * k[(size_t)j * kv_width + kvh * n + i];
                s[j] = dot / std::sqrt((double)n);
                top = std::max(top, s[j]);
            }
            double total = 0;
            for (auto& x : s) total += (x = std::exp(x - top));
            for (int i = 0; i < n; i++)
            {
                double e = 0;
                for (int j = 0; j <= position; j++) e += s[j] * v[(size_t)j * kv_width + kvh * n + i];
                e /= total;
                float a = y[(size_t)r * width + h * n + i];
                double err = std::fabs(a - e);
                if (!(err <= absolute_bound + relative_bound * std::fabs(e)))
                {
                    if (failures++ < 10) printf("FAIL T=%d start=%d heads=%d/%d N=%d row %d head %d dim %d: %.6g vs %.6g\n", t, start, heads, kv_heads, n, r, h, i, a, e);
                    return;
                }
                case_worst = std::max(case_worst, err / (1 + std::fabs(e)));
            }
        }
    for (size_t i = (size_t)t * width; i < y.size(); i++)
        if (y[i] != 12345.f) { if (failures++ < 10) printf("FAIL T=%d N=%d: the row past the last token was written\n", t, n); return; }
    worst = std::max(worst, case_worst);
}

int main(int argc, char** argv)
{
    if (argc > 1 && std::string(argv[1]) == "quick") // a few shapes (for checking that a broken kernel fails)
    {
        run(70, 5, 7, 1, 64);
        run(65, 63, 2, 1, 128);
        printf("quick: %d cases, %d failures, worst %.3g\n", cases, failures, worst);
        return failures ? 1 : 0;
    }


    // Every T from 1 to 130 at N = 64 (GQA 7, a cache offset), then the tile edges at both model head dims, GQA 1/2/7,
    // offsets 0, 1, 63 and 70 (not tile multiples), and the small head dims (the golden fixtures' N = 16).
    for (int t = 1; t <= 130; t++) run(t, 5, 7, 1, 64);
    int edges[] = {1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 130};
    for (int n : {64, 128})
        for (int start : {0, 70})
            for (int t : edges) run(t, start, n == 64 ? 14 : 7, n == 64 ? 2 : 1, n);
    for (int t : {63, 64, 65, 128}) run(t, 1, 4, 4, 128);
    for (int t : {2, 65, 129}) run(t, 63, 3, 3, 64);
    for (int t : {1, 7, 64, 66}) { run(t, 0, 4, 2, 16); run(t, 9, 4, 2, 32); }
    printf("attention_prefill_tc: %d cases, %d failures; worst |error| / (1 + |expected|) = %.3g (bound %.3g + %.3g·|expected|)\n",
        cases, failures, worst, absolute_bound, relative_bound);
    return failures ? 1 : 0;
}
