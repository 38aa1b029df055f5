// lora_up (IOps.LoraSet's up projections at decode): included by lora.cu (its own launch) and matmul.cu
// (gemv_group_lora_*_up: its blocks at the end of the q/k/v GEMV's launch). Needs common.cuh and lora_down.cuh first.
#pragma once

// LoraOuter (C#).
#define LORA_OUTER_ADD_SIGMOID 1
#define LORA_OUTER_RWKV7_DECAY 2
#define LORA_OUTER_RWKV6_DECAY 3

// The same arithmetic as add_sigmoid_f32, rwkv7_decay_f32 and rwkv6_decay_f32.
__device__ __forceinline__ float lora_outer(int outer, float z, const void* offset, int dtype, int c, float rwkv7_scale)
{
    if (outer == LORA_OUTER_ADD_SIGMOID) return sigmoid_(z + load_any(offset, dtype, c));
    if (outer == LORA_OUTER_RWKV7_DECAY) return expf(sigmoid_(z + load_any(offset, dtype, c)) * rwkv7_scale);
    if (outer == LORA_OUTER_RWKV6_DECAY)
    {
        float log_decay = -expf(load_any(offset, dtype, c) + z);
        return expf(log_decay != log_decay ? log_decay : fmaxf(log_decay, -5.f));
    }

    return z;
}

// The wait of lora_up's blocks at the end of the q/k/v launch (gemv_group_lora_up_*): pdl_begin(), then thread 0
// waits until lora_down's blocks of the same launch have counted every column tile in done[0] (an acquire load: their
// hidden writes, fenced before they counted, are visible to the block after the barrier), then counts this block in
// done[1]. The last of the `blocks` up blocks to pass resets both to 0 for the next launch: by then every lora_down
// block has counted and every up block has passed, so nothing reads them again in this launch. lora_down's blocks
// come first in the launch and wait on nothing, so they are resident or done before an up block spins.
struct LoraDownDone
{
    int* done;
    int tiles;
    int blocks;

    __device__ __forceinline__ void operator()() const
    {
        pdl_begin();
        if (threadIdx.x == 0)
        {
            while (load_acquire(done) < tiles)
            {
#if __CUDA_ARCH__ >= 700
                __nanosleep(32);
#endif
            }
            if (atomicAdd(done + 1, 1) == blocks - 1)
            {
                done[1] = 0;
                done[0] = 0;
            }
        }
        __syncthreads();
    }
};

// y_i = outer_i(hidden_i · B_i). Block bx (blockIdx.x of lora_up_*) belongs to the branch b with block[b] ≤ blockIdx.x < block[b + 1] and
// covers its columns tile·8L .. + 8L − 1: thread (slot, lane) with lane = threadIdx.x mod L owns 8 adjacent columns,
// and row slot s = threadIdx.x / L takes rows s, s + 256/L, …; the slots' sums meet in shared memory, each column's 32 (L = 8)
// or 64 (L = 4) slot sums added in eight-slot groups, then the groups, always in the same order.
template <int DT, int L, typename Wait = PdlWait>
__device__ __forceinline__ void lora_up(const LoraTable& t, float rwkv7_scale, int bx, Wait wait = Wait())
{
    const int cols = 8 * L;
    const int slots = LORA_THREADS / L;
    const int groups = LORA_THREADS / cols; // × 8 slots each = slots
    __shared__ float sums[LORA_THREADS / L][8 * L];
    int branch = 0;
    while (branch + 1 < t.count && bx >= t.block[branch + 1]) branch++;
    int tile = bx - t.block[branch];
    int m = t.width[branch];
    int rank = t.rank[branch];
    int lane = threadIdx.x % L, slot = threadIdx.x / L;
    int col = tile * cols + lane * 8;
    bool active = col < m;
    const char* w = (const char*)t.up[branch];
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; j++) acc[j] = 0.f;
    int r = slot;
    // The first four rows' weights load before the wait (weights are never written).
    uint4 q[4] = {};
#pragma unroll
    for (int u = 0; u < 4; u++)
    {
        if (active && r + u * slots < rank) q[u] = load_stream(w + ((i64)(r + u * slots) * m + col) * 2);
    }

    wait();
    const float* h = (const float*)t.hidden[branch];
    if (active)
    {
        for (bool loaded = true; r < rank; r += 4 * slots, loaded = false)
        {
            float hv[4];
#pragma unroll
            for (int u = 0; u < 4; u++)
            {
                if (r + u * slots < rank)
                {
                    if (!loaded) q[u] = load_stream(w + ((i64)(r + u * slots) * m + col) * 2);
                    hv[u] = h[r + u * slots];
                }
            }

#pragma unroll
            for (int u = 0; u < 4; u++)
            {
                if (r + u * slots < rank) lora_fma8<DT>(q[u], hv[u], acc);
            }
        }
    }

#pragma unroll
    for (int j = 0; j < 8; j++) sums[slot][lane * 8 + j] = acc[j];
    __syncthreads();
    // Thread (g, j): column j of the tile, slots 8g .. 8g + 7.
    int j = threadIdx.x % cols, g = threadIdx.x / cols;
    float s = 0.f;
#pragma unroll
    for (int v = 0; v < 8; v++) s += sums[g * 8 + v][j];
    __syncthreads();
    sums[g][j] = s;
    __syncthreads();
    int c = tile * cols + (int)threadIdx.x;
    if (threadIdx.x < cols && c < m)
    {
        float total = 0.f;
#pragma unroll
        for (int v = 0; v < groups; v++) total += sums[v][threadIdx.x];
        ((float*)t.y[branch])[c] =
            lora_outer(t.outer[branch], total, (const void*)t.offset[branch], t.offset_dtype[branch], c, rwkv7_scale);
    }
}

