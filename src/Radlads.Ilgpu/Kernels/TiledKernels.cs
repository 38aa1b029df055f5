using ILGPU;

namespace Radlads.Ilgpu.Kernels;

/// <summary>The shared-memory tiled matmul for T &gt; 1 (prefill).</summary>
public static class TiledKernels
{
    /// <summary>Depth of a K slice held in shared memory.</summary>
    public const int TileK = 16;

    /// <summary>Largest tile side (a group of 256 threads: 16 × 16 threads of 4 × 4 outputs).</summary>
    public const int MaxTile = 64;

    /// <summary>
    /// Threads per row of the thread grid for a group of <paramref name="groupSize"/>: the largest power of two whose
    /// square fits (16 for 256 threads); the other side is groupSize / that. Each thread computes 4 × 4 outputs.
    /// </summary>
    public static int TokenThreads(int groupSize)
    {
        int ty = 1;
        while ((ty * 2) * (ty * 2) <= groupSize)
        {
            ty *= 2;
        }

        return ty;
    }

    /// <summary>
    /// y = x·Wᵀ + b (outIn = 1, W [M, K]) or x·W + b (outIn = 0, W [K, M]) with fp32 accumulation. A group computes a
    /// tile of 4·TY tokens × 4·TX outputs (64 × 64 for 256 threads), walking K in slices of 16 held in shared memory;
    /// each weight element is read from memory once per tile of tokens instead of once per token. Thread (tx, ty) owns
    /// tokens ty + TY·i and outputs tx + TX·j. Grid: ⌈M / (4·TX)⌉ · ⌈T / (4·TY)⌉ groups (column tiles fastest).
    /// </summary>
    public static void MatMulTiled(ArrayView<float> x, WeightView weight, WeightView bias, int hasBias, int outIn, int tokens, int k, int m,
        ArrayView<float> y)
    {
        var xs = SharedMemory.Allocate<float>(TileK * (MaxTile + 1));
        var ws = SharedMemory.Allocate<float>(TileK * (MaxTile + 1));
        int threads = Group.DimX;
        int tyCount = TokenThreads(threads);
        int txCount = threads / tyCount;
        int tileT = 4 * tyCount;
        int tileM = 4 * txCount;
        int tid = Group.IdxX;
        int tx = tid % txCount;
        int ty = tid / txCount;
        int columnTiles = (m + tileM - 1) / tileM;
        int m0 = (Grid.IdxX % columnTiles) * tileM;
        int t0 = (Grid.IdxX / columnTiles) * tileT;
        var a0 = default(Floats4);
        var a1 = default(Floats4);
        var a2 = default(Floats4);
        var a3 = default(Floats4);
        for (int k0 = 0; k0 < k; k0 += TileK)
        {
            for (int idx = tid; idx < TileK * tileT; idx += threads)
            {
                // Consecutive threads read consecutive k of one token row.
                int kk = idx % TileK;
                int tt = idx / TileK;
                int t = t0 + tt;
                int kg = k0 + kk;
                xs[(kk * (MaxTile + 1)) + tt] = t < tokens && kg < k ? x[((long)t * k) + kg] : 0f;
            }

            for (int idx = tid; idx < TileK * tileM; idx += threads)
            {
                // Consecutive threads read consecutive addresses in either layout.
                int kw = outIn != 0 ? idx % TileK : idx / tileM;
                int mm = outIn != 0 ? idx / TileK : idx % tileM;
                int mg = m0 + mm;
                int kg = k0 + kw;
                float value = 0f;
                if (mg < m && kg < k)
                {
                    value = weight.Load(outIn != 0 ? ((long)mg * k) + kg : ((long)kg * m) + mg);
                }

                ws[(kw * (MaxTile + 1)) + mm] = value;
            }

            Group.Barrier();
            for (int kk = 0; kk < TileK; kk++)
            {
                int xo = kk * (MaxTile + 1);
                float x0 = xs[xo + ty];
                float x1 = xs[xo + ty + tyCount];
                float x2 = xs[xo + ty + (2 * tyCount)];
                float x3 = xs[xo + ty + (3 * tyCount)];
                float w0 = ws[xo + tx];
                float w1 = ws[xo + tx + txCount];
                float w2 = ws[xo + tx + (2 * txCount)];
                float w3 = ws[xo + tx + (3 * txCount)];
                a0 = Fma(a0, x0, w0, w1, w2, w3);
                a1 = Fma(a1, x1, w0, w1, w2, w3);
                a2 = Fma(a2, x2, w0, w1, w2, w3);
                a3 = Fma(a3, x3, w0, w1, w2, w3);
            }

            Group.Barrier();
        }

        Store(a0, t0 + ty, m0 + tx, txCount, tokens, m, bias, hasBias, y);
        Store(a1, t0 + ty + tyCount, m0 + tx, txCount, tokens, m, bias, hasBias, y);
        Store(a2, t0 + ty + (2 * tyCount), m0 + tx, txCount, tokens, m, bias, hasBias, y);
        Store(a3, t0 + ty + (3 * tyCount), m0 + tx, txCount, tokens, m, bias, hasBias, y);
    }

    private static Floats4 Fma(Floats4 acc, float xv, float w0, float w1, float w2, float w3)
    {
        acc.X += xv * w0;
        acc.Y += xv * w1;
        acc.Z += xv * w2;
        acc.W += xv * w3;
        return acc;
    }

    private static void Store(Floats4 acc, int t, int column, int step, int tokens, int m, WeightView bias, int hasBias, ArrayView<float> y)
    {
        if (t >= tokens)
        {
            return;
        }

        long o = (long)t * m;
        StoreOne(acc.X, o, column, m, bias, hasBias, y);
        StoreOne(acc.Y, o, column + step, m, bias, hasBias, y);
        StoreOne(acc.Z, o, column + (2 * step), m, bias, hasBias, y);
        StoreOne(acc.W, o, column + (3 * step), m, bias, hasBias, y);
    }

    private static void StoreOne(float value, long o, int column, int m, WeightView bias, int hasBias, ArrayView<float> y)
    {
        if (column < m)
        {
            y[o + column] = value + (hasBias != 0 ? bias.Load(column) : 0f);
        }
    }
}
