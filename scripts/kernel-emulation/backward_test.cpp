// Finite-difference checks of the backward kernels under emu.h (see run.sh). Shapes: T up to 40 (past the 16-step
// checkpoints), several heads, N 4–40, both key variants and the eps guard, accumulation into non-zero priors.
#include "emu.h"
#include <random>
namespace bw {
#include "backward.inc"
}
namespace mm {
#include "backward_matmul.inc"
}
namespace r6 {
#include "backward_rwkv6.inc"
}
namespace r7 {
#include "backward_rwkv7.inc"
}
namespace tr {
#include "backward_training.inc"
}
typedef long long i64;
static std::mt19937 rng(42);
std::vector<float> normal(size_t n, float s = 1) { std::normal_distribution<float> d(0, s); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
std::vector<float> uniform(size_t n, float lo, float hi) { std::uniform_real_distribution<float> d(lo, hi); std::vector<float> v(n); for (auto& x : v) x = d(rng); return v; }
std::vector<float> nans(size_t n) { return std::vector<float>(n, NAN); }
int failures = 0;
void check(const char* what, const std::vector<double>& e, const std::vector<float>& a, double rel = 1e-3)
{
    double mx = 0; for (double v : e) mx = std::max(mx, std::fabs(v));
    int bad = 0; double worst = 0;
    for (size_t i = 0; i < e.size(); i++)
    {
        double err = std::fabs(a[i] - e[i]);
        double bound = rel * std::fabs(e[i]) + rel * 0.1 * mx + 1e-30;
        if (!(err <= bound)) { if (bad < 3) printf("  %s[%zu] expected %.9g got %.9g\n", what, i, e[i], a[i]); bad++; }
        worst = std::max(worst, err / bound);
    }
    printf("%s %s: %d/%zu bad, max|e| %.3g, worst %.3g\n", bad ? "FAIL" : "ok  ", what, bad, e.size(), mx, worst);
    if (bad || mx == 0) failures++;
}
template <class F> std::vector<double> fd(std::vector<double>& x, F loss)
{
    std::vector<double> g(x.size());
    for (size_t i = 0; i < x.size(); i++) { double xi = x[i], h = 1e-6 * std::max(1.0, std::fabs(xi)); x[i] = xi + h; double p = loss(); x[i] = xi - h; double m = loss(); x[i] = xi; g[i] = (p - m) / (2 * h); }
    return g;
}
std::vector<double> D(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
double dot(const std::vector<double>& a, const std::vector<double>& b) { double s = 0; for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i]; return s; }

void wkv6(int T, int H, int N, bool fin)
{
    int A = H * N; size_t TA = (size_t)T * A, S = (size_t)H * N * N;
    auto r = normal(TA), k = normal(TA, 0.5f), v = normal(TA), w = uniform(TA, std::exp(-5.f), 1.f), s0 = normal(S), g = normal(TA), gs = normal(S);
    float scale = 1.f / std::sqrt((float)N);
    auto dr = nans(TA), dk = nans(TA), dv = nans(TA), dw = nans(TA), ds0 = nans(S);
    int chunks = (T + 15) / 16;
    std::vector<float> scratch((size_t)H * (chunks + 17) * N * N, NAN);
    launch([&] { r6::wkv6_backward_f32(r.data(), k.data(), v.data(), w.data(), s0.data(), scale, g.data(), fin ? gs.data() : nullptr,
        dr.data(), dk.data(), dv.data(), dw.data(), ds0.data(), T, H, N, scratch.data()); }, H, 1, N, (size_t)N * (N + 1) * 4);
    auto R = D(r), K = D(k), V = D(v), W = D(w), S0 = D(s0), G = D(g), GS = D(gs);
    auto L = [&] {
        std::vector<double> s = S0; double l = 0;
        for (int t = 0; t < T; t++) for (int h = 0; h < H; h++)
        {
            size_t o = (size_t)t * A + h * N; double* sh = &s[(size_t)h * N * N];
            for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) sh[i * N + j] = W[o + i] * sh[i * N + j] + K[o + i] * V[o + j];
            for (int j = 0; j < N; j++) { double y = 0; for (int i = 0; i < N; i++) y += R[o + i] * sh[i * N + j]; l += G[o + j] * scale * y; }
        }
        if (fin) l += dot(GS, s);
        return l;
    };
    char name[64]; snprintf(name, 64, "wkv6 T%d H%d N%d %s", T, H, N, fin ? "fin" : "");
    std::string n(name);
    check((n + " dr").c_str(), fd(R, L), dr); check((n + " dk").c_str(), fd(K, L), dk); check((n + " dv").c_str(), fd(V, L), dv);
    check((n + " dw").c_str(), fd(W, L), dw); check((n + " ds0").c_str(), fd(S0, L), ds0);
}

void wkv7(int T, int H, int N, bool fin)
{
    int A = H * N; size_t TA = (size_t)T * A, S = (size_t)H * N * N;
    auto r = normal(TA), w = uniform(TA, 0.545f, 1.f), k = normal(TA, 0.3f), v = normal(TA), kap = normal(TA), iclr = uniform(TA, 0, 1);
    std::vector<float> a(TA), b(TA);
    for (size_t p = 0; p < (size_t)T * H; p++) { double nr = 0; for (int i = 0; i < N; i++) nr += (double)kap[p * N + i] * kap[p * N + i]; nr = std::sqrt(nr);
        for (int i = 0; i < N; i++) { a[p * N + i] = -kap[p * N + i] / nr; b[p * N + i] = kap[p * N + i] / nr * iclr[p * N + i]; } }
    auto s0 = normal(S, 0.5f), g = normal(TA), gs = normal(S);
    auto dr = nans(TA), dw = nans(TA), dk = nans(TA), dv = nans(TA), da = nans(TA), db = nans(TA), ds0 = nans(S);
    int chunks = (T + 15) / 16;
    std::vector<float> scratch((size_t)H * (chunks + 17) * N * N, NAN);
    launch([&] { r7::wkv7_backward_f32(r.data(), w.data(), k.data(), v.data(), a.data(), b.data(), s0.data(), g.data(), fin ? gs.data() : nullptr,
        dr.data(), dw.data(), dk.data(), dv.data(), da.data(), db.data(), ds0.data(), T, H, N, scratch.data()); }, H, 1, N, ((size_t)N * (N + 1) + 4 * N) * 4);
    auto R = D(r), W = D(w), K = D(k), V = D(v), Aa = D(a), B = D(b), S0 = D(s0), G = D(g), GS = D(gs);
    auto L = [&] {
        std::vector<double> s = S0; double l = 0;
        for (int t = 0; t < T; t++) for (int h = 0; h < H; h++)
        {
            size_t o = (size_t)t * A + h * N; double* sh = &s[(size_t)h * N * N];
            for (int i = 0; i < N; i++)
            {
                double sa = 0; for (int j = 0; j < N; j++) sa += Aa[o + j] * sh[i * N + j];
                double y = 0;
                for (int j = 0; j < N; j++) { sh[i * N + j] = sh[i * N + j] * W[o + j] + K[o + j] * V[o + i] + sa * B[o + j]; y += sh[i * N + j] * R[o + j]; }
                l += G[o + i] * y;
            }
        }
        if (fin) l += dot(GS, s);
        return l;
    };
    char name[64]; snprintf(name, 64, "wkv7 T%d H%d N%d %s", T, H, N, fin ? "fin" : "");
    std::string n(name);
    check((n + " dr").c_str(), fd(R, L), dr); check((n + " dw").c_str(), fd(W, L), dw); check((n + " dk").c_str(), fd(K, L), dk);
    check((n + " dv").c_str(), fd(V, L), dv); check((n + " da").c_str(), fd(Aa, L), da); check((n + " db").c_str(), fd(B, L), db);
    check((n + " ds0").c_str(), fd(S0, L), ds0);
}

void keys(bool balanced, int T, int H, int N, float kscale)
{
    int A = H * N; size_t TA = (size_t)T * A;
    auto k = normal(TA); for (auto& x : k) x *= kscale;
    auto w = uniform(TA, 0.55f, 1), a = uniform(TA, 0, 1), kk = uniform(A, 0.5f, 1.2f), ka = uniform(A, 0.5f, 1.5f);
    auto grem = normal(TA), grep = normal(TA), gtil = normal(TA);
    auto dk = nans(TA), dw = nans(TA), da = nans(TA), gkk = nans(TA), gka = nans(TA);
    int warps = T * H;
    launch([&] { r7::rwkv7_keys_backward_f32(k.data(), w.data(), a.data(), kk.data(), 0, ka.data(), 0, T, A, N, balanced,
        grem.data(), grep.data(), gtil.data(), dk.data(), dw.data(), da.data(), balanced ? nullptr : gkk.data(), balanced ? nullptr : gka.data()); },
        (warps * 32 + 255) / 256, 1, 256, 0);
    auto K = D(k), Wd = D(w), Ad = D(a), KK = D(kk), KA = D(ka), GR = D(grem), GP = D(grep), GT = D(gtil);
    auto L = [&] {
        double l = 0;
        for (int t = 0; t < T; t++) for (int h = 0; h < H; h++)
        {
            size_t o = (size_t)t * A + h * N; double nr = 0;
            std::vector<double> u(N);
            for (int i = 0; i < N; i++) { u[i] = balanced ? K[o + i] : K[o + i] * KK[h * N + i]; nr += u[i] * u[i]; }
            nr = std::max(std::sqrt(nr), 1e-12);
            for (int i = 0; i < N; i++)
            {
                double kap = u[i] / nr, kt = balanced ? K[o + i] * (1 - Wd[o + i] + Ad[o + i]) : K[o + i] * (1 + (Ad[o + i] - 1) * KA[h * N + i]);
                l += GR[o + i] * -kap + GP[o + i] * kap * Ad[o + i] + GT[o + i] * kt;
            }
        }
        return l;
    };
    std::string n = std::string("keys ") + (balanced ? "balanced" : "stock") + (kscale < 1 ? " eps" : "");
    auto step = [&](auto& x) { return fd(x, L); };
    if (kscale < 1)
    {
        // relative steps inside the eps guard
        auto fdr = [&](std::vector<double>& x) { std::vector<double> g(x.size()); for (size_t i = 0; i < x.size(); i++) { double xi = x[i], h = std::fabs(xi) < 1e-10 ? 1e-6 * std::fabs(xi) : 1e-6 * std::max(1.0, std::fabs(xi)); x[i] = xi + h; double p = L(); x[i] = xi - h; double m = L(); x[i] = xi; g[i] = (p - m) / (2 * h); } return g; };
        check((n + " dk").c_str(), fdr(K), dk); check((n + " da").c_str(), fdr(Ad), da);
        return;
    }
    check((n + " dk").c_str(), step(K), dk); check((n + " da").c_str(), step(Ad), da);
    if (balanced) check((n + " dw").c_str(), step(Wd), dw);
    else
    {
        auto ekk = step(KK), eka = step(KA);
        std::vector<float> skk(A, 0), ska(A, 0);
        for (int t = 0; t < T; t++) for (int c = 0; c < A; c++) { skk[c] += gkk[(size_t)t * A + c]; ska[c] += gka[(size_t)t * A + c]; }
        check((n + " dkk").c_str(), ekk, skk); check((n + " dka").c_str(), eka, ska);
    }
}

void groupnorm(int T, int G, int d)
{
    int W = G * d; size_t n = (size_t)T * W;
    auto x = normal(n, 2); for (auto& v : x) v += 0.5f;
    auto w = normal(W), b = normal(W), g = normal(n);
    float eps = d * 1e-5f;
    auto dx = nans(n), gx = nans(n);
    launch([&] { bw::group_norm_backward_f32(x.data(), w.data(), 0, g.data(), T, G, d, eps, dx.data(), gx.data()); }, (T * G * 32 + 255) / 256, 1, 256, 0);
    std::vector<float> dW(W, 0.5f), dB(W, -0.25f);
    launch([&] { bw::column_sum_f32(gx.data(), 0, nullptr, 0, T, W, dW.data(), 0); }, (W + 31) / 32, 1, 256, 0);
    launch([&] { bw::column_sum_f32(g.data(), 0, nullptr, 0, T, W, dB.data(), 0); }, (W + 31) / 32, 1, 256, 0);
    auto X = D(x), Wd = D(w), Bd = D(b), Gd = D(g);
    auto L = [&] {
        double l = 0;
        for (int t = 0; t < T; t++) for (int q = 0; q < G; q++)
        {
            size_t s = (size_t)t * W + q * d; double m = 0, var = 0;
            for (int i = 0; i < d; i++) m += X[s + i]; m /= d;
            for (int i = 0; i < d; i++) var += (X[s + i] - m) * (X[s + i] - m); var /= d;
            for (int i = 0; i < d; i++) l += Gd[s + i] * ((X[s + i] - m) / std::sqrt(var + eps) * Wd[q * d + i] + Bd[q * d + i]);
        }
        return l;
    };
    auto ew = fd(Wd, L), eb = fd(Bd, L);
    for (int i = 0; i < W; i++) { dW[i] -= 0.5f; dB[i] += 0.25f; }
    check("groupnorm dx", fd(X, L), dx); check("groupnorm dW", ew, dW); check("groupnorm dB", eb, dB);
}

void matmulw(int T, int P, int Q)
{
    auto a = normal((size_t)T * P), b = normal((size_t)T * Q);
    std::vector<float> dw((size_t)P * Q, 1.0f);
    launch([&] { mm::matmul_backward_weight_f32(a.data(), b.data(), dw.data(), T, P, Q, T, nullptr); }, (Q + 63) / 64, (P + 63) / 64, 256, 0);
    std::vector<double> e((size_t)P * Q);
    for (int p = 0; p < P; p++) for (int q = 0; q < Q; q++) { double s = 1; for (int t = 0; t < T; t++) s += (double)a[(size_t)t * P + p] * b[(size_t)t * Q + q]; e[(size_t)p * Q + q] = s; }
    check("matmul dW", e, dw, 1e-5);
}

void ddlerp(int T, int C, int R)
{
    size_t n = (size_t)T * C;
    auto delta = normal(n), lora = uniform((size_t)T * 5 * R, -1, 1), mixes = uniform(5 * C, -1, 1), w2 = normal((size_t)5 * R * C, 0.3f), g = normal(5 * n), x = normal(n);
    auto dx = nans(n), dd = nans(n), dl = nans((size_t)T * 5 * R);
    std::vector<float> dw2((size_t)5 * R * C, 0), dm(5 * C, 0);
    launch([&] { r6::rwkv6_ddlerp_backward_inputs_f32(lora.data(), w2.data(), 0, mixes.data(), 0, g.data(), T, C, R, dx.data(), dd.data()); }, 2, 1, 256, 0);
    launch([&] { r6::rwkv6_ddlerp_backward_lora_f32(delta.data(), w2.data(), 0, g.data(), T, C, R, dl.data()); }, (T * 5 * R * 32 + 255) / 256, 1, 256, 0);
    launch([&] { r6::rwkv6_ddlerp_backward_w2_f32(delta.data(), lora.data(), g.data(), T, C, R, dw2.data()); }, 2, 1, 256, 0);
    launch([&] { bw::column_sum_f32(g.data(), (i64)n, delta.data(), 0, T, C, dm.data(), C); }, (C + 31) / 32, 5, 256, 0);
    auto X = D(x), De = D(delta), Lo = D(lora), W2 = D(w2), M = D(mixes), Gd = D(g);
    auto L = [&] {
        double l = 0;
        for (int i = 0; i < 5; i++) for (int t = 0; t < T; t++) for (int c = 0; c < C; c++)
        {
            double m = M[i * C + c]; for (int r = 0; r < R; r++) m += Lo[(size_t)t * 5 * R + i * R + r] * W2[((size_t)i * R + r) * C + c];
            l += Gd[((size_t)i * T + t) * C + c] * (X[(size_t)t * C + c] + De[(size_t)t * C + c] * m);
        }
        return l;
    };
    check("ddlerp dx", fd(X, L), dx); check("ddlerp ddelta", fd(De, L), dd); check("ddlerp dlora", fd(Lo, L), dl);
    check("ddlerp dw2", fd(W2, L), dw2); check("ddlerp dmixes", fd(M, L), dm);
}

void misc()
{
    // token shift with final gradient
    int T = 5, C = 7; size_t n = T * C;
    auto g = normal(n), f = normal(C); auto dx = nans(n), di = nans(C);
    launch([&] { bw::token_shift_backward_f32(g.data(), f.data(), dx.data(), di.data(), T, C); }, 1, 1, 256, 0);
    std::vector<double> e(n), ei(C);
    for (int t = 0; t < T; t++) for (int c = 0; c < C; c++) e[t * C + c] = (t + 1 < T ? g[(t + 1) * C + c] : f[c]) - g[t * C + c];
    for (int c = 0; c < C; c++) ei[c] = g[c];
    check("token_shift dx", e, dx, 1e-6); check("token_shift dinit", ei, di, 1e-6);
    // rope: backward of forward = identity on a random vector rotated forward
    int H = 2, N = 8; auto x = normal(3 * H * N); auto y = x;
    for (int t = 0; t < 3; t++) for (int h = 0; h < H; h++) for (int i = 0; i < N / 2; i++)
    {
        double ang = (5 + t) * std::pow(1e4, -2.0 * i / N); float c = std::cos(ang), s = std::sin(ang);
        float* v = &y[t * H * N + h * N]; float a = v[i], b = v[i + N / 2]; v[i] = a * c - b * s; v[i + N / 2] = b * c + a * s;
    }
    launch([&] { bw::rope_backward_f32(y.data(), 3, H, N, 5, 1e4f); }, 1, 1, 256, 0);
    check("rope inverse", D(x), y, 1e-5);
    // repeat kv
    auto gy = normal(2 * 2 * 3 * 4); auto gx = nans(2 * 2 * 4);
    launch([&] { bw::repeat_kv_backward_f32(gy.data(), 2, 2, 4, 3, gx.data()); }, 1, 1, 256, 0);
    std::vector<double> er(16);
    for (int t = 0; t < 2; t++) for (int j = 0; j < 2; j++) for (int d = 0; d < 4; d++) { double s = 0; for (int q = 0; q < 3; q++) s += gy[t * 24 + (j * 3 + q) * 4 + d]; er[t * 8 + j * 4 + d] = s; }
    check("repeat_kv", er, gx, 1e-6);
    // alignment loss + sum
    int Tt = 4, Cc = 37; auto te = normal(Tt * Cc), st = normal(Tt * Cc);
    for (int j = 0; j < Cc; j++) st[j] = te[j];
    std::vector<double> errs(Tt, NAN), res(1, NAN); auto ds = nans(Tt * Cc);
    launch([&] { tr::alignment_loss_f32(te.data(), st.data(), Cc, 0.5f, ds.data(), errs.data()); }, Tt, 1, 256, 0);
    launch([&] { tr::sum_double(errs.data(), Tt, res.data()); }, 1, 1, 256, 0);
    double el = 0; std::vector<double> eg(Tt * Cc);
    for (int t = 0; t < Tt; t++) { double s = 0; for (int j = 0; j < Cc; j++) { double d = (double)st[t * Cc + j] - te[t * Cc + j]; s += d * d; } double nr = std::sqrt(s); el += nr / std::sqrt(Cc);
        for (int j = 0; j < Cc; j++) eg[t * Cc + j] = nr == 0 ? 0 : 0.5 * ((double)st[t * Cc + j] - te[t * Cc + j]) / (nr * std::sqrt(Cc)); }
    printf("%s loss %.15g vs %.15g\n", std::fabs(res[0] - el) < 1e-12 * el ? "ok  " : "FAIL", res[0], el);
    check("alignment dstudent", eg, ds, 1e-6);
    // sum of squares over 3 blocks
    auto xs = normal(700); std::vector<double> part(3, NAN), tot(1, NAN);
    launch([&] { tr::sum_of_squares_f32(xs.data(), 700, part.data()); }, 3, 1, 256, 0);
    launch([&] { tr::sum_double(part.data(), 3, tot.data()); }, 1, 1, 256, 0);
    double es = 0; for (float v : xs) es += (double)v * v;
    printf("%s sumsq %.15g vs %.15g\n", std::fabs(tot[0] - es) < 1e-12 * es ? "ok  " : "FAIL", tot[0], es);
}

int main()
{
    misc();
    matmulw(37, 70, 130); matmulw(1, 5, 3);
    groupnorm(3, 4, 5); groupnorm(2, 2, 40);
    ddlerp(4, 9, 3);
    keys(true, 3, 2, 8, 1); keys(false, 3, 2, 8, 1); keys(true, 2, 2, 40, 1); keys(false, 1, 1, 8, 1e-14f); keys(true, 1, 1, 8, 1e-14f);
    wkv6(1, 1, 4, false); wkv6(5, 2, 8, true); wkv6(17, 2, 4, true); wkv6(40, 2, 8, false); wkv6(33, 1, 16, true); wkv6(50, 1, 32, false);
    wkv7(1, 1, 4, false); wkv7(5, 2, 8, true); wkv7(17, 2, 4, true); wkv7(37, 1, 8, false); wkv7(33, 1, 16, true); wkv7(50, 1, 32, true);
    printf("%d failures\n", failures);
    return failures != 0;
}
