// Backward of the RAD-RWKV6 ops (CpuBackwardOps.Rwkv6.cs): Rwkv6Ddlerp, Rwkv6Decay, Rwkv6BalanceKeys and the Wkv6
// recurrence through time. fp32. The per-channel weight gradients (dMixes, dBias) are column sums (backward.cu).
#include "common.cuh"

// The state checkpoint interval of the recurrences' backward: CpuBackwardOps.StateCheckpointInterval.
#define CHECKPOINT 16

// ddlerp, per (t, c): m_i = mixes[i] + Σ_r lora[t, i·R + r]·w2[i, r]; dx = Σ_i dOutputs_i; dDelta = Σ_i dOutputs_i ⊙ m_i.
// Either output may be null.
extern "C" __global__ void rwkv6_ddlerp_backward_inputs_f32(const float* lora, const void* w2, int w2_dtype, const void* mixes,
    int mixes_dtype, const float* doutputs, int tokens, int c, int rank, float* dx, float* ddelta)
{
    pdl_begin();
    GRID_STRIDE(idx, (i64)tokens * c)
    {
        int j = (int)(idx % c);
        int t = (int)(idx / c);
        float sx = 0.f, sd = 0.f;
        for (int i = 0; i < 5; i++)
        {
            float g = doutputs[((i64)i * tokens + t) * c + j];
            sx += g;
            if (ddelta != 0)
            {
                float m = load_any(mixes, mixes_dtype, (i64)i * c + j);
                const float* l = lora + (i64)t * 5 * rank + (i64)i * rank;
                for (int r = 0; r < rank; r++) m = fmaf(load_any(w2, w2_dtype, ((i64)i * rank + r) * c + j), l[r], m);
                sd = fmaf(g, m, sd);
            }
        }

        if (dx != 0) dx[idx] = sx;
        if (ddelta != 0) ddelta[idx] = sd;
    }
}

// dLora[t, i·R + r] = Σ_c (dOutputs_i[t] ⊙ delta[t])[c]·w2[i, r, c]: one warp per (t, i, r), lanes over c.
extern "C" __global__ void rwkv6_ddlerp_backward_lora_f32(const float* delta, const void* w2, int w2_dtype, const float* doutputs,
    int tokens, int c, int rank, float* dlora)
{
    pdl_begin();
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (item >= (i64)tokens * 5 * rank) return;
    int ir = (int)(item % (5 * rank));
    int t = (int)(item / (5 * rank));
    int i = ir / rank;
    const float* g = doutputs + ((i64)i * tokens + t) * c;
    const float* d = delta + (i64)t * c;
    float sum = 0.f;
    for (int j = lane; j < c; j += 32) sum = fmaf(g[j] * d[j], load_any(w2, w2_dtype, (i64)ir * c + j), sum);
    sum = warp_sum(sum);
    if (lane == 0) dlora[item] = sum;
}

// dW2[i, r, c] += Σ_t lora[t, i·R + r]·dOutputs_i[t, c]·delta[t, c]: one thread per (i, r, c), t in order.
extern "C" __global__ void rwkv6_ddlerp_backward_w2_f32(const float* delta, const float* lora, const float* doutputs,
    int tokens, int c, int rank, float* dw2)
{
    pdl_begin();
    GRID_STRIDE(idx, 5LL * rank * c)
    {
        int j = (int)(idx % c);
        int ir = (int)(idx / c);
        int i = ir / rank;
        float sum = 0.f;
        for (int t = 0; t < tokens; t++)
        {
            float dm = doutputs[((i64)i * tokens + t) * c + j] * delta[(i64)t * c + j];
            sum = fmaf(dm, lora[(i64)t * 5 * rank + ir], sum);
        }

        dw2[idx] += sum;
    }
}

// w = exp(max(−exp(bias + d), −5))  ⇒  dd = dw·w·log w where the clamp is inactive, 0 where −exp(·) < −5 (the
// boundary passes, torch.clamp's subgradient); NaN stays NaN. dd may alias dw.
extern "C" __global__ void rwkv6_decay_backward_f32(const float* d, const void* bias, int bias_dtype, const float* dw, float* dd, i64 n, int a)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float log_decay = -expf(load_any(bias, bias_dtype, i % a) + d[i]);
        float g = dw[i];
        dd[i] = log_decay < -5.f ? 0.f : g * expf(log_decay) * log_decay;
    }
}

// y = k ⊙ (1 − w)  ⇒  dk = dy ⊙ (1 − w), dw = −dy ⊙ k. Either may be null or alias dy.
extern "C" __global__ void rwkv6_balance_keys_backward_f32(const float* k, const float* w, const float* dy, float* dk, float* dw, i64 n)
{
    pdl_begin();
    GRID_STRIDE(i, n)
    {
        float g = dy[i], ki = k[i], wi = w[i];
        if (dk != 0) dk[i] = g * (1.f - wi);
        if (dw != 0) dw[i] = -g * ki;
    }
}

// Wkv6 backward through time, one block per (head, sequence) (grid (H, S): S independent sequences of `tokens` rows
// each at once), one thread per key row i, which owns row i of the state S [N_k, N_v] and of its gradient G = ∂L/∂S.
// Forward line: S_t[i, :] = w_i·S_{t−1}[i, :] + k_i·v,
// y = scale·Σ_i r_i·S_t[i, :]. Going backwards, per step (the CPU's order):
//   G[i, :] += scale·r_i·dy;  dr_i = scale·S_t[i, :]·dy;  dk_i = G[i, :]·v;  dw_i = G[i, :]·S_{t−1}[i, :];
//   dv = Σ_i k_i·G[i, :] (a column sum over the block's rows, through shared memory);  G[i, :] *= w_i.
// States are recomputed: a forward sweep keeps S before every 16th step in scratch (checkpoints), then each chunk's
// 17 states are recomputed from its checkpoint (scratch) while going backwards. Scratch per head:
// (chunks + 17)·N² floats, stored transposed ([j][i]) so that a warp's rows are read coalesced.
// Shared memory: G with rows padded to N + 1 floats (bank-conflict-free by rows and by columns).
extern "C" __global__ void wkv6_backward_f32(const float* r, const float* k, const float* v, const float* w, const float* s0,
    float scale, const float* dy, const float* dfinal, float* dr, float* dk, float* dv, float* dw, float* dinitial,
    int tokens, int heads, int n, float* scratch)
{
    pdl_begin();
    extern __shared__ float shared[];
    int pitch = n + 1;
    int h = blockIdx.x;
    int i = threadIdx.x;
    float* row = shared + i * pitch;
    i64 nn = (i64)n * n;
    i64 width = (i64)heads * n;
    int chunks = (tokens + CHECKPOINT - 1) / CHECKPOINT;
    // Sequence blockIdx.y of a batched call (gridDim.y sequences of `tokens` rows; states and scratch per (sequence, head)).
    i64 first = (i64)blockIdx.y * tokens * width;
    r += first; k += first; v += first; w += first; dy += first; dr += first; dk += first; dv += first; dw += first;
    i64 state_first = (i64)blockIdx.y * heads * nn;
    s0 += state_first;
    if (dfinal != 0) dfinal += state_first;
    if (dinitial != 0) dinitial += state_first;
    scratch += (i64)blockIdx.y * heads * (chunks + CHECKPOINT + 1) * nn;
    float* checkpoints = scratch + (i64)h * (chunks + CHECKPOINT + 1) * nn;
    float* states = checkpoints + chunks * nn;

    // Forward sweep, the state row in shared memory (G's place, free until the backward starts).
    for (int j = 0; j < n; j++) row[j] = s0[h * nn + (i64)i * n + j];
    for (int t = 0; t < tokens; t++)
    {
        if (t % CHECKPOINT == 0)
            for (int j = 0; j < n; j++) checkpoints[(t / CHECKPOINT) * nn + (i64)j * n + i] = row[j];
        i64 o = t * width + (i64)h * n;
        float wi = w[o + i], ki = k[o + i];
        for (int j = 0; j < n; j++) row[j] = fmaf(v[o + j], ki, row[j] * wi);
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
            float wi = w[o + i], ki = k[o + i];
            const float* previous = states + s * nn;
            float* next = states + (s + 1) * nn;
            for (int j = 0; j < n; j++) next[(i64)j * n + i] = fmaf(v[o + j], ki, previous[(i64)j * n + i] * wi);
        }

        for (int s = length - 1; s >= 0; s--)
        {
            i64 o = (t0 + s) * width + (i64)h * n;
            const float* previous = states + s * nn;
            const float* current = states + (s + 1) * nn;
            float sr = scale * r[o + i];
            float dri = 0.f, dki = 0.f, dwi = 0.f;
            for (int j = 0; j < n; j++)
            {
                float g = dy[o + j];
                float gij = fmaf(g, sr, row[j]);
                row[j] = gij;
                dri = fmaf(current[(i64)j * n + i], g, dri);
                dki = fmaf(gij, v[o + j], dki);
                dwi = fmaf(gij, previous[(i64)j * n + i], dwi);
            }

            dr[o + i] = scale * dri;
            dk[o + i] = dki;
            dw[o + i] = dwi;
            __syncthreads();
            // Thread i now takes value column i: dv_i = Σ_q k_q·G[q, i].
            float dvi = 0.f;
            for (int q = 0; q < n; q++) dvi = fmaf(shared[q * pitch + i], k[o + q], dvi);
            dv[o + i] = dvi;
            __syncthreads();
            float wi = w[o + i];
            for (int j = 0; j < n; j++) row[j] *= wi;
        }
    }

    if (dinitial != 0)
        for (int j = 0; j < n; j++) dinitial[h * nn + (i64)i * n + j] = row[j];
}
