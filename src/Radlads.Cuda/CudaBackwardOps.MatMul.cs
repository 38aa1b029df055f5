using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaBackwardOps
{
    private const int WeightTile = 64;

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
            void** args = stackalloc void*[] { &a, &b, &pdw, &t, &p, &q };
            backend.Launch(K.MatMulBackwardWeight, "matmul_backward_weight_f32", (uint)((q + WeightTile - 1) / WeightTile),
                (uint)((p + WeightTile - 1) / WeightTile), Threads, 0, args);
        }

        // dBias += Σ_t dy[t].
        ColumnSum(pg, 0, 0, 0, t, m, pdb, 0);
    }
}
