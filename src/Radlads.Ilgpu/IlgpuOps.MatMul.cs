using ILGPU;
using Radlads.Checkpoints;
using Radlads.Ilgpu.Kernels;
using Radlads.Ops;

namespace Radlads.Ilgpu;

internal sealed partial class IlgpuOps
{
    public void MatMul(Tensor x, Tensor weight, Tensor? bias, Tensor y, WeightLayout layout = WeightLayout.OutIn)
    {
        var w = I(weight);
        if (weight.Shape.Length != 2)
        {
            throw new ArgumentException($"MatMul: weight must be 2-D, got {weight.ShapeText}");
        }

        int k = x.RowLength;
        int t = x.RowCount;
        (int m, int kw) = layout == WeightLayout.OutIn ? (weight.Shape[0], weight.Shape[1]) : (weight.Shape[1], weight.Shape[0]);
        if (kw != k || y.RowLength != m || y.RowCount != t)
        {
            throw new ArgumentException($"MatMul: x {x.ShapeText}, weight {weight.ShapeText} ({layout}), y {y.ShapeText} do not fit");
        }

        var b = bias is null ? None : Param(bias, m);
        int hasBias = bias is null ? 0 : 1;
        if (t == 0 || m == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        if (backend.ThreadPerOutputKernels)
        {
            var dot = layout == WeightLayout.OutIn ? K.MatMulOutInDot : K.MatMulInOutDot;
            dot(S, Extent((long)t * m, nameof(MatMul)), F(x), w.Weight(Device), b, hasBias, k, m, F(y));
        }
        else if (backend.Baseline)
        {
            Legacy(x, w, b, hasBias, t, k, m, y, layout);
        }
        else if (t == 1 && layout == WeightLayout.OutIn && VectorLoads(I(x), w, k))
        {
            Gemv(I(x), w, b, hasBias, k, m, F(y));
        }
        else if (t == 1 && layout == WeightLayout.InOut && VectorColumns(w, m))
        {
            GemvInOut(F(x), w, b, hasBias, k, m, F(y));
        }
        else if (t > 1)
        {
            // A tile of 4·TY tokens × 4·TX outputs per group (64 × 64 with 256 threads).
            int ty = TiledKernels.TokenThreads(GroupSize);
            int tileT = 4 * ty;
            int tileM = 4 * (GroupSize / ty);
            long groups = (long)((m + tileM - 1) / tileM) * ((t + tileT - 1) / tileT);
            K.MatMulTiled(S, Groups(groups, nameof(MatMul)), F(x), w.Weight(Device), b, hasBias, layout == WeightLayout.OutIn ? 1 : 0, t, k, m, F(y));
        }
        else
        {
            Legacy(x, w, b, hasBias, t, k, m, y, layout);
        }
    }

    /// <summary>The warp-per-row (OutIn) and K-split (InOut) kernels with per-element loads: any shape and alignment.</summary>
    private void Legacy(Tensor x, IlgpuTensor w, WeightView b, int hasBias, int t, int k, int m, Tensor y, WeightLayout layout)
    {
        if (layout == WeightLayout.OutIn)
        {
            // One warp per output row.
            int warps = GroupSize / Device.WarpSize;
            K.MatMulOutIn(S, Groups((m + warps - 1) / warps, nameof(MatMul)), F(x), w.Weight(Device), b, hasBias, t, k, m, F(y));
        }
        else
        {
            // One group per (token, warp-wide block of columns).
            long blocks = (m + Device.WarpSize - 1) / Device.WarpSize;
            K.MatMulInOut(S, Groups(t * blocks, nameof(MatMul)), F(x), w.Weight(Device), b, hasBias, t, k, m, F(y));
        }
    }

    /// <summary>Whether x [1, K] and W [M, K] can be read in aligned 16-byte chunks (K a multiple of 8, or 4 for f32).</summary>
    private static bool VectorLoads(IlgpuTensor x, IlgpuTensor w, int k)
    {
        int perLoad = w.DType == DType.F32 ? 4 : 8;
        return k % perLoad == 0 && x.Address % 16 == 0 && w.Address % 16 == 0;
    }

    /// <summary>Whether W [K, M] can be read in aligned 16-byte chunks of adjacent columns (M a multiple of 8, or 4 for f32).</summary>
    private static bool VectorColumns(IlgpuTensor w, int m) => m % (w.DType == DType.F32 ? 4 : 8) == 0 && w.Address % 16 == 0;

    /// <summary>
    /// Decode GEMV, W [K, M]: column chunks across a group's threads (as many as there are chunks, up to the group),
    /// the rest of the group and, when the columns give too few groups, several groups (splits) over K, so a LoRA
    /// factor of a few columns and thousands of rows still spreads over the GPU.
    /// </summary>
    private void GemvInOut(ArrayView<float> x, IlgpuTensor w, WeightView bias, int hasBias, int k, int m, ArrayView<float> y)
    {
        int per = w.DType == DType.F32 ? 4 : 8;
        int chunks = m / per;
        int columnThreads = 1;
        while (columnThreads < chunks && columnThreads * 2 <= GroupSize && GroupSize % (columnThreads * 2) == 0)
        {
            columnThreads *= 2;
        }

        int tiles = (chunks + columnThreads - 1) / columnThreads;
        int rowThreads = GroupSize / columnThreads;
        long wanted = 2L * Math.Max(1, Device.Accelerator.NumMultiprocessors);
        // At least four rows per row thread in each split, so that a split's loads are worth a group.
        int splits = (int)Math.Clamp((wanted + tiles - 1) / tiles, 1, Math.Max(1, k / (4 * rowThreads)));
        int rowsPerSplit = (k + splits - 1) / splits;
        splits = (k + rowsPerSplit - 1) / rowsPerSplit;
        var words = w.Bytes.Cast<Words4>();
        var kernel = K.GemvInOut[(int)w.DType];
        if (splits == 1)
        {
            kernel(S, Groups(tiles, nameof(MatMul)), x, words, bias, hasBias, k, m, columnThreads, rowsPerSplit, 1, y, y);
            return;
        }

        using var partial = backend.AllocateUninitialized(splits, m);
        kernel(S, Groups((long)tiles * splits, nameof(MatMul)), x, words, bias, 0, k, m, columnThreads, rowsPerSplit, splits, F(partial), y);
        K.GemvSplits(S, m, F(partial), bias, hasBias, splits, m, y);
    }

    /// <summary>
    /// Decode GEMV, W [M, K] in 16-byte chunks, with 1, 2, 4 or 8 warps per row: the fewest that still give every
    /// multiprocessor <see cref="IlgpuBackend.GemvGroupsPerMultiprocessor"/> groups, so that a few rows (k/v projections) fill the GPU too.
    /// </summary>
    private void Gemv(IlgpuTensor x, IlgpuTensor w, WeightView bias, int hasBias, int k, int m, ArrayView<float> y)
    {
        int perRow = GemvWarpsPerRow(m);
        int rowsPerGroup = GroupSize / Device.WarpSize / perRow;
        int chunks = k / (w.DType == DType.F32 ? 4 : 8);
        var words = w.Bytes.Cast<Words4>();
        var xs = x.Floats.SubView(0, k).Cast<Floats4>();
        K.GemvOutIn[(int)w.DType](S, Groups((m + rowsPerGroup - 1) / rowsPerGroup, nameof(MatMul)), xs, words, bias, hasBias, chunks, m, perRow, y);
    }

    /// <summary>The decode GEMV's warps per row for M rows (1, 2, 4, 8): the fewest that still give every multiprocessor <see cref="IlgpuBackend.GemvGroupsPerMultiprocessor"/> groups.</summary>
    private int GemvWarpsPerRow(int m)
    {
        int warps = GroupSize / Device.WarpSize;
        long wanted = (long)backend.GemvGroupsPerMultiprocessor * Math.Max(1, Device.Accelerator.NumMultiprocessors);
        int perRow = 1;
        while (perRow < 8 && warps % (perRow * 2) == 0 && (m + (warps / perRow) - 1) / (warps / perRow) < wanted)
        {
            perRow *= 2;
        }

        return perRow;
    }
}
