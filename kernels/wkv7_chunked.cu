// Wkv7 prefill in chunks of 16 tokens: the generalised delta rule in its chunked (WY) form, so that what stays
// sequential per head is T/16 matrix steps instead of T dependent row reductions. The equations (and a float64 check of
// them against the scan) are in scripts/prototypes/wkv7_chunked.py and docs/NOTES.md ("Prefill: the chunked wkv7").
//
// wkv7_chunk_prep_f32_n{N}: one block per (chunk, head, sequence), all in parallel. From the chunk's r, w, k, a, b it
//   writes a record (WKV7C_RECORD(N) floats): MA = [P | R′] [N][2L], BK = [B̃ ; K̃] [2L][N], QW = [Q | W′] [L][2L],
//   γ_L [N] and a flag, laid out as the scan multiplies them. γ_t is the
//   running product of w over the chunk; the record holds a·γ_{t−1} and b/γ_i, so it is only exact while γ stays far
//   inside fp32's range: RAD-RWKV7's w ∈ (0.545, 1) gives γ ≥ 6e-5 over 16 tokens. Where any γ leaves [1e-25, 1e25]
//   (or is not a number) the flag is set and the scan kernel runs that chunk token by token instead.
// wkv7_chunk_scan_f32_n{N}: one block per 32 state rows of a head (sequential over the chunks), the state in 4×4
//   register tiles. Per chunk [u | y] = S·[P | R′] + v·[Q | W′] (a register-tiled product, its K split over the warp
//   columns), then S ← S ⊙ γ_L + [u | v]·[B̃ ; K̃]. Records are staged into shared memory by cp.async one chunk ahead.
// Layouts as wkv7_tile_f32: r … b, v, y [sequences · T, H·N], state [sequences · H, N_v, N_k] value-major.
#include "common.cuh"

#define WKV7C_L 16
// Floats of one chunk record (a multiple of 4, so records stay 16-byte aligned).
#define WKV7C_RECORD(N) (4 * WKV7C_L * (N) + 2 * WKV7C_L * WKV7C_L + (N) + 4)
#define WKV7C_PREP_THREADS 256

__device__ __forceinline__ float4 wkv7c_scale4(float4 x, float s) { return make_float4(x.x * s, x.y * s, x.z * s, x.w * s); }

__device__ __forceinline__ float4 wkv7c_fma4(float s, float4 x, float4 acc)
{
    return make_float4(fmaf(s, x.x, acc.x), fmaf(s, x.y, acc.y), fmaf(s, x.z, acc.z), fmaf(s, x.w, acc.w));
}

__device__ __forceinline__ float wkv7c_dot4(float4 x, float4 y, float acc)
{
    return fmaf(x.w, y.w, fmaf(x.z, y.z, fmaf(x.y, y.y, fmaf(x.x, y.x, acc))));
}

// Shared memory of the prep kernel (floats): r (then R′ᵀ), γ, k, a, b and Pᵀ as [L][N + 4], four L×L matrices, T and Q
// [L][L + 1].
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
    // T = (I − M)⁻¹ with M = A_abᵀ strictly upper triangular, so M¹⁶ = 0 and (I − M)⁻¹ = (I + M)(I + M²)(I + M⁴)(I + M⁸):
    // six 16×16 products, an element a thread, instead of a 16-step back substitution on 16 threads. The powers of M
    // live in Q's storage until Q is computed.
    float* Mp = Q;
    static_assert(L * L == WKV7C_PREP_THREADS, "an element of the 16×16 products a thread");
    const int ti = threadIdx.x / L, tj = threadIdx.x % L;
    {
        const float m = Mab[tj * M1 + ti];
        Mp[ti * M1 + tj] = m;
        T[ti * M1 + tj] = (ti == tj ? 1.f : 0.f) + m;
    }

    for (int level = 0; level < 3; level++)
    {
        __syncthreads();
        float power = 0.f;
        for (int m = 0; m < L; m++) power = fmaf(Mp[ti * M1 + m], Mp[m * M1 + tj], power);
        __syncthreads();
        Mp[ti * M1 + tj] = power;
        __syncthreads();
        float product = T[ti * M1 + tj];
        for (int m = 0; m < L; m++) product = fmaf(T[ti * M1 + m], Mp[m * M1 + tj], product);
        __syncthreads();
        T[ti * M1 + tj] = product;
    }

    __syncthreads();
    // Pᵀ[t][j] = Σ_{m≤t} T[m][t] Ã[m][j];  Q[i][t] = Σ_{m≤t} A_ak[m][i] T[m][t].
    for (int x = threadIdx.x; x < L * V4; x += blockDim.x)
    {
        const int t = x / V4, j = (x % V4) * 4;
        float4 p = zero;
        for (int m = 0; m <= t; m++) p = wkv7c_fma4(T[m * M1 + t], *(const float4*)(A + m * S + j), p);
        *(float4*)(P + t * S + j) = p;
    }

    for (int x = threadIdx.x; x < L * L; x += blockDim.x)
    {
        const int i = x / L, t = x % L;
        float q = 0.f;
        for (int m = 0; m <= t; m++) q = fmaf(Mak[m * M1 + i], T[m * M1 + t], q);
        Q[i * M1 + t] = q;
        out[4 * L * N + i * 2 * L + t] = q;
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
        *(float4*)(R + t * S + j) = rp; // R′ᵀ: row t reads only Pᵀ
        *(float4*)(out + 2 * L * N + t * N + j) = make_float4(bq.x * g.x, bq.y * g.y, bq.z * g.z, bq.w * g.w);
        *(float4*)(out + 3 * L * N + t * N + j) = make_float4(kq.x * g.x, kq.y * g.y, kq.z * g.z, kq.w * g.w);
    }

    for (int x = threadIdx.x; x < L * L; x += blockDim.x)
    {
        const int i = x / L, t = x % L;
        float wp = Mrk[t * M1 + i];
        for (int m = 0; m <= t; m++) wp = fmaf(Q[i * M1 + m], Mrb[t * M1 + m], wp);
        out[4 * L * N + i * 2 * L + L + t] = wp;
    }

    __syncthreads();
    // MA[j][col] = Pᵀ[col][j] (col < L) or R′ᵀ[col − L][j]: the scan's phase A reads rows of it.
    for (int x = threadIdx.x; x < N * L / 2; x += blockDim.x)
    {
        const int j = x / (L / 2), col = (x % (L / 2)) * 4;
        const float* src = col < L ? P + col * S + j : R + (col - L) * S + j;
        *(float4*)(out + j * 2 * L + col) = make_float4(src[0], src[S], src[2 * S], src[3 * S]);
    }

    for (int j = threadIdx.x; j < N; j += blockDim.x) out[4 * L * N + 2 * L * L + j] = gl[j];
    if (threadIdx.x == 0) out[4 * L * N + 2 * L * L + N] = 0.f;
}

// The scan's geometry: a block holds R = 32 state rows of a head in 4×4 register tiles, warps of 16 rows × 32 keys
// (WR = 2 down, WC = N/32 across), 32·WR·WC threads. Phase A ([u | y] = S·MA + v·QW, 32 × 2L) splits its K = N + L
// over the WC warp columns (KS each) and sums the splits through shared memory.
template <int N> struct Wkv7cScan
{
    static constexpr int L = WKV7C_L, R = 32, WR = 2, WC = N / 32, THREADS = 32 * WR * WC, KS = (N + L) / WC;
    static constexpr int RECORD = WKV7C_RECORD(N), BUFFER = RECORD + L * R;
    static_assert((N + L) % WC == 0 && N % 32 == 0, "head dims 64 and 128");
};

// Shared memory of the scan kernel (floats): two buffers (a record and its chunk's v [L][R]), Sᵀ [N][R], the split
// sums [WC][R][2L], u and y [L][R].
#define WKV7C_SCAN_SHARED(N) (2 * Wkv7cScan<N>::BUFFER + (N) * 32 + Wkv7cScan<N>::WC * 32 * 2 * WKV7C_L + 2 * WKV7C_L * 32)

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

// acc[r][q] += a[r]·b[q]: one k of a 4×4 register tile.
__device__ __forceinline__ void wkv7c_outer(float (&acc)[4][4], float4 a, float4 b)
{
    const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
    for (int r = 0; r < 4; r++)
    {
#pragma unroll
        for (int q = 0; q < 4; q++) acc[r][q] = fmaf(av[r], bv[q], acc[r][q]);
    }
}

template <int N> __device__ __forceinline__ void wkv7_chunk_scan(const float* r, const float* w, const float* k, const float* v,
    const float* a, const float* b, const float* records, float* state, int tokens, int heads, float* y)
{
    using G = Wkv7cScan<N>;
    constexpr int L = G::L, R = G::R, WC = G::WC, KS = G::KS, RECORD = G::RECORD, L2 = 2 * L;
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
    float* St = scan + 2 * G::BUFFER; // Sᵀ [N][R]: the state at the chunk's start
    float* Red = St + N * R;          // Phase A's split sums [WC][R][2L]
    float* Us = Red + WC * R * L2;    // u [m][i]
    float* Ys = Us + L * R;           // y [m][i]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wr = warp / WC, wc = warp % WC;
    const int r0 = 16 * wr + 4 * (lane >> 3); // the thread's 4 rows (both phases)
    const int c0 = 32 * wc + 4 * (lane & 7);  // its 4 keys of the state (phase B)
    const int a0 = 4 * (lane & 7);            // its 4 of the 2L columns of [u | y] (phase A, split wc)
    const i64 column = (i64)h * N + i0;       // of row 0 in v and y

    // s[rr][q] = S[r0 + rr][c0 + q], mirrored into Sᵀ for phase A.
    float s[4][4];
#pragma unroll
    for (int rr = 0; rr < 4; rr++)
    {
        const float4 x = *(const float4*)(state + ((i64)h * N + i0 + r0 + rr) * N + c0);
        s[rr][0] = x.x; s[rr][1] = x.y; s[rr][2] = x.z; s[rr][3] = x.w;
    }

#pragma unroll
    for (int q = 0; q < 4; q++) *(float4*)(St + (c0 + q) * R + r0) = make_float4(s[0][q], s[1][q], s[2][q], s[3][q]);

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
        const float* MA = cur;             // [N][2L]: P | R′
        const float* BK = cur + 2 * L * N; // [2L][N]: B̃ ; K̃
        const float* QW = cur + 4 * L * N; // [L][2L]: Q | W′
        const float* gl = QW + 2 * L * L;  // γ_L [N], then the flag
        const float* Vs = cur + RECORD;    // v [m][i]
        if (gl[N] != 0.f)
        {
            // γ left fp32's safe range in this chunk: the plain recurrence, token by token, on Sᵀ. A row is spread over
            // P = THREADS/R consecutive lanes, each with the keys p, p + P, …; every thread updates only its own.
            constexpr int P = G::THREADS / R;
            const int i = threadIdx.x / P, p = threadIdx.x % P;
            for (int m = 0; m < L && t0 + m < tokens; m++)
            {
                const i64 o = (i64)(t0 + m) * width + (i64)h * N;
                float sa = 0.f;
                for (int j = p; j < N; j += P) sa = fmaf(a[o + j], St[j * R + i], sa);
#pragma unroll
                for (int x = P / 2; x > 0; x >>= 1) sa += __shfl_xor_sync(0xffffffffu, sa, x);
                const float vi = Vs[m * R + i];
                float yi = 0.f;
                for (int j = p; j < N; j += P)
                {
                    const float value = fmaf(b[o + j], sa, fmaf(k[o + j], vi, St[j * R + i] * w[o + j]));
                    St[j * R + i] = value;
                    yi = fmaf(value, r[o + j], yi);
                }

#pragma unroll
                for (int x = P / 2; x > 0; x >>= 1) yi += __shfl_xor_sync(0xffffffffu, yi, x);
                if (p == 0) y[o + i0 + i] = yi;
            }

            __syncthreads();
#pragma unroll
            for (int q = 0; q < 4; q++)
            {
                const float4 x = *(const float4*)(St + (c0 + q) * R + r0);
                s[0][q] = x.x; s[1][q] = x.y; s[2][q] = x.z; s[3][q] = x.w;
            }
        }
        else
        {
            // Phase A, split wc of K: [u | y][r0 …][a0 …] over k ∈ [wc·KS, wc·KS + KS) of [Sᵀ ; vᵀ]·[MA ; QW].
            float acc[4][4] = {};
            const int k0 = wc * KS, k1 = k0 + KS;
#pragma unroll 4
            for (int kk = k0; kk < min(k1, N); kk++)
                wkv7c_outer(acc, *(const float4*)(St + kk * R + r0), *(const float4*)(MA + kk * L2 + a0));
#pragma unroll 4
            for (int kk = max(k0, N); kk < k1; kk++)
                wkv7c_outer(acc, *(const float4*)(Vs + (kk - N) * R + r0), *(const float4*)(QW + (kk - N) * L2 + a0));
#pragma unroll
            for (int rr = 0; rr < 4; rr++)
                *(float4*)(Red + (wc * R + r0 + rr) * L2 + a0) = make_float4(acc[rr][0], acc[rr][1], acc[rr][2], acc[rr][3]);

            __syncthreads();
            for (int x = threadIdx.x; x < R * L2; x += blockDim.x)
            {
                const int i = x / L2, col = x % L2;
                float sum = Red[i * L2 + col];
#pragma unroll
                for (int split = 1; split < WC; split++) sum += Red[(split * R + i) * L2 + col];
                (col < L ? Us + col * R : Ys + (col - L) * R)[i] = sum;
            }

            __syncthreads();
            // Phase B: S ← S ⊙ γ_L + [u | v]·[B̃ ; K̃] on the thread's tile, then Sᵀ for the next chunk.
            const float4 g = *(const float4*)(gl + c0);
#pragma unroll
            for (int rr = 0; rr < 4; rr++)
            {
                s[rr][0] *= g.x; s[rr][1] *= g.y; s[rr][2] *= g.z; s[rr][3] *= g.w;
            }

#pragma unroll 4
            for (int m = 0; m < L; m++) wkv7c_outer(s, *(const float4*)(Us + m * R + r0), *(const float4*)(BK + m * N + c0));
#pragma unroll 4
            for (int m = 0; m < L; m++) wkv7c_outer(s, *(const float4*)(Vs + m * R + r0), *(const float4*)(BK + (L + m) * N + c0));
#pragma unroll
            for (int q = 0; q < 4; q++) *(float4*)(St + (c0 + q) * R + r0) = make_float4(s[0][q], s[1][q], s[2][q], s[3][q]);

            for (int x = threadIdx.x; x < L * R; x += blockDim.x)
            {
                const int m = x / R, i = x % R;
                if (t0 + m < tokens) y[(i64)(t0 + m) * width + column + i] = Ys[x];
            }
        }

        __syncthreads();
    }

#pragma unroll
    for (int rr = 0; rr < 4; rr++)
        *(float4*)(state + ((i64)h * N + i0 + r0 + rr) * N + c0) = make_float4(s[rr][0], s[rr][1], s[rr][2], s[rr][3]);
}

// CudaOps.Wkv7Chunked launches these (head dims 64 and 128: every Qwen2.5 size).
#define WKV7_CHUNKED(N)                                                                                                         \
    extern "C" __global__ void __launch_bounds__(WKV7C_PREP_THREADS) wkv7_chunk_prep_f32_n##N(const float* r, const float* w, \
        const float* k, const float* a, const float* b, int tokens, int heads, float* records)                                 \
    {                                                                                                                           \
        wkv7_chunk_prep<N>(r, w, k, a, b, tokens, heads, records);                                                              \
    }                                                                                                                           \
    extern "C" __global__ void __launch_bounds__(Wkv7cScan<N>::THREADS, 1) wkv7_chunk_scan_f32_n##N(const float* r,            \
        const float* w, const float* k, const float* v, const float* a, const float* b, const float* records, float* state,    \
        int tokens, int heads, float* y)                                                                                        \
    {                                                                                                                           \
        wkv7_chunk_scan<N>(r, w, k, v, a, b, records, state, tokens, heads, y);                                                 \
    }
WKV7_CHUNKED(64)
WKV7_CHUNKED(128)
