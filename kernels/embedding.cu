// Embedding: y[t] = table[ids[t]]. The host has checked every id against the vocabulary before the launch.
#include "common.cuh"

extern "C" __global__ void embedding_f32(const void* table, int dtype, const int* ids, float* y, int tokens, int c)
{
    pdl_begin();
    GRID_STRIDE(i, (i64)tokens * c)
    {
        i64 t = i / c;
        y[i] = load_any(table, dtype, (i64)ids[t] * c + (i % c));
    }
}
