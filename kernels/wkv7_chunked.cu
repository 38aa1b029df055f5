// Wkv7 prefill in chunks of 16 tokens: the generalised delta rule in its chunked (WY) form, so that what stays
// sequential per head is T/16 matrix steps instead of T dependent row reductions. The equations (and a float64 check of
// them against the scan) are in scripts/prototypes/wkv7_chunked.py and docs/NOTES.md ("Prefill: the chunked wkv7").
//
// wkv7_chunk_prep_f32_n{N}: one block per (chunk, head, sequence), all in parallel. From the chunk's r, w, k, a, b it
//   writes a record (WKV7C_RECORD(N) floats): Pᵀ, R′ᵀ, B̃, K̃ [L][N], Q, W′ [L][L], γ_L [N] and a flag. γ_t is the
//   running product of w over the chunk; the record holds a·γ_{t−1} and b/γ_i, so it is only exact while γ stays far
//   inside fp32's range: RAD-RWKV7's w ∈ (0.545, 1) gives γ ≥ 6e-5 over 16 tokens. Where any γ leaves [1e-25, 1e25]
//   (or is not a number) the flag is set and the scan kernel runs that chunk token by token instead.
// wkv7_chunk_scan_f32_n{N}: one block per 32 state rows of a head (sequential over the chunks). A thread holds TR rows
//   × 8 keys of the state in registers; per chunk u = S·P + v·Q and y = S·R′ + v·W′ (partial dots over the thread's
//   keys, reduce-scattered over the row's lanes), then S ← S ⊙ γ_L + u·B̃ + v·K̃. Records are staged into shared
//   memory by cp.async one chunk ahead.
// Layouts as wkv7_tile_f32: r … b, v, y [sequences · T, H·N], state [sequences · H, N_v, N_k] value-major.
#include "common.cuh"

#define WKV7C_L 16
// Floats of one chunk record (a multiple of 4, so records stay 16-byte aligned).
#define WKV7C_RECORD(N) (4 * WKV7C_L * (N) + 2 * WKV7C_L * WKV7C_L + (N) + 4)
#define WKV7C_PREP_THREADS 256
#define WKV7C_SCAN_THREADS 128

__device__ __forceinline__ float4 wkv7c_scale4(float4 x, float s) { return make_float4(x.x * s, x.y * s, x.z * s, x.w * s); }

__device__ __forceinline__ float4 wkv7c_fma4(float s, float4 x, float4 acc)
{
    return make_float4(fmaf(s, x.x, acc.x), fmaf(s, x.y, acc.y), fmaf(s, x.z, acc.z), fmaf(s, x.w, acc.w));
}

__device__ __forceinline__ float wkv7c_dot4(float4 x, float4 y, float acc)
{
    return fmaf(x.w, y.w, fmaf(x.z, y.z, fmaf(x.y, y.y, fmaf(x.x, y.x, acc))));
}

// Shared memory of the prep kernel (floats): r, γ, k, a, b and Pᵀ as [L][N + 4], four L×L matrices, T and Q [L][L + 1].
#define WKV7C_PREP_SHARED(N) (6 * WKV7C_L * ((N) + 4) + 6 * WKV7C_L * (WKV7C_L + 1))

template <int N> __device__ __forceinline__ void wkv7_chunk_prep(const float* r, const float* w, const float* k, const float* a,
    const float* b, int tokens, int heads, float* records)
{
    constexpr int L = WKV7C_L, S = N + 4, M1 = L + 1, V4 = N / 4;
    pdl_begin();
    const int c = blockIdx.x, h = blockIdx.y;
    const i64 width = (i64)heads * N;
    {
        const i64 rows = (i64)blockIdx.z * tokens * width;
        r += rows; w += rows; k += rows; a += rows; b += rows;
    }
    float* out = records + (((i64)blockIdx.z * heads + h) * gridDim.x + c) * WKV7C_RECORD(N);
    extern __shared__ float prep[];
    float* R = prep;             // r, then R̃ = r ⊙ γ_t
    float* G = R + L * S;        // w, then γ_t = Π_{τ≤t} w_τ
    float* K = G + L * S;        // k, then k / γ_t
    float* A = K + L * S;        // a, then Ã = a ⊙ γ_{t−1}
    float* B = A + L * S;        // b, then b / γ_t
    float* P = B + L * S;        // Pᵀ [L][S]
    float* Mab = P + L * S;      // [t][i], i < t (then Mak, Mrb, Mrk: i ≤ t for the r ones)
    float* Mak = Mab + L * M1;
    float* Mrb = Mak + L * M1;
    float* Mrk = Mrb + L * M1;
    float* T = Mrk + L * M1;     // (I − A_abᵀ)⁻¹, upper triangular
    float* Q = T + L * M1;
    __shared__ int unsafe;

    const int t0 = c * L;
    const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f), one = make_float4(1.f, 1.f, 1.f, 1.f);
    // Tokens past the end change nothing: w = 1, r = k = a = b = 0 (and v = 0 in the scan).
    for (int x = threadIdx.x; x < L * V4; x += blockDim.x)
    {
        const int t = x / V4, j = (x % V4) * 4;
        const bool in = t0 + t < tokens;
        const i64 o = in ? (i64)(t0 + t) * width + (i64)h * N + j : 0;
        *(float4*)(R + t * S + j) = in ? *(const float4*)(r + o) : zero;
        *(float4*)(G + t * S + j) = in ? *(const float4*)(w + o) : one;
        *(float4*)(K + t * S + j) = in ? *(const float4*)(k + o) : zero;
        *(float4*)(A + t * S + j) = in ? *(const float4*)(a + o) : zero;
        *(float4*)(B + t * S + j) = in ? *(const float4*)(b + o) : zero;
    }

    if (threadIdx.x == 0) unsafe = 0;
    __syncthreads();
    for (int j = threadIdx.x; j < N; j += blockDim.x)
    {
        float g = 1.f;
        bool bad = false;
        for (int t = 0; t < L; t++)
        {
            g *= G[t * S + j];
            G[t * S + j] = g;
            bad |= !(g >= 1e-25f && g <= 1e25f);
        }

        if (bad) unsafe = 1;
    }

    __syncthreads();
    if (unsafe)
    {
        // The scan kernel runs this chunk token by token from r … b; nothing else of the record is read.
        if (threadIdx.x == 0) out[4 * L * N + 2 * L * L + N] = 1.f;
        return;
    }

    for (int x = threadIdx.x; x < L * N; x += blockDim.x)
    {
        const int t = x / N, j = x % N;
        const float g = G[t * S + j], before = t > 0 ? G[(t - 1) * S + j] : 1.f;
        R[t * S + j] *= g;
        A[t * S + j] *= before;
        K[t * S + j] /= g;
        B[t * S + j] /= g;
    }

    __syncthreads();
    // A_ab[t][i] = Ã_t·b̂_i, A_ak = Ã_t·k̂_i (i < t); A_rb = R̃_t·b̂_i, A_rk = R̃_t·k̂_i (i ≤ t).
    for (int x = threadIdx.x; x < L * L; x += blockDim.x)
    {
        const int t = x / L, i = x % L;
        float ab = 0.f, ak = 0.f, rb = 0.f, rk = 0.f;
        if (i <= t)
        {
#pragma unroll 4
            for (int j = 0; j < N; j += 4)
            {
                const float4 at = *(const float4*)(A + t * S + j), rt = *(const float4*)(R + t * S + j);
                const float4 bi = *(const float4*)(B + i * S + j), ki = *(const float4*)(K + i * S + j);
                ab = wkv7c_dot4(at, bi, ab);
                ak = wkv7c_dot4(at, ki, ak);
                rb = wkv7c_dot4(rt, bi, rb);
                rk = wkv7c_dot4(rt, ki, rk);
            }
        }

        Mab[t * M1 + i] = i < t ? ab : 0.f;
        Mak[t * M1 + i] = i < t ? ak : 0.f;
        Mrb[t * M1 + i] = rb;
        Mrk[t * M1 + i] = rk;
    }

    __syncthreads();
    // T = (I − A_abᵀ)⁻¹ by back substitution, a column a thread: T[i][col] = δ + Σ_{m>i} A_ab[m][i] T[m][col].
    if (threadIdx.x < L)
    {
        const int col = threadIdx.x;
        for (int i = L - 1; i >= 0; i--)
        {
            float v = i == col ? 1.f : 0.f;
            for (int m = i + 1; m <= col; m++) v = fmaf(Mab[m * M1 + i], T[m * M1 + col], v);
            T[i * M1 + col] = v;
        }
    }

    __syncthreads();
    // Pᵀ[t][j] = Σ_{m≤t} T[m][t] Ã[m][j];  Q[i][t] = Σ_{m≤t} A_ak[m][i] T[m][t].
    for (int x = threadIdx.x; x < L * V4; x += blockDim.x)
    {
        const int t = x / V4, j = (x % V4) * 4;
        float4 p = zero;
        for (int m = 0; m <= t; m++) p = wkv7c_fma4(T[m * M1 + t], *(const float4*)(A + m * S + j), p);
        *(float4*)(P + t * S + j) = p;
        *(float4*)(out + t * N + j) = p;
    }

    for (int x = threadIdx.x; x < L * L; x += blockDim.x)
    {
        const int i = x / L, t = x % L;
        float q = 0.f;
        for (int m = 0; m <= t; m++) q = fmaf(Mak[m * M1 + i], T[m * M1 + t], q);
        Q[i * M1 + t] = q;
        out[4 * L * N + i * L + t] = q;
    }

    __syncthreads();
    // R′ᵀ[t][j] = R̃[t][j] + Σ_{m≤t} A_rb[t][m] Pᵀ[m][j];  W′[i][t] = A_rk[t][i] + Σ_{m≤t} Q[i][m] A_rb[t][m];
    // B̃ = b̂ ⊙ γ_L, K̃ = k̂ ⊙ γ_L.
    const float* gl = G + (L - 1) * S;
    for (int x = threadIdx.x; x < L * V4; x += blockDim.x)
    {
        const int t = x / V4, j = (x % V4) * 4;
        float4 rp = *(const float4*)(R + t * S + j);
        for (int m = 0; m <= t; m++) rp = wkv7c_fma4(Mrb[t * M1 + m], *(const float4*)(P + m * S + j), rp);
        const float4 g = *(const float4*)(gl + j), bq = *(const float4*)(B + t * S + j), kq = *(const float4*)(K + t * S + j);
        *(float4*)(out + L * N + t * N + j) = rp;
        *(float4*)(out + 2 * L * N + t * N + j) = make_float4(bq.x * g.x, bq.y * g.y, bq.z * g.z, bq.w * g.w);
        *(float4*)(out + 3 * L * N + t * N + j) = make_float4(kq.x * g.x, kq.y * g.y, kq.z * g.z, kq.w * g.w);
    }

    for (int x = threadIdx.x; x < L * L; x += blockDim.x)
    {
        const int i = x / L, t = x % L;
        float wp = Mrk[t * M1 + i];
        for (int m = 0; m <= t; m++) wp = fmaf(Q[i * M1 + m], Mrb[t * M1 + m], wp);
        out[4 * L * N + L * L + i * L + t] = wp;
    }

    for (int j = threadIdx.x; j < N; j += blockDim.x) out[4 * L * N + 2 * L * L + j] = gl[j];
    if (threadIdx.x == 0) out[4 * L * N + 2 * L * L + N] = 0.f;
}

// The scan's geometry: JG = N/8 lanes a state row (8 keys each, two float4 at key quads jg and jg + JG), TR rows a
// thread, so a block of 128 threads holds R = 128·TR/JG rows.
template <int N> struct Wkv7cScan
{
    static constexpr int L = WKV7C_L, JG = N / 8, TR = N == 128 ? 4 : 2, R = WKV7C_SCAN_THREADS * TR / JG;
    static constexpr int RECORD = WKV7C_RECORD(N), BUFFER = RECORD + L * R;
    static constexpr int PER = TR * L / JG; // values a lane keeps of a reduce-scatter
};

// Shared memory of the scan kernel (floats): two buffers (a record and its chunk's v [L][R]), u and y [L][R].
#define WKV7C_SCAN_SHARED(N) (2 * Wkv7cScan<N>::BUFFER + 2 * WKV7C_L * Wkv7cScan<N>::R)

template <int N> __device__ __forceinline__ void wkv7c_stage(float* dst, const float* record, const float* v, int t0, int tokens,
    i64 width, i64 column)
{
    using G = Wkv7cScan<N>;
    for (int x = threadIdx.x; x < G::RECORD / 4; x += blockDim.x) copy_async_16(dst + 4 * x, record + 4 * x);
    for (int x = threadIdx.x; x < G::L * G::R; x += blockDim.x)
    {
        const int m = x / G::R, i = x % G::R;
        const bool in = t0 + m < tokens;
        copy_async_f32(dst + G::RECORD + x, v + (in ? (i64)(t0 + m) * width + column + i : 0), in);
    }

    copy_async_commit();
}

// Sum over the JG lanes of a row, every lane getting the total.
template <int JG> __device__ __forceinline__ float wkv7c_row_sum(float x)
{
#pragma unroll
    for (int o = JG / 2; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

// Reduce-scatter of LEN values over the JG lanes of a row (levels xor JG/2 … 1): at each level a lane keeps the upper
// half of its values if its bit is set and adds its partner's copy of them, so lane jg ends with the block jg of
// LEN/JG sums in part[0 …]. Recursion on compile-time sizes keeps part in registers (a loop over a halving length
// left it in local memory).
template <int JG, int LEN> __device__ __forceinline__ void wkv7c_reduce_scatter(float* part, int jg)
{
    if constexpr (JG > 1)
    {
        constexpr int O = JG / 2, HALF = LEN / 2;
        const bool up = jg & O;
#pragma unroll
        for (int e = 0; e < HALF; e++)
        {
            const float keep = up ? part[HALF + e] : part[e];
            const float send = up ? part[e] : part[HALF + e];
            part[e] = keep + __shfl_xor_sync(0xffffffffu, send, O);
        }

        wkv7c_reduce_scatter<O, HALF>(part, jg);
    }
}

template <int N> __device__ __forceinline__ void wkv7_chunk_scan(const float* r, const float* w, const float* k, const float* v,
    const float* a, const float* b, const float* records, float* state, int tokens, int heads, float* y)
{
    using G = Wkv7cScan<N>;
    constexpr int L = G::L, JG = G::JG, TR = G::TR, R = G::R, RECORD = G::RECORD;
    pdl_begin();
    const int slices = N / R, h = blockIdx.x / slices, i0 = (blockIdx.x % slices) * R;
    const i64 width = (i64)heads * N;
    {
        const i64 rows = (i64)blockIdx.y * tokens * width;
        r += rows; w += rows; k += rows; v += rows; a += rows; b += rows; y += rows;
        state += (i64)blockIdx.y * heads * N * N;
    }
    const int chunks = (tokens + L - 1) / L;
    records += ((i64)blockIdx.y * heads + h) * chunks * RECORD;
    extern __shared__ float scan[];
    float* Us = scan + 2 * G::BUFFER; // u [m][i]
    float* Ys = Us + L * R;           // y [m][i]
    const int jg = threadIdx.x % JG, rg = threadIdx.x / JG, row = rg * TR; // the thread's first row in the block
    const i64 column = (i64)h * N + i0;                                      // of row 0 in v and y
    float* st = state + ((i64)h * N + i0 + row) * N;

    // s[tr][q] = S[row + tr][4·(q·JG + jg) … + 3].
    float4 s[TR][2];
#pragma unroll
    for (int tr = 0; tr < TR; tr++)
    {
#pragma unroll
        for (int q = 0; q < 2; q++) s[tr][q] = *(const float4*)(st + tr * N + 4 * (q * JG + jg));
    }

    wkv7c_stage<N>(scan, records, v, 0, tokens, width, column);
    for (int c = 0; c < chunks; c++)
    {
        const int t0 = c * L;
        if (c + 1 < chunks)
        {
            // The other buffer was last read in chunk c − 1, which every thread has finished (the barrier below).
            wkv7c_stage<N>(scan + ((c + 1) & 1) * G::BUFFER, records + (i64)(c + 1) * RECORD, v, t0 + L, tokens, width, column);
            copy_async_wait_group<1>();
        }
        else
        {
            copy_async_wait_group<0>();
        }

        __syncthreads();
        const float* cur = scan + (c & 1) * G::BUFFER;
        const float* Vs = cur + RECORD; // v [m][i]
        if (cur[4 * L * N + 2 * L * L + N] != 0.f)
        {
            // γ left fp32's safe range in this chunk: the plain recurrence, token by token, from the raw inputs.
            for (int m = 0; m < L && t0 + m < tokens; m++)
            {
                const i64 o = (i64)(t0 + m) * width + (i64)h * N;
                float4 av[2], bv[2], wv[2], kv[2], rv[2];
#pragma unroll
                for (int q = 0; q < 2; q++)
                {
                    const int j = 4 * (q * JG + jg);
                    av[q] = *(const float4*)(a + o + j);
                    bv[q] = *(const float4*)(b + o + j);
                    wv[q] = *(const float4*)(w + o + j);
                    kv[q] = *(const float4*)(k + o + j);
                    rv[q] = *(const float4*)(r + o + j);
                }

#pragma unroll
                for (int tr = 0; tr < TR; tr++)
                {
                    const float vi = Vs[m * R + row + tr];
                    const float sa = wkv7c_row_sum<JG>(wkv7c_dot4(s[tr][1], av[1], wkv7c_dot4(s[tr][0], av[0], 0.f)));
                    float yi = 0.f;
#pragma unroll
                    for (int q = 0; q < 2; q++)
                    {
                        float4 x = s[tr][q];
                        x.x = fmaf(bv[q].x, sa, fmaf(kv[q].x, vi, x.x * wv[q].x));
                        x.y = fmaf(bv[q].y, sa, fmaf(kv[q].y, vi, x.y * wv[q].y));
                        x.z = fmaf(bv[q].z, sa, fmaf(kv[q].z, vi, x.z * wv[q].z));
                        x.w = fmaf(bv[q].w, sa, fmaf(kv[q].w, vi, x.w * wv[q].w));
                        s[tr][q] = x;
                        yi = wkv7c_dot4(x, rv[q], yi);
                    }

                    yi = wkv7c_row_sum<JG>(yi);
                    if (jg == 0) y[o + i0 + row + tr] = yi;
                }
            }
        }
        else
        {
            // half 0: u = S·P + v·Q into Us; half 1: y = S·R′ + v·W′ into Ys.
#pragma unroll
            for (int half = 0; half < 2; half++)
            {
                const float* M = cur + half * L * N;                     // Pᵀ or R′ᵀ [L][N]
                const float* X = cur + 4 * L * N + half * L * L;         // Q or W′ [L][L]
                float part[TR * L];
#pragma unroll
                for (int col = 0; col < L; col++)
                {
                    const float4 m0 = *(const float4*)(M + col * N + 4 * jg), m1 = *(const float4*)(M + col * N + 4 * (JG + jg));
#pragma unroll
                    for (int tr = 0; tr < TR; tr++) part[tr * L + col] = wkv7c_dot4(s[tr][1], m1, wkv7c_dot4(s[tr][0], m0, 0.f));
                }

                // Lane jg ends with the sums of values jg·PER … jg·PER + PER − 1 (value f = tr·L + col).
                wkv7c_reduce_scatter<JG, TR * L>(part, jg);

                float* dst = half == 0 ? Us : Ys;
#pragma unroll
                for (int e = 0; e < G::PER; e++)
                {
                    const int f = jg * G::PER + e, tr = f / L, col = f % L, i = row + tr;
                    float sum = part[e];
#pragma unroll
                    for (int m = 0; m < L; m++) sum = fmaf(Vs[m * R + i], X[m * L + col], sum);
                    dst[col * R + i] = sum;
                }
            }

            __syncthreads();
            // S ← S ⊙ γ_L + u·B̃ + v·K̃ for the thread's rows and keys.
            const float* Bt = cur + 2 * L * N;
            const float* Kt = cur + 3 * L * N;
            const float* gl = cur + 4 * L * N + 2 * L * L;
#pragma unroll
            for (int q = 0; q < 2; q++)
            {
                const float4 g = *(const float4*)(gl + 4 * (q * JG + jg));
#pragma unroll
                for (int tr = 0; tr < TR; tr++)
                    s[tr][q] = make_float4(s[tr][q].x * g.x, s[tr][q].y * g.y, s[tr][q].z * g.z, s[tr][q].w * g.w);
            }

#pragma unroll 4
            for (int m = 0; m < L; m++)
            {
                float uu[TR], vv[TR];
#pragma unroll
                for (int tr = 0; tr < TR; tr++)
                {
                    uu[tr] = Us[m * R + row + tr];
                    vv[tr] = Vs[m * R + row + tr];
                }

#pragma unroll
                for (int q = 0; q < 2; q++)
                {
                    const int j = 4 * (q * JG + jg);
                    const float4 bt = *(const float4*)(Bt + m * N + j), kt = *(const float4*)(Kt + m * N + j);
#pragma unroll
                    for (int tr = 0; tr < TR; tr++) s[tr][q] = wkv7c_fma4(vv[tr], kt, wkv7c_fma4(uu[tr], bt, s[tr][q]));
                }
            }

            for (int x = threadIdx.x; x < L * R; x += blockDim.x)
            {
                const int m = x / R, i = x % R;
                if (t0 + m < tokens) y[(i64)(t0 + m) * width + column + i] = Ys[x];
            }
        }

        __syncthreads();
    }

#pragma unroll
    for (int tr = 0; tr < TR; tr++)
    {
#pragma unroll
        for (int q = 0; q < 2; q++) *(float4*)(st + tr * N + 4 * (q * JG + jg)) = s[tr][q];
    }
}

// CudaOps.Wkv7Chunked launches these (head dims 64 and 128: every Qwen2.5 size).
#define WKV7_CHUNKED(N)                                                                                                         \
    extern "C" __global__ void __launch_bounds__(WKV7C_PREP_THREADS) wkv7_chunk_prep_f32_n##N(const float* r, const float* w, \
        const float* k, const float* a, const float* b, int tokens, int heads, float* records)                                 \
    {                                                                                                                           \
        wkv7_chunk_prep<N>(r, w, k, a, b, tokens, heads, records);                                                              \
    }                                                                                                                           \
    extern "C" __global__ void __launch_bounds__(WKV7C_SCAN_THREADS, 1) wkv7_chunk_scan_f32_n##N(const float* r,               \
        const float* w, const float* k, const float* v, const float* a, const float* b, const float* records, float* state,    \
        int tokens, int heads, float* y)                                                                                        \
    {                                                                                                                           \
        wkv7_chunk_scan<N>(r, w, k, v, a, b, records, state, tokens, heads, y);                                                 \
    }
WKV7_CHUNKED(64)
WKV7_CHUNKED(128)
