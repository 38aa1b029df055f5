using ILGPU;
using ILGPU.Runtime;

namespace Radlads.Ilgpu.Kernels;

/// <summary>One branch of a <see cref="LoraTable"/>: y = outer(inner(x·A)·B) (<see cref="Ops.LoraBranch"/>).</summary>
public struct LoraBranchView
{
    /// <summary>A [C, R], in×out, as 16-byte chunks of adjacent columns.</summary>
    public ArrayView<Words4> Down;

    /// <summary>B [R, M], as <see cref="Down"/>.</summary>
    public ArrayView<Words4> Up;

    /// <summary>inner(x·A) [R], written by <see cref="LoraKernels.LoraDown"/>, read by <see cref="LoraKernels.LoraUp"/>.</summary>
    public ArrayView<float> Hidden;

    /// <summary>The result [M].</summary>
    public ArrayView<float> Y;

    /// <summary>The outer op's offset [M] (any dtype); not read when the outer op is None.</summary>
    public WeightView Offset;

    public int Rank;
    public int Width;

    /// <summary>First column of A in the concatenation of every branch's A: Σ_{j&lt;i} R_j.</summary>
    public int Column;

    /// <summary>First group of the branch in <see cref="LoraKernels.LoraUp"/>.</summary>
    public int Block;

    /// <summary><see cref="Ops.LoraInner"/> as an int.</summary>
    public int Inner;

    /// <summary><see cref="Ops.LoraOuter"/> as an int.</summary>
    public int Outer;
}

/// <summary>The 1–4 branches of one <see cref="Ops.IOps.LoraSet"/> call, passed by value (unused branches are never read).</summary>
public struct LoraTable
{
    public LoraBranchView B0;
    public LoraBranchView B1;
    public LoraBranchView B2;
    public LoraBranchView B3;

    /// <summary>Branches, 1..4.</summary>
    public int Count;

    /// <summary>Σ R_i: the columns of the concatenated A.</summary>
    public int Ranks;

    public readonly LoraBranchView Branch(int i) => i == 0 ? B0 : i == 1 ? B1 : i == 2 ? B2 : B3;

    /// <summary>The branch whose A holds column <paramref name="column"/> of the concatenation.</summary>
    public readonly int BranchOfColumn(int column)
    {
        int i = 0;
        if (Count > 1 && column >= B1.Column)
        {
            i = 1;
        }

        if (Count > 2 && column >= B2.Column)
        {
            i = 2;
        }

        if (Count > 3 && column >= B3.Column)
        {
            i = 3;
        }

        return i;
    }

    /// <summary>The branch that group <paramref name="group"/> of <see cref="LoraKernels.LoraUp"/> works for.</summary>
    public readonly int BranchOfGroup(int group)
    {
        int i = 0;
        if (Count > 1 && group >= B1.Block)
        {
            i = 1;
        }

        if (Count > 2 && group >= B2.Block)
        {
            i = 2;
        }

        if (Count > 3 && group >= B3.Block)
        {
            i = 3;
        }

        return i;
    }
}

/// <summary>
/// <see cref="Ops.IOps.LoraSet"/> at decode (T = 1) in two launches, one instance per weight dtype; every branch's R and
/// M are multiples of the dtype's 16-byte chunk (8 for bf16/f16, 4 for f32), so a chunk never straddles two branches.
/// The arithmetic of the inner and outer ops is that of the elementwise kernels (KernelMath.Tanh/Sigmoid, Rwkv7Decay,
/// Rwkv6Decay, AddSigmoid). Every sum runs in a fixed order, so recorded and eager steps give the same bits.
/// </summary>
public static class LoraKernels
{
    /// <summary>
    /// hidden_i = inner_i(x·A_i) over the concatenated columns of all A_i (x read once): as <see cref="GemvKernels.GemvInOut"/>,
    /// a group's column threads own one chunk each, its row threads split the rows of the group's K range, and K is
    /// split over groups (grid: column tiles × splits, tiles fastest). One split: the group writes hidden. Several: each
    /// group writes its sums into partial [tiles, splits, <see cref="PartialStride"/>]; the last group of a column tile to finish (counted in counters[tile], which it
    /// resets to zero) adds the splits in split order and writes hidden.
    /// </summary>
    public static void LoraDown<TW>(ArrayView<float> x, LoraTable t, ArrayView<float> partial, ArrayView<int> counters, int k,
        int columnThreads, int rowsPerSplit, int splits)
        where TW : struct, IWeightWords
    {
        var sums = SharedMemory.Allocate<Floats4>(2 * GroupedKernels.MaxGroupSize);
        var last = SharedMemory.Allocate<int>(1);
        var words = default(TW);
        int per = words.PerLoad;
        int chunkCount = t.Ranks / per;
        int tiles = (chunkCount + columnThreads - 1) / columnThreads;
        int tile = Grid.IdxX % tiles;
        int split = Grid.IdxX / tiles;
        int rowThreads = Group.DimX / columnThreads;
        int c = Group.IdxX % columnThreads;
        int r = Group.IdxX / columnThreads;
        int chunk = (tile * columnThreads) + c;
        bool valid = chunk < chunkCount;
        int column = chunk * per;
        var branch = t.Branch(valid ? t.BranchOfColumn(column) : 0);
        int branchChunks = branch.Rank / per;
        int local = (column - branch.Column) / per;
        int k0 = split * rowsPerSplit;
        int k1 = IntrinsicMath.Min(k, k0 + rowsPerSplit);
        var lo = default(Floats4);
        var hi = default(Floats4);
        if (valid)
        {
            GemvKernels.InOutRows(words, branch.Down.AsAligned16(), x, k0 + r, k1, rowThreads, branchChunks, local, ref lo, ref hi);
        }

        if (GemvKernels.MeetRowSums(sums, rowThreads, columnThreads, ref lo, ref hi) && valid)
        {
            if (splits == 1)
            {
                var h = branch.Hidden;
                int j = column - branch.Column;
                h[j] = Inner(branch.Inner, lo.X);
                h[j + 1] = Inner(branch.Inner, lo.Y);
                h[j + 2] = Inner(branch.Inner, lo.Z);
                h[j + 3] = Inner(branch.Inner, lo.W);
                if (per == 8)
                {
                    h[j + 4] = Inner(branch.Inner, hi.X);
                    h[j + 5] = Inner(branch.Inner, hi.Y);
                    h[j + 6] = Inner(branch.Inner, hi.Z);
                    h[j + 7] = Inner(branch.Inner, hi.W);
                }
            }
            else
            {
                long p = PartialOffset(tile, split, splits, columnThreads * per) + (column - (tile * columnThreads * per));
                partial[p] = lo.X;
                partial[p + 1] = lo.Y;
                partial[p + 2] = lo.Z;
                partial[p + 3] = lo.W;
                if (per == 8)
                {
                    partial[p + 4] = hi.X;
                    partial[p + 5] = hi.Y;
                    partial[p + 6] = hi.Z;
                    partial[p + 7] = hi.W;
                }
            }
        }

        if (splits == 1)
        {
            return;
        }

        // Publish this split, then count it; the group that counts last sees every split.
        MemoryFence.DeviceLevel();
        Group.Barrier();
        if (Group.IdxX == 0)
        {
            last[0] = Atomic.Add(ref counters[tile], 1) == splits - 1 ? 1 : 0;
        }

        Group.Barrier();
        if (last[0] == 0)
        {
            return;
        }

        MemoryFence.DeviceLevel();
        int tileColumns = columnThreads * per;
        for (int j = Group.IdxX; j < tileColumns; j += Group.DimX)
        {
            int col = (tile * tileColumns) + j;
            if (col < t.Ranks)
            {
                float sum = 0f;
                for (int s = 0; s < splits; s++)
                {
                    sum += partial[PartialOffset(tile, s, splits, tileColumns) + j];
                }

                var b = t.Branch(t.BranchOfColumn(col));
                b.Hidden[col - b.Column] = Inner(b.Inner, sum);
            }
        }

        if (Group.IdxX == 0)
        {
            counters[tile] = 0;
        }
    }

    /// <summary>
    /// y_i = outer_i(hidden_i·B_i): group g works for the branch b with Block_b ≤ g &lt; Block_{b+1} and covers its chunks
    /// (g − Block_b)·columnThreads ..; its row threads split R_b and their sums meet in shared memory in row order.
    /// </summary>
    public static void LoraUp<TW>(LoraTable t, float rwkv7Scale, int columnThreads)
        where TW : struct, IWeightWords
    {
        var sums = SharedMemory.Allocate<Floats4>(2 * GroupedKernels.MaxGroupSize);
        var words = default(TW);
        int per = words.PerLoad;
        var branch = t.Branch(t.BranchOfGroup(Grid.IdxX));
        int chunks = branch.Width / per;
        int rank = branch.Rank;
        int tile = Grid.IdxX - branch.Block;
        int rowThreads = Group.DimX / columnThreads;
        int c = Group.IdxX % columnThreads;
        int r = Group.IdxX / columnThreads;
        int chunk = (tile * columnThreads) + c;
        bool valid = chunk < chunks;
        var lo = default(Floats4);
        var hi = default(Floats4);
        if (valid)
        {
            GemvKernels.InOutRows(words, branch.Up.AsAligned16(), branch.Hidden, r, rank, rowThreads, chunks, chunk, ref lo, ref hi);
        }

        if (!GemvKernels.MeetRowSums(sums, rowThreads, columnThreads, ref lo, ref hi) || !valid)
        {
            return;
        }

        int column = chunk * per;
        var y = branch.Y;
        y[column] = Outer(branch, lo.X, column, rwkv7Scale);
        y[column + 1] = Outer(branch, lo.Y, column + 1, rwkv7Scale);
        y[column + 2] = Outer(branch, lo.Z, column + 2, rwkv7Scale);
        y[column + 3] = Outer(branch, lo.W, column + 3, rwkv7Scale);
        if (per == 8)
        {
            y[column + 4] = Outer(branch, hi.X, column + 4, rwkv7Scale);
            y[column + 5] = Outer(branch, hi.Y, column + 5, rwkv7Scale);
            y[column + 6] = Outer(branch, hi.Z, column + 6, rwkv7Scale);
            y[column + 7] = Outer(branch, hi.W, column + 7, rwkv7Scale);
        }
    }

    /// <summary>Floats of partial sums per (tile, split): the tile's columns rounded up to 32 (128 bytes).</summary>
    public static int PartialStride(int tileColumns) => (tileColumns + 31) / 32 * 32;

    /// <summary>
    /// Where split <paramref name="split"/> of column tile <paramref name="tile"/> keeps its sums: partial [tiles, splits,
    /// PartialStride] (the pool hands out aligned blocks), so no 128-byte line holds two tiles' sums and the last group of a tile cannot find a line another
    /// tile's last group brought into its multiprocessor's L1 before every split of this tile was written.
    /// </summary>
    private static long PartialOffset(int tile, int split, int splits, int tileColumns) =>
        (((long)tile * splits) + split) * PartialStride(tileColumns);

    /// <summary>LoraInner: None, Tanh, Sigmoid, as the Tanh and Sigmoid kernels compute them.</summary>
    private static float Inner(int inner, float h) =>
        inner == (int)Ops.LoraInner.Tanh ? KernelMath.Tanh(h) : inner == (int)Ops.LoraInner.Sigmoid ? KernelMath.Sigmoid(h) : h;

    /// <summary>LoraOuter on z of column j, as the AddSigmoid, Rwkv7Decay and Rwkv6Decay kernels compute it.</summary>
    private static float Outer(LoraBranchView b, float z, int j, float rwkv7Scale)
    {
        if (b.Outer == (int)Ops.LoraOuter.AddSigmoid)
        {
            return KernelMath.Sigmoid(z + b.Offset.Load(j));
        }

        if (b.Outer == (int)Ops.LoraOuter.Rwkv7Decay)
        {
            return MathF.Exp(KernelMath.Sigmoid(z + b.Offset.Load(j)) * rwkv7Scale);
        }

        if (b.Outer == (int)Ops.LoraOuter.Rwkv6Decay)
        {
            float logDecay = -MathF.Exp(b.Offset.Load(j) + z);
            return MathF.Exp(float.IsNaN(logDecay) ? logDecay : MathF.Max(logDecay, -5f));
        }

        return z;
    }
}
