// Wkv7 prefill in chunks of 16 tokens: the generalised delta rule in its chunked (WY) form, so that what stays
// sequential per head is T/16 matrix steps instead of T dependent row reductions. The equations (and a float64 check of
// them against the scan) are in scripts/prototypes/wkv7_chunked.py and docs/NOTES.md ("Prefill: the chunked wkv7").
//
// wkv7_chunk_prep_f32_n{N}: one block per (chunk, head, sequence), all in parallel. From the chunk's r, w, k, a, b it
//   writes a record (WKV7C_RECORD(N) floats; Wkv7cRecord<N> below): [P | R′]ᵀ, [B̃ ; K̃]ᵀ, [Q | W′]ᵀ, γ_L and a flag,
//   in the scan's shared-memory layout, so that the scan stages it by one flat copy. γ_t is the
//   running product of w over the chunk; the record holds a·γ_{t−1} and b/γ_i, so it is only exact while γ stays far
//   inside fp32's range: RAD-RWKV7's w ∈ (0.545, 1) gives γ ≥ 6e-5 over 16 tokens. Where any γ leaves [1e-25, 1e25]
//   (or is not a number) the flag is set and the scan kernel runs that chunk token by token instead.
// wkv7_chunk_scan_f32_n{N}: one block per 32 state rows of a head (sequential over the chunks), on the tensor cores:
//   per chunk [u | y] = S·[P | R′] + v·[Q | W′], then S ← S ⊙ γ_L + [u | v]·[B̃ ; K̃], every product as three TF32
//   mma (operands split into hi + lo: about fp32's precision; one TF32 product would round each operand to 11 bits).
//   The state stays in the mma accumulators across the chunks (and in shared memory, split, as phase A's operand).
//   Records are staged into shared memory one chunk ahead (sm_90: one cp.async.bulk each), and every fragment is read
//   by ldmatrix (one instruction for four registers: the kernel is bound by its instructions and the tensor pipe, not
//   by bandwidth). sm_80 and later.
// Layouts as wkv7_tile_f32: r … b, v, y [sequences · T, H·N], state [sequences · H, N_v, N_k] value-major.
#include "common.cuh"

#define WKV7C_L 16
#define WKV7C_PREP_THREADS 256

// A chunk record (floats), laid out as the scan's shared memory holds it: each part is the transpose of the product's
// B operand (rows = output columns n, columns = the summed index k), which is what ldmatrix reads as B fragments, and
// rows are padded by 4 words so that the 8 rows of an ldmatrix fall into distinct banks. MA = [P | R′]ᵀ [2L][N + 4]
// (row n < L: Pᵀ[n], row L + t: R′ᵀ[t]; the keys of every 8-key group in the order 0 2 4 6 1 3 5 7, which makes the
// scan's state accumulators its A fragments: wkv7c_state_a); BK = [B̃ ; K̃]ᵀ [N][2L + 4] (row j: B̃[·][j], its tokens
// in the same order 0 2 4 6 1 3 5 7 an 8-token group, then K̃[·][j] in order); QW = [Q | W′]ᵀ [2L][L + 4]; γ_L [N]; the
// flag and 3 unused words. Padding words are never written nor read.
template <int N> struct Wkv7cRecord
{
    static constexpr int L = WKV7C_L, MS = N + 4, BS = 2 * L + 4, QS = L + 4;
    static constexpr int MA = 0, BK = MA + 2 * L * MS, QW = BK + N * BS, GAMMA = QW + 2 * L * QS, FLAG = GAMMA + N, SIZE = FLAG + 4;
    static_assert(SIZE % 4 == 0 && BK % 4 == 0 && QW % 4 == 0 && GAMMA % 4 == 0, "parts stay 16-byte aligned");
};
// Floats of one chunk record.
#define WKV7C_RECORD(N) (Wkv7cRecord<N>::SIZE)

// x rounded to TF32 (to nearest, ties away from zero: what cvt.rna.tf32.f32 gives for finite x) by integer
// operations: cvt runs at a fraction of the rate of integer operations, and the scan splits ~300 values a lane a chunk.
__device__ __forceinline__ unsigned wkv7c_tf32(float x) { return (__float_as_uint(x) + 0x1000u) & 0xffffe000u; }

// x = hi + lo: hi is x rounded to TF32 (exact as an mma operand), lo = x − hi exactly, passed as it is: the tensor
// cores read a TF32 operand's top 19 bits, so lo (|lo| ≤ 2⁻¹¹|x|) loses at most 2⁻¹¹ of itself, and the three TF32
// products (lo·hi, hi·lo, hi·hi) keep each product to ~2⁻²¹, about fp32's precision. Three integer/float operations
// (rounding lo too would take two more for ~2× less error: measured on the H200, the tolerance holds without).
__device__ __forceinline__ void wkv7c_split(float x, unsigned& hi, unsigned& lo)
{
    hi = wkv7c_tf32(x);
    lo = __float_as_uint(x - __uint_as_float(hi));
}

// d += A·B for one warp: A 16×8 (a0 = A[g][c], a1 = A[g+8][c], a2 = A[g][c+4], a3 = A[g+8][c+4]), B 8×8 (b0 = B[c][g],
// b1 = B[c+4][g]), d 16×8 (d0 = D[g][2c], d1 = D[g][2c+1], d2 = D[g+8][2c], d3 = D[g+8][2c+1]); g = lane / 4, c = lane % 4.
__device__ __forceinline__ void wkv7c_mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
#if __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    // The same product gathered from the fragments by shuffles (the kernel-emulation build; the host gives this kernel
    // only to sm_80 and later), each operand cut to its top 19 bits as the tensor cores read it.
    const int lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
    const unsigned cut = 0xffffe000u;
    for (int k = 0; k < 8; k++)
    {
        const int from = 4 * g + (k & 3);
        const float top = __uint_as_float(__shfl_sync(0xffffffffu, k < 4 ? a[0] : a[2], from) & cut);
        const float bottom = __uint_as_float(__shfl_sync(0xffffffffu, k < 4 ? a[1] : a[3], from) & cut);
        const float left = __uint_as_float(__shfl_sync(0xffffffffu, k < 4 ? b0 : b1, 8 * c + (k & 3)) & cut);
        const float right = __uint_as_float(__shfl_sync(0xffffffffu, k < 4 ? b0 : b1, 8 * c + 4 + (k & 3)) & cut);
        d[0] = fmaf(top, left, d[0]);
        d[1] = fmaf(top, right, d[1]);
        d[2] = fmaf(bottom, left, d[2]);
        d[3] = fmaf(bottom, right, d[3]);
    }
#endif
}

// The three TF32 products of A·B into three accumulators (hi·hi, hi·lo, lo·hi): independent mma chains, so a warp's
// long sums do not wait on each mma's latency; the caller adds the two small ones into the large one at the end. The B
// fragment comes as fp32 bits (b0, b1) and is split here.
__device__ __forceinline__ void wkv7c_mma3x(float (&dhh)[4], float (&dhl)[4], float (&dlh)[4], const unsigned (&ahi)[4],
    const unsigned (&alo)[4], unsigned b0, unsigned b1)
{
    unsigned b0hi, b0lo, b1hi, b1lo;
    wkv7c_split(__uint_as_float(b0), b0hi, b0lo);
    wkv7c_split(__uint_as_float(b1), b1hi, b1lo);
    wkv7c_mma(dlh, alo, b0hi, b1hi);
    wkv7c_mma(dhl, ahi, b0lo, b1lo);
    wkv7c_mma(dhh, ahi, b0hi, b1hi);
}

// ldmatrix.x4 on 32-bit words (its 8×8 16-bit matrices are 8×4 words): matrix q's row r starts at at(q, r) (16-byte
// aligned, in shared memory), and lane 4g + c gets word c of row g of matrix q in d[q]. Under the emulator the same
// words are read directly.
template <class At> __device__ __forceinline__ void wkv7c_ldsm(At at, unsigned (&d)[4])
{
    const int lane = threadIdx.x & 31;
#if __CUDA_ARCH__ >= 800
    const unsigned address = (unsigned)__cvta_generic_to_shared(at(lane >> 3, lane & 7));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
        : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
        : "r"(address));
#else
#pragma unroll
    for (int q = 0; q < 4; q++) d[q] = at(q, lane >> 2)[lane & 3];
#endif
}

// The A fragment (rows row0 …, k0 …: a0 = A[g][c], a1 = A[g+8][c], a2 = A[g][c+4], a3 = A[g+8][c+4]) of a row-major
// [rows][stride] array.
__device__ __forceinline__ void wkv7c_ldsm_a(const unsigned* p, int stride, int row0, int k0, unsigned (&a)[4])
{
    wkv7c_ldsm([=](int q, int r) { return p + (row0 + 8 * (q & 1) + r) * stride + k0 + 4 * (q >> 1); }, a);
}

// The B fragments (b0 = B[k0+c][n0+g], b1 = B[k0+c+4][n0+g]) of two k-steps, k0 (b[0], b[1]) and k0 + 8 (b[2], b[3]),
// from Bᵀ stored row-major as [n][stride].
__device__ __forceinline__ void wkv7c_ldsm_b(const unsigned* p, int stride, int n0, int k0, unsigned (&b)[4])
{
    wkv7c_ldsm([=](int q, int r) { return p + (n0 + r) * stride + k0 + 4 * q; }, b);
}

// The A fragment as above, split into TF32 hi and lo.
__device__ __forceinline__ void wkv7c_ldsm_a_split(const unsigned* p, int stride, int row0, int k0, unsigned (&hi)[4], unsigned (&lo)[4])
{
    unsigned x[4];
    wkv7c_ldsm_a(p, stride, row0, k0, x);
#pragma unroll
    for (int e = 0; e < 4; e++) wkv7c_split(__uint_as_float(x[e]), hi[e], lo[e]);
}

// Shared memory of the prep kernels (4-byte words): R̃ (then R′ᵀ), γ, k̂, Ã, b̂ and Pᵀ as [L][N + 4], four L×L
// matrices, T and Q [L][L + 1], and the chunk's flag (all dynamic: the host sizes the block by this alone).
#define WKV7C_PREP_SHARED(N) (6 * WKV7C_L * ((N) + 4) + 6 * WKV7C_L * (WKV7C_L + 1) + 1)

// The prep's shared arrays (WKV7C_PREP_SHARED(N) words from base).
template <int N> struct Wkv7cPrep
{
    static constexpr int L = WKV7C_L, S = N + 4, M1 = L + 1;
    float *R, *G, *K, *A, *B, *P, *Mab, *Mak, *Mrb, *Mrk, *T, *Q;
    int* unsafe;
    __device__ __forceinline__ explicit Wkv7cPrep(float* base)
    {
        R = base;        // R̃ = r ⊙ γ_t, then R′ᵀ
        G = R + L * S;   // γ_t = Π_{τ≤t} w_τ
        K = G + L * S;   // k̂ = k / γ_t
        A = K + L * S;   // Ã = a ⊙ γ_{t−1}
        B = A + L * S;   // b̂ = b / γ_t
        P = B + L * S;   // Pᵀ [L][S] (the fused prep first holds w there)
        Mab = P + L * S; // [t][i], i < t (then Mak, Mrb, Mrk: i ≤ t for the r ones)
        Mak = Mab + L * M1;
        Mrb = Mak + L * M1;
        Mrk = Mrb + L * M1;
        T = Mrk + L * M1; // (I − A_abᵀ)⁻¹, upper triangular
        Q = T + L * M1;
        unsafe = (int*)(Q + L * M1);
    }
};

// γ_t[j] = Π_{τ≤t} w_τ[j] into G, a thread a key, from wt(t, j) (w of the chunk's token t; 1 past the end); sets
// *unsafe where any γ leaves [1e-25, 1e25] or is not a number. Ends with a barrier.
template <int N, class Wt> __device__ __forceinline__ void wkv7c_prep_gamma(const Wkv7cPrep<N>& s, Wt wt)
{
    constexpr int L = WKV7C_L, S = N + 4;
    for (int j = threadIdx.x; j < N; j += blockDim.x)
    {
        float wv[L];
#pragma unroll
        for (int t = 0; t < L; t++) wv[t] = wt(t, j);
        float g = 1.f;
        bool bad = false;
#pragma unroll
        for (int t = 0; t < L; t++)
        {
            g *= wv[t];
            s.G[t * S + j] = g;
            bad |= !(g >= 1e-25f && g <= 1e25f);
        }

        if (bad) *s.unsafe = 1;
    }

    __syncthreads();
}

// R̃ = r ⊙ γ_t, Ã = a ⊙ γ_{t−1}, k̂ = k / γ_t, b̂ = b / γ_t (float4s), with row(t, j, which) giving r, a, k, b (which
// 0 … 3) at the chunk's token t, keys j … j + 3 (zeros past the end).
template <int N, class Row> __device__ __forceinline__ void wkv7c_prep_scale(const Wkv7cPrep<N>& s, Row row)
{
    constexpr int L = WKV7C_L, S = N + 4, V4 = N / 4;
    for (int x = threadIdx.x; x < L * V4; x += blockDim.x)
    {
        const int t = x / V4, j = (x % V4) * 4;
        const float4 g = *(const float4*)(s.G + t * S + j);
        const float4 before = t > 0 ? *(const float4*)(s.G + (t - 1) * S + j) : make_float4(1.f, 1.f, 1.f, 1.f);
        const float4 rv = row(t, j, 0), av = row(t, j, 1), kv = row(t, j, 2), bv = row(t, j, 3);
        *(float4*)(s.R + t * S + j) = make_float4(rv.x * g.x, rv.y * g.y, rv.z * g.z, rv.w * g.w);
        *(float4*)(s.A + t * S + j) = make_float4(av.x * before.x, av.y * before.y, av.z * before.z, av.w * before.w);
        *(float4*)(s.K + t * S + j) = make_float4(kv.x / g.x, kv.y / g.y, kv.z / g.z, kv.w / g.w);
        *(float4*)(s.B + t * S + j) = make_float4(bv.x / g.x, bv.y / g.y, bv.z / g.z, bv.w / g.w);
    }
}

// out [L][N + 4] = base + A·B for a 16×16 A (A[i][k] = a[i·rs + k·cs]: a row-major matrix or, by its strides, the
// transpose of one) and B [L][N + 4] (row m, column j), base [L][N + 4] or none (zero); a warp per 8-column tile (and
// the next 8 warps' tiles). Each product is the sum of three TF32 ones (wkv7c_mma3x). out may be base (each lane reads
// its own elements first).
template <int N> __device__ __forceinline__ void wkv7c_prep_tiles(const float* a, int rs, int cs, const float* B, float* out,
    const float* base)
{
    constexpr int S = N + 4;
    const int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, cc = threadIdx.x & 3;
    // A's fragments of the k-steps 0 … 7 and 8 … 15, split (a0 = A[g][k], a1 = A[g+8][k], a2 = A[g][k+4], a3 = A[g+8][k+4]).
    unsigned ah[2][4], al[2][4];
#pragma unroll
    for (int e = 0; e < 2; e++)
    {
        const int k = 8 * e + cc;
        const float x[4] = {a[g * rs + k * cs], a[(g + 8) * rs + k * cs], a[g * rs + (k + 4) * cs], a[(g + 8) * rs + (k + 4) * cs]};
#pragma unroll
        for (int q = 0; q < 4; q++) wkv7c_split(x[q], ah[e][q], al[e][q]);
    }

    for (int n0 = 8 * warp; n0 < N; n0 += WKV7C_PREP_THREADS / 4)
    {
        const int j = n0 + 2 * cc;
        float hh[4] = {}, hl[4] = {}, lh[4] = {};
        if (base != nullptr)
        {
            const float2 top = *(const float2*)(base + g * S + j), bottom = *(const float2*)(base + (g + 8) * S + j);
            hh[0] = top.x; hh[1] = top.y; hh[2] = bottom.x; hh[3] = bottom.y;
        }

#pragma unroll
        for (int e = 0; e < 2; e++)
        {
            const int m = 8 * e + cc;
            wkv7c_mma3x(hh, hl, lh, ah[e], al[e], __float_as_uint(B[m * S + n0 + g]), __float_as_uint(B[(m + 4) * S + n0 + g]));
        }

        *(float2*)(out + g * S + j) = make_float2(hh[0] + (hl[0] + lh[0]), hh[1] + (hl[1] + lh[1]));
        *(float2*)(out + (g + 8) * S + j) = make_float2(hh[2] + (hl[2] + lh[2]), hh[3] + (hl[3] + lh[3]));
    }
}

// The rest of a chunk's prep once R̃, Ã, k̂, b̂ and γ are in shared memory: the four L×L products, T, P, Q, R′, W′ and
// the record (out: WKV7C_RECORD(N) floats).
template <int N> __device__ __forceinline__ void wkv7c_prep_record(const Wkv7cPrep<N>& s, float* out)
{
    using Rec = Wkv7cRecord<N>;
    constexpr int L = WKV7C_L, S = N + 4, M1 = L + 1;
    float *R = s.R, *G = s.G, *K = s.K, *A = s.A, *B = s.B, *P = s.P, *Mab = s.Mab, *Mak = s.Mak, *Mrb = s.Mrb, *Mrk = s.Mrk;
    float *T = s.T, *Q = s.Q;
    __syncthreads();
    // A_ab[t][i] = Ã_t·b̂_i, A_ak = Ã_t·k̂_i (kept for i < t); A_rb = R̃_t·b̂_i, A_rk = R̃_t·k̂_i (i ≤ t): four 16×16
    // products over K = N on the tensor cores (three TF32 mma each), a warp per (left, right, 8 columns of i).
    {
        static_assert(WKV7C_PREP_THREADS == 256, "eight warps: two left × two right operands × two column tiles");
        const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, cc = lane & 3;
        const float* left = warp & 1 ? R : A;
        const float* right = warp & 2 ? K : B;
        const int n0 = 8 * (warp >> 2);
        float hh[4] = {}, hl[4] = {}, lh[4] = {};
        // Two k-steps a pass: left's A fragments and right's B fragments (right is Bᵀ row-major) by ldmatrix.
#pragma unroll 4
        for (int k0 = 0; k0 < N; k0 += 16)
        {
            unsigned hi[2][4], lo[2][4], bf[4];
#pragma unroll
            for (int e = 0; e < 2; e++) wkv7c_ldsm_a_split((const unsigned*)left, S, 0, k0 + 8 * e, hi[e], lo[e]);
            wkv7c_ldsm_b((const unsigned*)right, S, n0, k0, bf);
#pragma unroll
            for (int e = 0; e < 2; e++) wkv7c_mma3x(hh, hl, lh, hi[e], lo[e], bf[2 * e], bf[2 * e + 1]);
        }

        float d[4];
#pragma unroll
        for (int e = 0; e < 4; e++) d[e] = hh[e] + (hl[e] + lh[e]);

        float* M = warp & 1 ? (warp & 2 ? Mrk : Mrb) : (warp & 2 ? Mak : Mab);
        const bool strict = !(warp & 1);
        const int i = n0 + 2 * cc;
        M[g * M1 + i] = (strict ? i < g : i <= g) ? d[0] : 0.f;
        M[g * M1 + i + 1] = (strict ? i + 1 < g : i + 1 <= g) ? d[1] : 0.f;
        M[(g + 8) * M1 + i] = (strict ? i < g + 8 : i <= g + 8) ? d[2] : 0.f;
        M[(g + 8) * M1 + i + 1] = (strict ? i + 1 < g + 8 : i + 1 <= g + 8) ? d[3] : 0.f;
    }

    __syncthreads();
    // T = (I − A_abᵀ)⁻¹ (upper triangular) by back substitution in one warp, a column a lane in registers:
    // T[i][col] = δ + Σ_{m>i} A_ab[m][i] T[m][col]; the A_ab reads are broadcasts.
    if (threadIdx.x < 32)
    {
        const int col = threadIdx.x & (L - 1);
        float tc[L];
#pragma unroll
        for (int i = L - 1; i >= 0; i--)
        {
            float v = i == col ? 1.f : 0.f;
#pragma unroll
            for (int m = i + 1; m < L; m++) v = fmaf(Mab[m * M1 + i], tc[m], v);
            tc[i] = v;
        }

        if (threadIdx.x < L)
        {
#pragma unroll
            for (int i = 0; i < L; i++) T[i * M1 + col] = tc[i];
        }
    }

    __syncthreads();
    // Pᵀ[t][j] = Σ_{m≤t} T[m][t] Ã[m][j]: Pᵀ = Tᵀ·Ã on the tensor cores (T is zero below its diagonal, so the sum over
    // every m is the sum over m ≤ t);  Q[i][t] = Σ_{m≤t} A_ak[m][i] T[m][t].
    wkv7c_prep_tiles<N>(T, 1, M1, A, P, nullptr);

    for (int x = threadIdx.x; x < L * L; x += blockDim.x)
    {
        const int i = x / L, t = x % L;
        float q = 0.f;
        for (int m = 0; m <= t; m++) q = fmaf(Mak[m * M1 + i], T[m * M1 + t], q);
        Q[i * M1 + t] = q;
        out[Rec::QW + t * Rec::QS + i] = q; // [Q | W′]ᵀ row t
    }

    __syncthreads();
    // R′ᵀ[t][j] = R̃[t][j] + Σ_{m≤t} A_rb[t][m] Pᵀ[m][j]: R′ᵀ = R̃ + A_rb·Pᵀ on the tensor cores (A_rb is zero above its
    // diagonal), in place;  W′[i][t] = A_rk[t][i] + Σ_{m≤t} Q[i][m] A_rb[t][m].
    wkv7c_prep_tiles<N>(Mrb, M1, 1, P, R, R);

    for (int x = threadIdx.x; x < L * L; x += blockDim.x)
    {
        const int i = x / L, t = x % L;
        float wp = Mrk[t * M1 + i];
        for (int m = 0; m <= t; m++) wp = fmaf(Q[i * M1 + m], Mrb[t * M1 + m], wp);
        out[Rec::QW + (L + t) * Rec::QS + i] = wp;
    }

    __syncthreads();
    // MA = [Pᵀ ; R′ᵀ] row by row; BK row j = B̃[·][j], K̃[·][j] (B̃ = b̂ ⊙ γ_L, K̃ = k̂ ⊙ γ_L); γ_L; the flag.
    const float* gl = G + (L - 1) * S;
    for (int x = threadIdx.x; x < 2 * L * (N / 8); x += blockDim.x)
    {
        // Keys 0 2 4 6 1 3 5 7 of each 8-key group (the scan's A fragments of S: wkv7c_state_a).
        const int row = x / (N / 8), j = (x % (N / 8)) * 8;
        const float* src = row < L ? P + row * S : R + (row - L) * S;
        const float4 lo = *(const float4*)(src + j), hi = *(const float4*)(src + j + 4);
        float* to = out + Rec::MA + row * Rec::MS + j;
        *(float4*)to = make_float4(lo.x, lo.z, hi.x, hi.z);
        *(float4*)(to + 4) = make_float4(lo.y, lo.w, hi.y, hi.w);
    }

    for (int x = threadIdx.x; x < N * L / 2; x += blockDim.x)
    {
        // B̃'s tokens 0 2 4 6 1 3 5 7 an 8-token group (u's A fragments come in that order: wkv7c_state_a), K̃'s in order.
        const int j = x / (L / 2), m = (x % (L / 2)) * 4;
        const float* src = m < L ? B + ((m & 8) + ((m >> 2) & 1)) * S + j : K + (m - L) * S + j;
        const int step = m < L ? 2 * S : S;
        const float g = gl[j];
        *(float4*)(out + Rec::BK + j * Rec::BS + m) = make_float4(src[0] * g, src[step] * g, src[2 * step] * g, src[3 * step] * g);
    }

    for (int j = threadIdx.x; j < N; j += blockDim.x) out[Rec::GAMMA + j] = gl[j];
    if (threadIdx.x == 0) out[Rec::FLAG] = 0.f;
}


// The prep from r, w, k, a, b in global memory (IOps.Wkv7).
template <int N> __device__ __forceinline__ void wkv7_chunk_prep(const float* r, const float* w, const float* k, const float* a,
    const float* b, int tokens, int heads, float* records)
{
    using Rec = Wkv7cRecord<N>;
    constexpr int L = WKV7C_L;
    pdl_begin();
    const int c = blockIdx.x, h = blockIdx.y;
    const i64 width = (i64)heads * N;
    {
        const i64 rows = (i64)blockIdx.z * tokens * width;
        r += rows; w += rows; k += rows; a += rows; b += rows;
    }
    float* out = records + (((i64)blockIdx.z * heads + h) * gridDim.x + c) * Rec::SIZE;
    extern __shared__ float prep[];
    const Wkv7cPrep<N> s(prep);
    const int t0 = c * L;
    // Tokens past the end change nothing: w = 1 there, and r = k = a = b = 0 below (v = 0 in the scan).
    if (threadIdx.x == 0) *s.unsafe = 0;
    __syncthreads();
    wkv7c_prep_gamma<N>(s, [&](int t, int j) { return t0 + t < tokens ? w[(i64)(t0 + t) * width + (i64)h * N + j] : 1.f; });
    if (*s.unsafe)
    {
        // The scan kernel runs this chunk token by token from r … b; nothing else of the record is read.
        if (threadIdx.x == 0) out[Rec::FLAG] = 1.f;
        return;
    }

    const float* from[4] = {r, a, k, b};
    wkv7c_prep_scale<N>(s, [&](int t, int j, int which) {
        return t0 + t < tokens ? *(const float4*)(from[which] + (i64)(t0 + t) * width + (i64)h * N + j) : make_float4(0.f, 0.f, 0.f, 0.f);
    });
    wkv7c_prep_record<N>(s, out);
}

// The prep of IOps.Rwkv7RopeKeysWkv7 (a prompt chunk's RAD-RWKV7 steps 2–9): r, w, k̃, a = −κ and b = κ ⊙ a are formed
// here from the layer's raw inputs instead of being read (each of them a [T, H·N] pass of its own before), with the
// same fp32 operations as rwkv7_decay_f32, add_sigmoid_f32, rope_expand_f32 and rwkv7_keys_vres_f32 (so the record
// has the bits of the composed ops'): w = exp(scale·σ(z_w + w0)), a = σ(z_a + a0), r and k rotated (pair i of token t
// from rope [T][N/2] (cos, sin), computed once a pass; none without RoPE), k and v of KV head h / groups, the keys
// (common.cuh's rwkv7_keys_vres_head, lane j + 32u), ν = σ(z_ν + v0) and v ← v + (v_first − v) ⊙ ν (z_ν null in
// layer 0). The chunk's raw r, k, z_a and z_w rows are staged into shared memory by cp.async while every thread (a key
// and 8 or 4 tokens) writes v with its residual to vh for the scan; then w from the staged z_w (into P, which the
// record overwrites later); γ a thread a key; then a warp a token (two tokens a warp) forms the row's keys and stores
// R̃, Ã, k̂, b̂ already scaled by γ over the staged rows. A flagged chunk (γ out of
// range: only NaN inputs, since this w lies in (0.545, 1]) writes its r, w, k̃, a, b into fr … fb instead, which the
// scan's token-by-token path then reads; they are never written otherwise. k, v [T, KVH·N]; the rest [T, H·N].
template <int N> __device__ __forceinline__ void wkv7_chunk_prep_keys(const float* r, const float* k, const float* v, int groups,
    const float2* rope, const float* zw, const void* w0, int w0_dtype, float decay_scale, const float* za, const void* a0,
    int a0_dtype, const void* key_scale, int key_scale_dtype, const void* iclr_mix, int iclr_mix_dtype, int balanced,
    const float* zv, const void* v0, int v0_dtype, const float* v_first, float* vh, float* fr, float* fw, float* fk, float* fa,
    float* fb, int tokens, int heads, float* records)
{
    using Rec = Wkv7cRecord<N>;
    constexpr int L = WKV7C_L, S = N + 4, KPL = N / 32, HALF = KPL / 2;
    static_assert(N % 64 == 0, "whole RoPE pairs a lane: keys lane + 32u and lane + 32u + N/2");
    const int c = blockIdx.x, h = blockIdx.y, kvh = h / groups;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const i64 width = (i64)heads * N, kv_width = width / groups;
    float* out = records + ((i64)h * gridDim.x + c) * Rec::SIZE;
    extern __shared__ float prep[];
    const Wkv7cPrep<N> s(prep);
    const int t0 = c * L;
    // The head's weights (not activations: before the PDL wait).
    float ks[KPL], ka[KPL];
    rwkv7_keys_weights<KPL>(key_scale, key_scale_dtype, iclr_mix, iclr_mix_dtype, h, N, lane, balanced, ks, ka);
    pdl_begin();
    if (threadIdx.x == 0) *s.unsafe = 0;
    // The chunk's raw r, k (its KV head), z_a and z_w rows staged into R, K, A, B by 16-byte cp.async: they fly while
    // v's residual below runs (z_w then becomes w in P; the token pass overwrites R, K, A, B in place). Nothing is staged
    // past the end (the token pass writes zeros there).
    {
        // A thread's float4s: the same (token, keys) in all four arrays, so one address computation serves four copies
        // (the loop over all four arrays' float4s with its selects cost ~13 % of the prep's instructions).
        constexpr int V4 = N / 4, COPIES = L * V4 / WKV7C_PREP_THREADS;
        static_assert(COPIES * WKV7C_PREP_THREADS == L * V4, "the block covers a chunk's float4s exactly");
#pragma unroll
        for (int q = 0; q < COPIES; q++)
        {
            const int x = threadIdx.x + q * WKV7C_PREP_THREADS, t = x / V4, j = (x % V4) * 4;
            if (t0 + t >= tokens) continue;
            const i64 o = (i64)(t0 + t) * width + (i64)h * N + j, okv = (i64)(t0 + t) * kv_width + (i64)kvh * N + j;
            const int at = t * S + j;
            copy_async_16(s.R + at, r + o);
            copy_async_16(s.K + at, k + okv);
            copy_async_16(s.A + at, za + o);
            copy_async_16(s.B + at, zw + o);
        }

        copy_async_commit();
    }

    // Every thread: one key j and PER consecutive tokens (their loads issued together).
    constexpr int PER = L * N / WKV7C_PREP_THREADS;
    static_assert(PER * WKV7C_PREP_THREADS == L * N, "the block covers the chunk's keys × tokens exactly");
    const int jp = threadIdx.x % N, tb = threadIdx.x / N * PER;
    {
        // v of the KV head with the residual (ν = σ(z_ν + v0), layers after the first) into vh, for the scan.
        float vv[PER], zz[PER], ff[PER];
#pragma unroll
        for (int q = 0; q < PER; q++)
        {
            const int tt = t0 + tb + q;
            const bool in = tt < tokens;
            const i64 o = (i64)tt * width + (i64)h * N + jp;
            vv[q] = in ? v[(i64)tt * kv_width + (i64)kvh * N + jp] : 0.f;
            zz[q] = in && zv != 0 ? zv[o] : 0.f;
            ff[q] = in && zv != 0 ? v_first[o] : 0.f;
        }

        const float offset = zv != 0 ? load_any(v0, v0_dtype, (i64)h * N + jp) : 0.f;
#pragma unroll
        for (int q = 0; q < PER; q++)
        {
            const int tt = t0 + tb + q;
            if (tt >= tokens) continue;
            float vi = vv[q];
            if (zv != 0)
            {
                const float nu = sigmoid_(zz[q] + offset);
                vi = vi + (ff[q] - vi) * nu;
            }

            vh[(i64)tt * width + (i64)h * N + jp] = vi;
        }
    }

    copy_async_wait_all();
    __syncthreads();
    {
        // w = exp(scale·σ(z_w + w0)) (1 past the end) from the staged z_w into P.
        const float offset = load_any(w0, w0_dtype, (i64)h * N + jp);
#pragma unroll
        for (int q = 0; q < PER; q++)
        {
            const int t = tb + q;
            s.P[t * S + jp] = t0 + t < tokens ? expf(sigmoid_(s.B[t * S + jp] + offset) * decay_scale) : 1.f;
        }
    }

    __syncthreads();
    wkv7c_prep_gamma<N>(s, [&](int t, int j) { return s.P[t * S + j]; });
    const bool unsafe = *s.unsafe != 0;
    for (int t = warp; t < L; t += WKV7C_PREP_THREADS / 32)
    {
        const int tt = t0 + t;
        if (tt >= tokens)
        {
            // Past the end: r = k̃ = a = b = 0 (as the plain prep's; v = 0 is the scan's own fill).
#pragma unroll
            for (int u = 0; u < KPL; u++)
            {
                const int j = lane + 32 * u;
                s.R[t * S + j] = 0.f;
                s.A[t * S + j] = 0.f;
                s.K[t * S + j] = 0.f;
                s.B[t * S + j] = 0.f;
            }

            continue;
        }

        const i64 o = (i64)tt * width + (i64)h * N;
        float2 cs[HALF];
#pragma unroll
        for (int u = 0; u < HALF; u++) cs[u] = rope != 0 ? rope[(i64)tt * (N / 2) + lane + 32 * u] : make_float2(1.f, 0.f);
        float rr[KPL], kr[KPL], ar[KPL];
#pragma unroll
        for (int u = 0; u < KPL; u++)
        {
            const int j = lane + 32 * u;
            rr[u] = s.R[t * S + j];
            kr[u] = s.K[t * S + j];
            ar[u] = sigmoid_(s.A[t * S + j] + load_any(a0, a0_dtype, (i64)h * N + j));
        }

        if (rope != 0)
        {
#pragma unroll
            for (int u = 0; u < HALF; u++)
            {
                rope_pair(rr[u], rr[u + HALF], cs[u].x, cs[u].y);
                rope_pair(kr[u], kr[u + HALF], cs[u].x, cs[u].y);
            }
        }

        float sum = 0.f;
#pragma unroll
        for (int u = 0; u < KPL; u++)
        {
            const float kappa = balanced ? kr[u] : kr[u] * ks[u];
            sum = fmaf(kappa, kappa, sum);
        }

        const float inv = 1.f / fmaxf(sqrtf(warp_sum(sum)), 1e-12f);
#pragma unroll
        for (int u = 0; u < KPL; u++)
        {
            const int j = lane + 32 * u;
            const float kj = kr[u], ai = ar[u], wj = s.P[t * S + j];
            const float kappa = (balanced ? kj : kj * ks[u]) * inv;
            const float kt = balanced ? kj * (1.f - wj + ai) : kj * (1.f + (ai - 1.f) * ka[u]);
            const float av = -kappa, bv = kappa * ai;
            if (unsafe)
            {
                fr[o + j] = rr[u];
                fw[o + j] = wj;
                fk[o + j] = kt;
                fa[o + j] = av;
                fb[o + j] = bv;
                continue;
            }

            // R̃ = r ⊙ γ_t, Ã = a ⊙ γ_{t−1}, k̂ = k̃ / γ_t, b̂ = b / γ_t (the plain prep's wkv7c_prep_scale, element by element).
            const float g = s.G[t * S + j], before = t > 0 ? s.G[(t - 1) * S + j] : 1.f;
            s.R[t * S + j] = rr[u] * g;
            s.A[t * S + j] = av * before;
            s.K[t * S + j] = kt / g;
            s.B[t * S + j] = bv / g;
        }
    }

    if (unsafe)
    {
        // The scan runs this chunk token by token from fr … fb; nothing else of the record is read.
        if (threadIdx.x == 0) out[Rec::FLAG] = 1.f;
        return;
    }

    wkv7c_prep_record<N>(s, out);
}

// IOps.Rwkv7RopeKeysWkv7's RoPE table: (cos, sin) of pair i at position start + t, rope [T][N/2], as rope_cos_sin
// computes them for every other RoPE kernel (float64 angle, fp32 results): once a pass instead of once a layer and head.
extern "C" __global__ void rope_table_f32(float2* rope, int start, int tokens, int n, float theta)
{
    pdl_begin();
    const int half = n / 2;
    GRID_STRIDE(x, (i64)tokens * half)
    {
        float cf, sf;
        rope_cos_sin((double)(start + x / half), (int)(x % half), n, theta, cf, sf);
        rope[x] = make_float2(cf, sf);
    }
}

// The scan's geometry: a block holds R = 32 or 16 state rows of a head (ROWT = R/16 mma row tiles) in W warps, each
// holding TB 8-key tiles of the state in phase B (S ← S ⊙ γ_L + [u | v]·BK, R × N), whose accumulators carry the state
// across the chunks: at N = 128, R = 32 is 16 warps in one block an SM (four a scheduler: with two, ldmatrix and mma
// latencies were the kernel's time), R = 16 is 8 warps in a block of half the shared memory, two blocks an SM, so
// that one block's products fill the other's barriers. Phase A ([u | y] = S·MA + v·QW, R × 2L: NT = 2L/8 column tiles
// a row tile) runs on the same registers: the KG = W/ROWT warps of a row tile each multiply their own TB·8 keys of S
// (the D fragments, read as A fragments: see wkv7c_state_a) by those rows of MA into all NT tiles, and the KG partial
// sums meet in shared memory (S is never re-read from shared memory: half the scan's shared-memory bytes were S's TF32
// hi and lo read by every tile's warps): shared out over the threads behind a barrier, or, with few key groups
// (WKV7C_LOCAL_U), u's added by every lane for itself and y's by two warps (no barrier). A warp's row tile (m0) is the
// same in both phases. Shared rows are padded by 4 words, so every ldmatrix is free of bank conflicts. The host reads
// THREADS back from the kernel (its launch bound).
template <int N, int R, int W> struct Wkv7cScan
{
    static constexpr int ROWS = R, L = WKV7C_L, ROWT = R / 16, WARPS = W, TB = ROWT * (N / 8) / W, THREADS = 32 * WARPS;
    static constexpr int NT = 2 * L / 8, KG = WARPS / ROWT;
    static constexpr int RECORD = Wkv7cRecord<N>::SIZE;
    static constexpr int SP = N + 4, VP = L + 4, UP = L + 4; // padded row lengths
    // A staged buffer: the record as it is, then v [R][VP] (state row i's L values: phase A's and B's A operand).
    static constexpr int V = RECORD, BUFFER = V + R * VP;
    // Phase A's partial sums, a warp's D fragments of its row tile's NT tiles: [key group][row tile][tile][lane][4].
    static constexpr int PARTIAL = WARPS * NT * 32 * 4;
    // Floats of the partial sums a thread adds up (over the KG key groups).
    static constexpr int OUT = ROWT * NT * 32 * 4 / THREADS;
    static_assert(N == 64 || N == 128, "head dims 64 and 128");
    static_assert(R == 16 || R == 32, "one or two row tiles");
    static_assert(BUFFER % 4 == 0, "buffers stay 16-byte aligned");
    static_assert(TB >= 1 && TB <= 2 && TB * W == ROWT * (N / 8), "phase B: every warp one or two state tiles (one ldmatrix.x4 of MA's keys)");
    static_assert(OUT * THREADS == ROWT * NT * 32 * 4 && (OUT == 1 || OUT == 2 || OUT == 4), "the partial sums shared out evenly");
};

// Shared memory of the scan kernel (4-byte words): two staged buffers, S [R][SP] (the start, the end and the
// token-by-token path), u split [R][UP] twice, y [L][R], phase A's partial sums, and two 8-byte mbarriers (one a
// buffer: the bulk copies').
#define WKV7C_SCAN_SHARED(G) (2 * G::BUFFER + G::ROWS * G::SP + 2 * G::ROWS * G::UP + WKV7C_L * G::ROWS + G::PARTIAL + 4)

// Where a thread's share of v and y lies (the same (token, row) pairs for both): x = threadIdx.x + q·THREADS,
// m = x / R, i = x % R; offset[q] = m·width + i from row 0 of the block's column, relative to the chunk's first token.
template <class G> struct Wkv7cLanes
{
    static constexpr int PER = WKV7C_L * G::ROWS / G::THREADS;
    int m[PER];
    i64 offset[PER];
    __device__ __forceinline__ Wkv7cLanes(i64 width)
    {
#pragma unroll
        for (int q = 0; q < PER; q++)
        {
            const int x = threadIdx.x + q * G::THREADS;
            m[q] = x / G::ROWS;
            offset[q] = m[q] * width + x % G::ROWS;
        }
    }
};

// Stages a chunk: its record and v [i][VP] (v0 = v at the chunk's first token and row 0 of the block's column; left =
// tokens from there on). The record goes by one bulk copy on sm_90 (one instruction for the whole record, completing
// on the buffer's mbarrier; the 16-byte cp.async copies it replaced kept the load/store unit's queue full); before
// sm_90 (and under the emulator) every thread copies its share by cp.async, which the commit group and the barrier complete.
template <class G> __device__ __forceinline__ void wkv7c_stage(float* dst, const float* record, unsigned long long* bar, const float* v0,
    int left, const Wkv7cLanes<G>& lanes)
{
#if __CUDA_ARCH__ >= 900
    if (threadIdx.x == 0)
    {
        constexpr unsigned BYTES = G::RECORD * 4;
        mbar_arrive_expect(bar, BYTES);
        bulk_copy(dst, record, BYTES, bar);
    }
#else
    (void)bar;
    constexpr int Q = G::RECORD / 4, FULL = Q / G::THREADS;
    const float4* src = (const float4*)record + threadIdx.x;
    float4* to = (float4*)dst + threadIdx.x;
#pragma unroll
    for (int q = 0; q < FULL; q++) copy_async_16(to + q * G::THREADS, src + q * G::THREADS);
    if (threadIdx.x < Q - FULL * G::THREADS) copy_async_16(to + FULL * G::THREADS, src + FULL * G::THREADS);
#endif
#pragma unroll
    for (int q = 0; q < Wkv7cLanes<G>::PER; q++)
    {
        const int x = threadIdx.x + q * G::THREADS, m = lanes.m[q];
        const bool in = m < left;
        copy_async_f32(dst + G::V + (x % G::ROWS) * G::VP + m, in ? v0 + lanes.offset[q] : v0, in);
    }

    copy_async_commit();
}

// The D fragments of a warp's TB state tiles (rows m0 …, keys 8·(nb + t) …) from and to a [rows][SP] array, and to
// its TF32 hi and lo halves.
template <int SP, int TB> __device__ __forceinline__ void wkv7c_load_tiles(const float* S, int m0, int nb, float (&acc)[TB][4])
{
    const int g = (threadIdx.x & 31) >> 2, c = threadIdx.x & 3;
#pragma unroll
    for (int t = 0; t < TB; t++)
    {
        const int j = 8 * (nb + t) + 2 * c;
        acc[t][0] = S[(m0 + g) * SP + j];
        acc[t][1] = S[(m0 + g) * SP + j + 1];
        acc[t][2] = S[(m0 + g + 8) * SP + j];
        acc[t][3] = S[(m0 + g + 8) * SP + j + 1];
    }
}

template <int SP, int TB> __device__ __forceinline__ void wkv7c_store_tiles(float* S, int m0, int nb, const float (&acc)[TB][4])
{
    const int g = (threadIdx.x & 31) >> 2, c = threadIdx.x & 3;
#pragma unroll
    for (int t = 0; t < TB; t++)
    {
        const int j = 8 * (nb + t) + 2 * c;
        *(float2*)(S + (m0 + g) * SP + j) = make_float2(acc[t][0], acc[t][1]);
        *(float2*)(S + (m0 + g + 8) * SP + j) = make_float2(acc[t][2], acc[t][3]);
    }
}

// OUT consecutive floats from shared memory in one load (OUT = 1, 2 or 4; p aligned to OUT floats).
template <int OUT> __device__ __forceinline__ void wkv7c_load(const float* p, float (&x)[OUT])
{
    if constexpr (OUT == 4)
    {
        const float4 v = *(const float4*)p;
        x[0] = v.x; x[1] = v.y; x[2] = v.z; x[3] = v.w;
    }
    else if constexpr (OUT == 2)
    {
        const float2 v = *(const float2*)p;
        x[0] = v.x; x[1] = v.y;
    }
    else
    {
        x[0] = *p;
    }
}

// Whether the scan's lanes add phase A's partial sums of u themselves (no barrier, KG float4 loads a u tile a lane)
// rather than sharing the sums out (OUT floats a thread) behind a barrier: where the key groups are few (head dim 64,
// one block an SM, latency-bound), unless WKV7C_LOCAL_U_MAX_KG says otherwise.
#ifndef WKV7C_LOCAL_U_MAX_KG
#define WKV7C_LOCAL_U_MAX_KG 4
#endif
#define WKV7C_LOCAL_U(G) ((G::KG) <= WKV7C_LOCAL_U_MAX_KG)

// The sum over the KG key groups (in their order) of the partial D fragments of row tile rt, column tile n, lane.
template <class G> __device__ __forceinline__ void wkv7c_partial_sum(const float* partial, int rt, int n, int lane, float (&d)[4])
{
#pragma unroll
    for (int q = 0; q < G::KG; q++)
    {
        const float4 x = *(const float4*)(partial + (((q * G::ROWT + rt) * G::NT + n) * 32 + lane) * 4);
        if (q == 0)
        {
            d[0] = x.x; d[1] = x.y; d[2] = x.z; d[3] = x.w;
        }
        else
        {
            d[0] += x.x; d[1] += x.y; d[2] += x.z; d[3] += x.w;
        }
    }
}

// State tile t's D fragment (acc: S[g][2c], S[g][2c+1], S[g+8][2c], S[g+8][2c+1] of its 8 keys) as an A fragment,
// split into TF32 hi and lo: the k index is a sum's, so any order of the tile's keys serves if B's rows follow it. The
// lane's keys 2c and 2c+1 become the A fragment's columns c and c + 4 (a0 = S[g][2c], a1 = S[g+8][2c], a2 = S[g][2c+1],
// a3 = S[g+8][2c+1]), which is why the record stores MA's keys of every 8-key group in the order 0 2 4 6 1 3 5 7.
__device__ __forceinline__ void wkv7c_state_a(const float (&d)[4], unsigned (&hi)[4], unsigned (&lo)[4])
{
    wkv7c_split(d[0], hi[0], lo[0]);
    wkv7c_split(d[2], hi[1], lo[1]);
    wkv7c_split(d[1], hi[2], lo[2]);
    wkv7c_split(d[3], hi[3], lo[3]);
}

template <int N, int R, int W> __device__ __forceinline__ void wkv7_chunk_scan(const float* r, const float* w, const float* k,
    const float* v, const float* a, const float* b, const float* records, float* state, int tokens, int heads, float* y)
{
    using G = Wkv7cScan<N, R, W>;
    using Rec = Wkv7cRecord<N>;
    constexpr int L = G::L, RECORD = G::RECORD, SP = G::SP, VP = G::VP, UP = G::UP, TB = G::TB, NT = G::NT, KG = G::KG;
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
    // S [R][SP] in fp32 (the start, the end and the token-by-token path); u split into TF32 hi and lo (phase B's A
    // operand: split once by the thread that sums it instead of once by each warp that reads it).
    float* S = scan + 2 * G::BUFFER;
    unsigned* Uhi = (unsigned*)(S + R * SP); // u [R][UP]
    unsigned* Ulo = Uhi + R * UP;
    float* Ys = (float*)(Ulo + R * UP); // y [L][R]
    float* Partial = Ys + L * R;
    unsigned long long* bars = (unsigned long long*)(Partial + G::PARTIAL); // one a staged buffer
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
    const int m0 = 16 * (warp % G::ROWT);  // the warp's row tile (both phases)
    const int kg = warp / G::ROWT, nb = TB * kg; // its key group: its first 8-key state tile (both phases)
    const i64 column = (i64)h * N + i0; // of row 0 in v and y

    for (int x = threadIdx.x; x < R * N / 4; x += blockDim.x)
    {
        const int i = x / (N / 4), j = 4 * (x % (N / 4));
        *(float4*)(S + i * SP + j) = *(const float4*)(state + ((i64)h * N + i0 + i) * N + j);
    }

    if (threadIdx.x == 0)
    {
        mbar_init(bars, 1);
        mbar_init(bars + 1, 1);
        mbar_init_fence();
    }

    __syncthreads();
    const Wkv7cLanes<G> lanes(width);
    wkv7c_stage<G>(scan, records, bars, v + column, tokens, lanes);
    // acc[t] = the D fragment of S at rows m0 …, keys 8·(nb + t) …
    float acc[TB][4];
    wkv7c_load_tiles<SP, TB>(S, m0, nb, acc);

    for (int ch = 0; ch < chunks; ch++)
    {
        const int t0 = ch * L;
        if (ch + 1 < chunks)
        {
            // The other buffer was last read in chunk ch − 1, which every thread has finished (the barrier below).
            const int next = (ch + 1) & 1;
            wkv7c_stage<G>(scan + next * G::BUFFER, records + (i64)(ch + 1) * RECORD, bars + next, v + (i64)(t0 + L) * width + column,
                tokens - (t0 + L), lanes);
            copy_async_wait_group<1>();
        }
        else
        {
            copy_async_wait_group<0>();
        }

        mbar_wait(bars + (ch & 1), (ch >> 1) & 1);
        __syncthreads();
        const float* cur = scan + (ch & 1) * G::BUFFER;
        const unsigned* MA = (const unsigned*)cur + Rec::MA; // [P | R′]ᵀ [2L][MS]
        const unsigned* BK = (const unsigned*)cur + Rec::BK; // [B̃ ; K̃]ᵀ [N][BS]
        const unsigned* QW = (const unsigned*)cur + Rec::QW; // [Q | W′]ᵀ [2L][QS]
        const float* gl = cur + Rec::GAMMA;
        const float* Vs = cur + G::V;  // v [i][VP]
        if (gl[N] != 0.f)
        {
            // γ left fp32's safe range in this chunk: the plain recurrence, token by token, on S. A row is spread over
            // P = THREADS/R consecutive lanes, each with the keys p, p + P, …; every thread updates only its own.
            wkv7c_store_tiles<SP, TB>(S, m0, nb, acc);
            __syncthreads();
            constexpr int P = G::THREADS / R;
            const int i = threadIdx.x / P, p = threadIdx.x % P;
            for (int m = 0; m < L && t0 + m < tokens; m++)
            {
                const i64 o = (i64)(t0 + m) * width + (i64)h * N;
                float sa = 0.f;
                for (int j = p; j < N; j += P) sa = fmaf(a[o + j], S[i * SP + j], sa);
#pragma unroll
                for (int x = P / 2; x > 0; x >>= 1) sa += __shfl_xor_sync(0xffffffffu, sa, x);
                const float vi = Vs[i * VP + m];
                float yi = 0.f;
                for (int j = p; j < N; j += P)
                {
                    const float value = fmaf(b[o + j], sa, fmaf(k[o + j], vi, S[i * SP + j] * w[o + j]));
                    S[i * SP + j] = value;
                    yi = fmaf(value, r[o + j], yi);
                }

#pragma unroll
                for (int x = P / 2; x > 0; x >>= 1) yi += __shfl_xor_sync(0xffffffffu, yi, x);
                if (p == 0) y[o + i0 + i] = yi;
            }

            __syncthreads();
            wkv7c_load_tiles<SP, TB>(S, m0, nb, acc);
        }
        else
        {
            // v's A fragments (rows m0 …, tokens 0 … and 8 …), split once for both phases.
            unsigned vh[2][4], vl[2][4];
#pragma unroll
            for (int e = 0; e < 2; e++) wkv7c_ldsm_a_split((const unsigned*)Vs, VP, m0, 8 * e, vh[e], vl[e]);
            // Phase A: the warp's keys' share of its row tile of [u | y] = S·MA + v·QW, all NT column tiles: S from its
            // own state tiles (one k-step each, in the D fragment's key order: wkv7c_state_a) times MA's rows of those
            // keys (one ldmatrix.x4 a column tile: both k-steps), into a large (hi·hi) and a small (hi·lo + lo·hi)
            // accumulator a column tile (independent chains); v·QW's 2·NT (column tile, k-step) products shared out over
            // the key groups.
            {
                float big[NT][4] = {}, small[NT][4] = {};
                unsigned ah[TB][4], al[TB][4], bf[NT][4];
#pragma unroll
                for (int t = 0; t < TB; t++) wkv7c_state_a(acc[t], ah[t], al[t]);
#pragma unroll
                for (int n = 0; n < NT; n++) wkv7c_ldsm_b(MA, Rec::MS, 8 * n, 8 * nb, bf[n]);
#pragma unroll
                for (int t = 0; t < TB; t++)
                {
#pragma unroll
                    for (int n = 0; n < NT; n++) wkv7c_mma3x(big[n], small[n], small[n], ah[t], al[t], bf[n][2 * t], bf[n][2 * t + 1]);
                }

#pragma unroll
                for (int n = 0; n < NT; n++)
                {
#pragma unroll
                    for (int e = 0; e < 2; e++)
                    {
                        if ((2 * n + e) % KG != kg) continue;
                        unsigned qf[4];
                        wkv7c_ldsm_b(QW, Rec::QS, 8 * n, 0, qf);
                        wkv7c_mma3x(big[n], small[n], small[n], vh[e], vl[e], qf[2 * e], qf[2 * e + 1]);
                    }
                }

                // [key group][row tile][column tile][lane][4]: a float4 a lane (conflict-free).
                float* mine = Partial + ((kg * G::ROWT + m0 / 16) * NT * 32 + lane) * 4;
#pragma unroll
                for (int n = 0; n < NT; n++)
                    *(float4*)(mine + n * 32 * 4) = make_float4(big[n][0] + small[n][0], big[n][1] + small[n][1], big[n][2] + small[n][2], big[n][3] + small[n][3]);
            }

            __syncthreads();
            // u's A fragments (phase B's k-steps 0 and 8: u's column tiles 0 and 1).
            unsigned uh[2][4], ul[2][4];
            if constexpr (WKV7C_LOCAL_U(G))
            {
                // Every lane adds the KG partial sums of its own D fragments of u (no barrier: they are its A fragments,
                // in wkv7c_state_a's key order, which the record's B̃ rows follow); the warps of key groups 0 and 1 add
                // y's two column tiles and store them (a D fragment's 8 rows of a token are 32 contiguous bytes).
                const int rt = m0 / 16;
#pragma unroll
                for (int e = 0; e < 2; e++)
                {
                    float d[4];
                    wkv7c_partial_sum<G>(Partial, rt, e, lane, d);
                    wkv7c_state_a(d, uh[e], ul[e]);
                }

#pragma unroll
                for (int e = 0; e < 2; e++)
                {
                    if (kg != e % KG) continue;
                    float d[4];
                    wkv7c_partial_sum<G>(Partial, rt, 2 + e, lane, d);
                    const int m = 8 * e + 2 * c; // the chunk's token of d[0] and d[2]
                    float* y0 = y + (i64)(t0 + m) * width + column + m0 + g;
                    if (t0 + m < tokens)
                    {
                        y0[0] = d[0];
                        y0[8] = d[2];
                    }

                    if (t0 + m + 1 < tokens)
                    {
                        y0[width] = d[1];
                        y0[width + 8] = d[3];
                    }
                }
            }
            else
            {
                // The KG partial sums of OUT consecutive floats a thread (in key-group order), into u (split) or y.
                constexpr int OUT = G::OUT, GROUP = G::ROWT * NT * 32 * 4;
                const int f0 = threadIdx.x * OUT;
                float sum[OUT] = {};
#pragma unroll
                for (int q = 0; q < KG; q++)
                {
                    float part[OUT];
                    wkv7c_load<OUT>(Partial + q * GROUP + f0, part);
#pragma unroll
                    for (int o = 0; o < OUT; o++) sum[o] = q == 0 ? part[o] : sum[o] + part[o];
                }

#pragma unroll
                for (int o = 0; o < OUT; o++)
                {
                    // f = ((row tile · NT + column tile) · 32 + lane) · 4 + e; e as the D fragment's (d0 … d3).
                    const int f = f0 + o, e = f & 3, fl = (f >> 2) & 31, n = (f >> 7) % NT, rt = f / (NT * 128);
                    const int row = 16 * rt + (fl >> 2) + 8 * (e >> 1), col = 8 * n + 2 * (fl & 3) + (e & 1);
                    if (col < L)
                    {
                        // Stored where the record's B̃ rows keep token col: 0 2 4 6 1 3 5 7 an 8-token group.
                        const int at = row * UP + (col & 8) + ((col & 1) << 2) + ((col & 7) >> 1);
                        wkv7c_split(sum[o], Uhi[at], Ulo[at]);
                    }
                    else
                        Ys[(col - L) * R + row] = sum[o];
                }

                __syncthreads();
#pragma unroll
                for (int e = 0; e < 2; e++)
                {
                    wkv7c_ldsm_a(Uhi, UP, m0, 8 * e, uh[e]);
                    wkv7c_ldsm_a(Ulo, UP, m0, 8 * e, ul[e]);
                }
            }

            // Phase B: S ← S ⊙ γ_L + [u | v]·[B̃ ; K̃] on the warp's TB tiles, then S to shared memory for the next chunk.
#pragma unroll
            for (int t = 0; t < TB; t++)
            {
                const float2 gg = *(const float2*)(gl + 8 * (nb + t) + 2 * c);
                acc[t][0] *= gg.x;
                acc[t][1] *= gg.y;
                acc[t][2] *= gg.x;
                acc[t][3] *= gg.y;
            }

            // The small products into their own accumulators (independent chains), added at the end. Stage 0: u
            // (k-steps 0 and 8); stage 1: v. Every fragment is loaded before the first product.
            float hl[TB][4] = {}, lh[TB][4] = {};
            unsigned kb[2][TB][4];

#pragma unroll
            for (int stage = 0; stage < 2; stage++)
            {
#pragma unroll
                for (int t = 0; t < TB; t++) wkv7c_ldsm_b(BK, Rec::BS, 8 * (nb + t), 16 * stage, kb[stage][t]);
            }

#pragma unroll
            for (int t = 0; t < TB; t++)
            {
#pragma unroll
                for (int e = 0; e < 2; e++)
                {
                    wkv7c_mma3x(acc[t], hl[t], lh[t], uh[e], ul[e], kb[0][t][2 * e], kb[0][t][2 * e + 1]);
                    wkv7c_mma3x(acc[t], hl[t], lh[t], vh[e], vl[e], kb[1][t][2 * e], kb[1][t][2 * e + 1]);
                }
            }

#pragma unroll
            for (int t = 0; t < TB; t++)
            {
#pragma unroll
                for (int e = 0; e < 4; e++) acc[t][e] += hl[t][e] + lh[t][e];
            }

            if constexpr (!WKV7C_LOCAL_U(G))
            {
                float* y0 = y + (i64)t0 * width + column;
#pragma unroll
                for (int q = 0; q < Wkv7cLanes<G>::PER; q++)
                    if (t0 + lanes.m[q] < tokens) y0[lanes.offset[q]] = Ys[threadIdx.x + q * G::THREADS];
            }
        }

        __syncthreads();
    }

    wkv7c_store_tiles<SP, TB>(S, m0, nb, acc);
    __syncthreads();
    for (int x = threadIdx.x; x < R * N / 4; x += blockDim.x)
    {
        const int i = x / (N / 4), j = 4 * (x % (N / 4));
        *(float4*)(state + ((i64)h * N + i0 + i) * N + j) = *(const float4*)(S + i * SP + j);
    }
}

// CudaOps.Wkv7Chunked launches these (head dims 64 and 128: every Qwen2.5 size). The prep at four blocks an SM (64
// registers; its 56 KB of shared memory fit four): 151–156 → 132–136 µs a 7B layer against three (H200, session 13).
// The scan in blocks of 32 state rows (one an SM: its shared memory) or of 16 (_r16: two an SM), in N/8 warps (N/16 for
// 16 rows at N = 128; WKV7C_N64_R16_WARPS, 4 or 8, at N = 64).
// The fused prep's blocks an SM (its register bound; four, as the plain prep's, unless measured otherwise).
#ifndef WKV7C_PREP_KEYS_BLOCKS
#define WKV7C_PREP_KEYS_BLOCKS 4
#endif
#ifndef WKV7C_N64_R16_WARPS
#define WKV7C_N64_R16_WARPS 4
#endif
#define WKV7C_R16_WARPS(N) ((N) == 64 ? WKV7C_N64_R16_WARPS : (N) / 16)
#define WKV7_CHUNKED(N)                                                                                                         \
    extern "C" __global__ void __launch_bounds__(WKV7C_PREP_THREADS, 4) wkv7_chunk_prep_f32_n##N(const float* r, const float* w, \
        const float* k, const float* a, const float* b, int tokens, int heads, float* records)                                 \
    {                                                                                                                           \
        wkv7_chunk_prep<N>(r, w, k, a, b, tokens, heads, records);                                                              \
    }                                                                                                                           \
    extern "C" __global__ void __launch_bounds__(WKV7C_PREP_THREADS, WKV7C_PREP_KEYS_BLOCKS) wkv7_chunk_prep_keys_f32_n##N(    \
        const float* r, const float* k, const float* v, int groups, const float2* rope, const float* zw, const void* w0,        \
        int w0_dtype, float decay_scale, const float* za, const void* a0, int a0_dtype, const void* key_scale,                  \
        int key_scale_dtype, const void* iclr_mix, int iclr_mix_dtype, int balanced, const float* zv, const void* v0,           \
        int v0_dtype, const float* v_first, float* vh, float* fr, float* fw, float* fk, float* fa, float* fb, int tokens,       \
        int heads, float* records)                                                                                              \
    {                                                                                                                           \
        wkv7_chunk_prep_keys<N>(r, k, v, groups, rope, zw, w0, w0_dtype, decay_scale, za, a0, a0_dtype, key_scale,              \
            key_scale_dtype, iclr_mix, iclr_mix_dtype, balanced, zv, v0, v0_dtype, v_first, vh, fr, fw, fk, fa, fb, tokens,     \
            heads, records);                                                                                                    \
    }                                                                                                                           \
    extern "C" __global__ void __launch_bounds__(Wkv7cScan<N, 32, N / 8>::THREADS, 1) wkv7_chunk_scan_f32_n##N(const float* r,  \
        const float* w, const float* k, const float* v, const float* a, const float* b, const float* records, float* state,    \
        int tokens, int heads, float* y)                                                                                        \
    {                                                                                                                           \
        wkv7_chunk_scan<N, 32, N / 8>(r, w, k, v, a, b, records, state, tokens, heads, y);                                      \
    }                                                                                                                           \
    extern "C" __global__ void __launch_bounds__(Wkv7cScan<N, 16, WKV7C_R16_WARPS(N)>::THREADS, 2)                              \
        wkv7_chunk_scan_f32_n##N##_r16(const float* r, const float* w, const float* k, const float* v, const float* a,          \
            const float* b, const float* records, float* state, int tokens, int heads, float* y)                               \
    {                                                                                                                           \
        wkv7_chunk_scan<N, 16, WKV7C_R16_WARPS(N)>(r, w, k, v, a, b, records, state, tokens, heads, y);                         \
    }
WKV7_CHUNKED(64)
WKV7_CHUNKED(128)
