using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaBackwardOps
{
    private const int WeightTile = 64;

    // matmul_backward_weight_f32 steps T by 16 rows; a split's rows are a multiple of it.
    private const int WeightStep = 16;

    // The fewest rows one split of dW's T-sum takes: below this the partial tiles cost more traffic than they save.
    private const int MinSplitRows = 256;

    /// <summary>
    /// How many T-splits dW's tiles take so that the grid has about two blocks per SM ([384×384] at T = 8192: 36
    /// tiles → 8 splits; a LoRA [384×32]: 6 tiles → 32 splits of 256 rows), at least <see cref="MinSplitRows"/> rows each.
    /// </summary>
    private int WeightSplits(long tiles, int tokens)
    {
        long wanted = (2L * backend.Device.MultiprocessorCount + tiles - 1) / tiles;
        return (int)Math.Clamp(wanted, 1, Math.Max(1, tokens / MinSplitRows));
    }

    public void MatMulBackward(Tensor x, Tensor weight, Tensor dy, Tensor? dx, Tensor? dWeight, Tensor? dBias,
        WeightLayout layout = WeightLayout.OutIn)
    {
        backend.Enter();
        const string op = nameof(MatMulBackward);
        if (weight.Shape.Length != 2)
        {
            throw new ArgumentException($"MatMulBackward: weight must be 2-D, got {weight.ShapeText}");
        }

        int k = x.RowLength;
        int t = x.RowCount;
        (int m, int kw) = layout == WeightLayout.OutIn ? (weight.Shape[0], weight.Shape[1]) : (weight.Shape[1], weight.Shape[0]);
        if (kw != k || dy.RowLength != m || dy.RowCount != t || (dx is not null && dx.ElementCount != (long)t * k)
            || (dWeight is not null && dWeight.ElementCount != weight.ElementCount) || (dBias is not null && dBias.ElementCount != m))
        {
            throw new ArgumentException($"MatMulBackward: x {x.ShapeText}, weight {weight.ShapeText} ({layout}), dy {dy.ShapeText}, " +
                $"dx {dx?.ShapeText}, dWeight {dWeight?.ShapeText}, dBias {dBias?.ShapeText} do not fit");
        }

        ulong px = In(x, (long)t * k, op, "x"), pg = In(dy, (long)t * m, op, "dy");
        ulong pdw = Out(dWeight, weight.ElementCount, op, "dWeight"), pdb = Out(dBias, m, op, "dBias");
        if (dx is not null)
        {
            Out(dx, (long)t * k, op, "dx");
            if (dx.RowLength != k)
            {
                throw new ArgumentException($"MatMulBackward: dx {dx.ShapeText} must have rows of {k}");
            }

            // dx = dy·W (OutIn, W [M, K]) is the forward MatMul of dy with W read in the other layout, and
            // dx = dy·Wᵀ (InOut, W [K, M]) likewise: the forward's tested kernels (tiled, GEMV at T = 1), any weight dtype,
            // never cuBLASLt (it would round dy to bf16).
            ((CudaOps)backend.Ops).MatMul(dy, weight, null, dx, layout == WeightLayout.OutIn ? WeightLayout.InOut : WeightLayout.OutIn, gemmLibrary: false);
        }

        if (pdw != 0 && t > 0)
        {
            // OutIn: dW [M, K] += dyᵀ·x; InOut: dW [K, M] += xᵀ·dy. Both are Aᵀ·B with A, B [T, ·].
            (ulong a, ulong b, int p, int q) = layout == WeightLayout.OutIn ? (pg, px, m, k) : (px, pg, k, m);
            uint tilesQ = (uint)((q + WeightTile - 1) / WeightTile), tilesP = (uint)((p + WeightTile - 1) / WeightTile);
            int splits = WeightSplits(tilesP * (long)tilesQ, t);
            int chunkRows = splits == 1 ? t : ((t + splits - 1) / splits + WeightStep - 1) / WeightStep * WeightStep;
            splits = (t + chunkRows - 1) / chunkRows;
            long elements = (long)p * q;
            using var partial = splits == 1 ? null : Scratch(splits, p, q);
            ulong pp = partial is null ? 0 : P(partial);
            void** args = stackalloc void*[] { &a, &b, &pdw, &t, &p, &q, &chunkRows, &pp };
            backend.Launch(K.MatMulBackwardWeight, "matmul_backward_weight_f32", tilesQ, tilesP, Threads, 0, args, (uint)splits);
            if (partial is not null)
            {
                void** reduce = stackalloc void*[] { &pp, &splits, &pdw, &elements };
                Elementwise(K.MatMulBackwardWeightReduce, "matmul_backward_weight_reduce_f32", elements, reduce);
            }
        }

        // dBias += Σ_t dy[t].
        ColumnSum(pg, 0, 0, 0, t, m, pdb, 0);
    }
}
