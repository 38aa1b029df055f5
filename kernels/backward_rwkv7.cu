// Backward of the RAD-RWKV7 ops (CpuBackwardOps.Rwkv7.cs): Rwkv7Decay, Rwkv7Keys (balanced and stock),
// Rwkv7ValueResidual and the Wkv7 recurrence through time. fp32. Per-channel weight gradients (dW0, dk_k, dk_a)
// are column sums (backward.cu) of terms these kernels write.
#include "common.cuh"

// The state checkpoint interval of the recurrences' backward: CpuBackwardOps.StateCheckpointInterval.
#define CHECKPOINT 16

// w = exp(scale·σ(w0 + z)), scale = −e^−0.5  ⇒  dz = dw·w·scale·σ·(1 − σ). dz may alias dw.
extern "C" __global__ void rwkv7_decay_backward_f32(const float* z, const void* w0, int w0_dtype, float scale, const float* dw,
    float* dz, i64 n, int a)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float s = sigmoid_(z[i] + load_any(w0, w0_dtype, i % a));
        float w = expf(scale * s);
        float g = dw[i];
        dz[i] = g * w * scale * s * (1.f - s);
    }
}

// One warp per (token, head). u = k (balanced) or k ⊙ k_k (stock); ρ = max(‖u‖, 1e-12); κ = u/ρ;
// dκ = −dRemoval + dReplacement ⊙ a; du = (dκ − κ·(κ·dκ))/‖u‖ if ‖u‖ ≥ 1e-12, else dκ/1e-12 (the eps guard).
// Balanced: dk = dk̃ ⊙ (1 − w + a) + du, dw = −dk̃ ⊙ k, da = dReplacement ⊙ κ + dk̃ ⊙ k.
// Stock: dk = dk̃ ⊙ (1 + (a − 1) ⊙ k_a) + du ⊙ k_k, dw = 0, da = dReplacement ⊙ κ + dk̃ ⊙ k ⊙ k_a; the terms of the
// weight gradients, du ⊙ k (→ dk_k) and dk̃ ⊙ k ⊙ (a − 1) (→ dk_a), go to gkk and gka when given. dw may be null.
extern "C" __global__ void rwkv7_keys_backward_f32(const float* k, const float* w, const float* a, const void* key_scale,
    int key_scale_dtype, const void* iclr_mix, int iclr_mix_dtype, int tokens, int width, int n, int balanced,
    const float* dremoval, const float* dreplacement, const float* dktilde, float* dk, float* dw, float* da, float* gkk, float* gka)
{
    pdl_begin();
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    int heads = width / n;
    if (item >= (i64)tokens * heads) return;
    int h = (int)(item % heads);
    i64 o = item * n;
    float sum = 0.f;
    for (int i = lane; i < n; i += 32)
    {
        float u = balanced ? k[o + i] : k[o + i] * load_any(key_scale, key_scale_dtype, (i64)h * n + i);
        sum = fmaf(u, u, sum);
    }

    float norm = sqrtf(warp_sum(sum));
    float inv = 1.f / fmaxf(norm, 1e-12f);
    float projection = 0.f;
    for (int i = lane; i < n; i += 32)
    {
        i64 p = o + i;
        float u = balanced ? k[p] : k[p] * load_any(key_scale, key_scale_dtype, (i64)h * n + i);
        float dkappa = -dremoval[p] + dreplacement[p] * a[p];
        projection = fmaf(u * inv, dkappa, projection);
    }

    projection = norm >= 1e-12f ? warp_sum(projection) : 0.f;
    for (int i = lane; i < n; i += 32)
    {
        i64 p = o + i;
        int ch = h * n + i;
        float kj = k[p], aj = a[p], gt = dktilde[p], grep = dreplacement[p];
        float kk = balanced ? 1.f : load_any(key_scale, key_scale_dtype, ch);
        float kappa = (balanced ? kj : kj * kk) * inv;
        float dkappa = -dremoval[p] + grep * aj;
        float du = (dkappa - kappa * projection) * inv;
        if (balanced)
        {
            dk[p] = gt * (1.f - w[p] + aj) + du;
            if (dw != 0) dw[p] = -gt * kj;
            da[p] = grep * kappa + gt * kj;
        }
        else
        {
            float ka = load_any(iclr_mix, iclr_mix_dtype, ch);
            dk[p] = gt * (1.f + (aj - 1.f) * ka) + du * kk;
            if (dw != 0) dw[p] = 0.f;
            da[p] = grep * kappa + gt * kj * ka;
            if (gkk != 0) gkk[p] = du * kj;
            if (gka != 0) gka[p] = gt * kj * (aj - 1.f);
        }
    }
}

// y = v + (vFirst − v) ⊙ nu  ⇒  dv = dy ⊙ (1 − nu), dNu = dy ⊙ (vFirst − v) (written; either may alias dy),
// dVFirst += dy ⊙ nu (accumulated). Any output may be null.
extern "C" __global__ void rwkv7_value_residual_backward_f32(const float* v, const float* v_first, const float* nu, const float* dy,
    float* dv, float* dv_first, float* dnu, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float g = dy[i], vi = v[i], fi = v_first[i], ni = nu[i];
        if (dv_first != 0) dv_first[i] += g * ni;
        if (dnu != 0) dnu[i] = g * (fi - vi);
        if (dv != 0) dv[i] = g * (1.f - ni);
    }
}

// Wkv7 backward through time, one block per (head, sequence) (grid (H, S): S independent sequences of `tokens` rows
// each at once), one thread per value row i, which owns row i of the state S [N_v, N_k] and of G = ∂L/∂S'. Forward
// line: sa_i = a·S[i, :]; S'[i, :] = S[i, :] ⊙ w + v_i·k + sa_i·b;
// y_i = S'[i, :]·r. Going backwards, per step, the row pass (thread i):
//   G[i, :] += dy_i·r;  dv_i = G[i, :]·k;  dsa_i = G[i, :]·b;  sa_i = a·S[i, :]
// then the column pass (thread j, column sums over the block's rows through shared memory):
//   dr_j = Σ_i dy_i·S'[i, j];  dw_j = Σ_i G[i, j]·S[i, j];  dk_j = Σ_i v_i·G[i, j];  db_j = Σ_i sa_i·G[i, j];
//   da_j = Σ_i dsa_i·S[i, j]
// then the row pass again: G[i, :] = G[i, :] ⊙ w + dsa_i·a. States are recomputed from checkpoints every 16 steps as
// in wkv6_backward_f32 (scratch per head (chunks + 17)·N² floats, transposed [j][i]).
// Shared memory: G (rows padded to N + 1), then dy, v, sa, dsa of the step (4N floats).
extern "C" __global__ void wkv7_backward_f32(const float* r, const float* w, const float* k, const float* v, const float* a,
    const float* b, const float* s0, const float* dy, const float* dfinal, float* dr, float* dw, float* dk, float* dv,
    float* da, float* db, float* dinitial, int tokens, int heads, int n, float* scratch)
{
    pdl_begin();
    extern __shared__ float shared[];
    int pitch = n + 1;
    float* dys = shared + n * pitch;
    float* vs = dys + n;
    float* sas = vs + n;
    float* dsas = sas + n;
    int h = blockIdx.x;
    int i = threadIdx.x;
    float* row = shared + i * pitch;
    i64 nn = (i64)n * n;
    i64 width = (i64)heads * n;
    int chunks = (tokens + CHECKPOINT - 1) / CHECKPOINT;
    // Sequence blockIdx.y of a batched call (gridDim.y sequences of `tokens` rows; states and scratch per (sequence, head)).
    i64 first = (i64)blockIdx.y * tokens * width;
    r += first; w += first; k += first; v += first; a += first; b += first; dy += first;
    dr += first; dw += first; dk += first; dv += first; da += first; db += first;
    i64 state_first = (i64)blockIdx.y * heads * nn;
    s0 += state_first;
    if (dfinal != 0) dfinal += state_first;
    if (dinitial != 0) dinitial += state_first;
    scratch += (i64)blockIdx.y * heads * (chunks + CHECKPOINT + 1) * nn;
    float* checkpoints = scratch + (i64)h * (chunks + CHECKPOINT + 1) * nn;
    float* states = checkpoints + chunks * nn;

    // Forward sweep, the state row in shared memory (G's place), exactly as wkv7_f32 steps it.
    for (int j = 0; j < n; j++) row[j] = s0[h * nn + (i64)i * n + j];
    for (int t = 0; t < tokens; t++)
    {
        if (t % CHECKPOINT == 0)
            for (int j = 0; j < n; j++) checkpoints[(t / CHECKPOINT) * nn + (i64)j * n + i] = row[j];
        i64 o = t * width + (i64)h * n;
        float vi = v[o + i];
        float sa = 0.f;
        for (int j = 0; j < n; j++) sa = fmaf(a[o + j], row[j], sa);
        for (int j = 0; j < n; j++) row[j] = fmaf(b[o + j], sa, fmaf(k[o + j], vi, row[j] * w[o + j]));
    }

    for (int j = 0; j < n; j++) row[j] = dfinal != 0 ? dfinal[h * nn + (i64)i * n + j] : 0.f;
    __syncthreads();
    for (int c = chunks - 1; c >= 0; c--)
    {
        int t0 = c * CHECKPOINT;
        int length = min(CHECKPOINT, tokens - t0);
        for (int j = 0; j < n; j++) states[(i64)j * n + i] = checkpoints[c * nn + (i64)j * n + i];
        for (int s = 0; s < length; s++)
        {
            i64 o = (t0 + s) * width + (i64)h * n;
            const float* previous = states + s * nn;
            float* next = states + (s + 1) * nn;
            float vi = v[o + i];
            float sa = 0.f;
            for (int j = 0; j < n; j++) sa = fmaf(a[o + j], previous[(i64)j * n + i], sa);
            for (int j = 0; j < n; j++)
                next[(i64)j * n + i] = fmaf(b[o + j], sa, fmaf(k[o + j], vi, previous[(i64)j * n + i] * w[o + j]));
        }

        for (int s = length - 1; s >= 0; s--)
        {
            i64 o = (t0 + s) * width + (i64)h * n;
            const float* previous = states + s * nn;
            const float* current = states + (s + 1) * nn;

            // Row pass.
            float dyi = dy[o + i];
            float dvi = 0.f, dsa = 0.f, sa = 0.f;
            for (int j = 0; j < n; j++)
            {
                float g = fmaf(r[o + j], dyi, row[j]);
                row[j] = g;
                dvi = fmaf(g, k[o + j], dvi);
                dsa = fmaf(g, b[o + j], dsa);
                sa = fmaf(a[o + j], previous[(i64)j * n + i], sa);
            }

            dv[o + i] = dvi;
            dys[i] = dyi;
            vs[i] = v[o + i];
            sas[i] = sa;
            dsas[i] = dsa;
            __syncthreads();

            // Column pass: thread i takes key column i.
            float drj = 0.f, dwj = 0.f, dkj = 0.f, dbj = 0.f, daj = 0.f;
            const float* cur_col = current + (i64)i * n;
            const float* prev_col = previous + (i64)i * n;
            for (int q = 0; q < n; q++)
            {
                float g = shared[q * pitch + i];
                float sp = prev_col[q];
                drj = fmaf(dys[q], cur_col[q], drj);
                dwj = fmaf(g, sp, dwj);
                dkj = fmaf(vs[q], g, dkj);
                dbj = fmaf(sas[q], g, dbj);
                daj = fmaf(dsas[q], sp, daj);
            }

            dr[o + i] = drj;
            dw[o + i] = dwj;
            dk[o + i] = dkj;
            db[o + i] = dbj;
            da[o + i] = daj;
            __syncthreads();

            // Row pass: ∂L/∂S[i, :] = G[i, :] ⊙ w + dsa_i·a.
            for (int j = 0; j < n; j++) row[j] = fmaf(a[o + j], dsa, row[j] * w[o + j]);
        }
    }

    if (dinitial != 0)
        for (int j = 0; j < n; j++) dinitial[h * nn + (i64)i * n + j] = row[j];
}
