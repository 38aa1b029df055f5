using System.Runtime.InteropServices;
using Radlads.Checkpoints;
using Radlads.Ilgpu.Kernels;
using Radlads.Ops;

namespace Radlads.Ilgpu;

/// <summary>
/// <see cref="IOps.LoraSet"/> (<see cref="LoraKernels"/>): at decode (T = 1) the branches whose two factors share the
/// dtype of the first such branch, are 16-byte aligned and have R and M multiples of the 16-byte chunk (8 columns for
/// bf16/f16, 4 for f32) run in two launches — one GEMV over the concatenated columns of every A_i (x read once, K split
/// over groups, inner on the final write) and one over every B_i (outer on the write). Every other branch, T &gt; 1 and
/// <see cref="IlgpuBackend.Unfused"/> run the composed ops (<see cref="LoraSetReference"/>).
/// </summary>
internal sealed partial class IlgpuOps
{
    public void LoraSet(Tensor x, ReadOnlySpan<LoraBranch> branches)
    {
        LoraSetChecks.Check(x, branches);
        if (x.RowCount != 1 || x.RowLength == 0 || backend.Unfused)
        {
            LoraSetReference.Run(this, x, branches);
            return;
        }

        // The dtype of the launch: the first branch whose factors share one. Outputs never alias inputs (checked), so
        // the kernel branches and the composed ones may run in any order.
        var dtype = DType.F32;
        bool found = false;
        foreach (var b in branches)
        {
            if (b.Down.DType == b.Up.DType)
            {
                dtype = b.Down.DType;
                found = true;
                break;
            }
        }

        var table = default(LoraTable);
        List<LoraBranch>? others = null;
        foreach (var b in branches)
        {
            if (!found || !LoraFastBranch(b, dtype))
            {
                (others ??= []).Add(b);
                continue;
            }

            var view = new LoraBranchView
            {
                Down = I(b.Down).Bytes.Cast<Words4>(),
                Up = I(b.Up).Bytes.Cast<Words4>(),
                Hidden = F(b.Hidden),
                Y = F(b.Y),
                Offset = b.Offset is { } offset ? Param(offset, b.Up.Shape[1]) : None,
                Rank = b.Down.Shape[1],
                Width = b.Up.Shape[1],
                Column = table.Ranks,
                Inner = (int)b.Inner,
                Outer = (int)b.Outer,
            };
            table.Ranks += view.Rank;
            Set(ref table, table.Count++, view);
        }

        if (table.Count > 0)
        {
            using var scope = backend.Enter();
            LoraDown(x, dtype, table);
            LoraUp(dtype, table);
            backend.LoraKernelBranches += table.Count;
        }

        if (others is not null)
        {
            LoraSetReference.Run(this, x, CollectionsMarshal.AsSpan(others));
        }
    }

    /// <summary>Both factors of <paramref name="dtype"/>, 16-byte aligned, R and M non-zero multiples of a 16-byte chunk.</summary>
    private static bool LoraFastBranch(LoraBranch b, DType dtype)
    {
        int per = dtype == DType.F32 ? 4 : 8;
        int r = b.Down.Shape[1], m = b.Up.Shape[1];
        return b.Down.DType == dtype && b.Up.DType == dtype && r > 0 && m > 0 && r % per == 0 && m % per == 0
            && I(b.Down).Address % 16 == 0 && I(b.Up).Address % 16 == 0;
    }

    private static void Set(ref LoraTable table, int i, LoraBranchView view)
    {
        switch (i)
        {
            case 0:
                table.B0 = view;
                break;
            case 1:
                table.B1 = view;
                break;
            case 2:
                table.B2 = view;
                break;
            default:
                table.B3 = view;
                break;
        }
    }

    /// <summary>
    /// hidden_i = inner_i(x·A_i): a tile of up to 32 chunks (256 bf16 columns) per group, as CUDA's lora_down; K split so
    /// that the tiles give every multiprocessor about two groups, each split at least four rows per row thread.
    /// </summary>
    private void LoraDown(Tensor x, DType dtype, LoraTable table)
    {
        int k = x.RowLength;
        int per = dtype == DType.F32 ? 4 : 8;
        int chunks = table.Ranks / per;
        int columnThreads = 1;
        while (columnThreads < chunks && columnThreads < 32 && columnThreads * 2 <= GroupSize && GroupSize % (columnThreads * 2) == 0)
        {
            columnThreads *= 2;
        }

        int tiles = (chunks + columnThreads - 1) / columnThreads;
        int rowThreads = GroupSize / columnThreads;
        int splits = 1;
        if (tiles <= IlgpuBackend.SplitCounterCount)
        {
            long wanted = backend.LoraDownGroups ?? 2L * Math.Max(1, Device.Accelerator.NumMultiprocessors);
            splits = (int)Math.Clamp((wanted + tiles - 1) / tiles, 1, Math.Max(1, k / (4 * rowThreads)));
        }

        int rowsPerSplit = (k + splits - 1) / splits;
        splits = (k + rowsPerSplit - 1) / rowsPerSplit;
        var kernel = K.LoraDown[(int)dtype];
        if (splits == 1)
        {
            kernel(S, Groups(tiles, nameof(LoraSet)), F(x), table, Device.DummyFloats.View, backend.SplitCounters, k, columnThreads, rowsPerSplit, 1);
            return;
        }

        // The splits' partial sums [tiles, splits, stride]; the last group of each column tile adds them (and resets its counter).
        using var partial = backend.AllocateUninitialized(tiles * splits, LoraKernels.PartialStride(columnThreads * per));
        kernel(S, Groups((long)tiles * splits, nameof(LoraSet)), F(x), table, F(partial), backend.SplitCounters, k, columnThreads, rowsPerSplit, splits);
    }

    /// <summary>
    /// y_i = outer_i(hidden_i·B_i): chunks of one branch per group; fewer column threads (more groups, more row threads
    /// per column) until the groups give every multiprocessor about two, while each row thread keeps a row of R.
    /// </summary>
    private void LoraUp(DType dtype, LoraTable table)
    {
        int per = dtype == DType.F32 ? 4 : 8;
        long wanted = 2L * Math.Max(1, Device.Accelerator.NumMultiprocessors);
        int maxRank = 0;
        for (int i = 0; i < table.Count; i++)
        {
            maxRank = Math.Max(maxRank, table.Branch(i).Rank);
        }

        int columnThreads = Math.Max(1, GroupSize / 8);
        while (columnThreads > 1 && Blocks(table, per, columnThreads) < wanted && GroupSize / (columnThreads / 2) <= maxRank)
        {
            columnThreads /= 2;
        }

        int groups = Blocks(table, per, columnThreads);
        for (int i = 0, first = 0; i < table.Count; i++)
        {
            var view = table.Branch(i);
            view.Block = first;
            first += (view.Width / per + columnThreads - 1) / columnThreads;
            Set(ref table, i, view);
        }

        K.LoraUp[(int)dtype](S, Groups(groups, nameof(LoraSet)), table, Rwkv7DecayScale, columnThreads);
    }

    /// <summary>Groups of <see cref="LoraKernels.LoraUp"/> for <paramref name="columnThreads"/> chunks per group.</summary>
    private static int Blocks(LoraTable table, int per, int columnThreads)
    {
        int groups = 0;
        for (int i = 0; i < table.Count; i++)
        {
            groups += (table.Branch(i).Width / per + columnThreads - 1) / columnThreads;
        }

        return groups;
    }
}
