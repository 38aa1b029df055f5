using ILGPU;
using ILGPU.Runtime;

namespace Radlads.Ilgpu.Kernels;

/// <summary>16 bytes of weights, read with one vector load (PTX ld.global.v4.b32 on an aligned view).</summary>
public struct Words4
{
    public uint X;
    public uint Y;
    public uint Z;
    public uint W;
}

/// <summary>Four fp32 activations, read with one vector load.</summary>
public struct Floats4
{
    public float X;
    public float Y;
    public float Z;
    public float W;
}

/// <summary>
/// How 16 bytes of weights of one dtype meet the matching activations: a struct type parameter of the GEMV kernels, so
/// each dtype gets its own kernel (no per-element dtype branch) and the conversion inlines.
/// </summary>
public interface IWeightWords
{
    /// <summary>Weights per 16 bytes: 8 (bf16, f16) or 4 (f32).</summary>
    int PerLoad { get; }

    /// <summary>acc + Σ (the weights in <paramref name="q"/>) · (the activations of chunk <paramref name="c"/> of x).</summary>
    float Dot(Words4 q, ArrayView<Floats4> x, long c, float acc);

    /// <summary>lo, hi += a · (the weights in <paramref name="q"/>): columns 0–3 in lo, 4–7 in hi (f32 has only lo).</summary>
    void Axpy(Words4 q, float a, ref Floats4 lo, ref Floats4 hi);
}

/// <summary>bf16: 8 weights per 16 bytes; a bf16 is the high half of an fp32.</summary>
public struct Bf16Words : IWeightWords
{
    public readonly int PerLoad => 8;

    public readonly float Dot(Words4 q, ArrayView<Floats4> x, long c, float acc)
    {
        var a = x[2 * c];
        var b = x[(2 * c) + 1];
        acc += Interop.IntAsFloat(q.X << 16) * a.X;
        acc += Interop.IntAsFloat(q.X & 0xffff0000u) * a.Y;
        acc += Interop.IntAsFloat(q.Y << 16) * a.Z;
        acc += Interop.IntAsFloat(q.Y & 0xffff0000u) * a.W;
        acc += Interop.IntAsFloat(q.Z << 16) * b.X;
        acc += Interop.IntAsFloat(q.Z & 0xffff0000u) * b.Y;
        acc += Interop.IntAsFloat(q.W << 16) * b.Z;
        acc += Interop.IntAsFloat(q.W & 0xffff0000u) * b.W;
        return acc;
    }

    public readonly void Axpy(Words4 q, float a, ref Floats4 lo, ref Floats4 hi)
    {
        lo.X += Interop.IntAsFloat(q.X << 16) * a;
        lo.Y += Interop.IntAsFloat(q.X & 0xffff0000u) * a;
        lo.Z += Interop.IntAsFloat(q.Y << 16) * a;
        lo.W += Interop.IntAsFloat(q.Y & 0xffff0000u) * a;
        hi.X += Interop.IntAsFloat(q.Z << 16) * a;
        hi.Y += Interop.IntAsFloat(q.Z & 0xffff0000u) * a;
        hi.Z += Interop.IntAsFloat(q.W << 16) * a;
        hi.W += Interop.IntAsFloat(q.W & 0xffff0000u) * a;
    }
}

/// <summary>f16: 8 weights per 16 bytes, widened exactly with integer ops.</summary>
public struct F16Words : IWeightWords
{
    public readonly int PerLoad => 8;

    public readonly float Dot(Words4 q, ArrayView<Floats4> x, long c, float acc)
    {
        var a = x[2 * c];
        var b = x[(2 * c) + 1];
        acc += KernelMath.HalfToSingle(q.X & 0xffffu) * a.X;
        acc += KernelMath.HalfToSingle(q.X >> 16) * a.Y;
        acc += KernelMath.HalfToSingle(q.Y & 0xffffu) * a.Z;
        acc += KernelMath.HalfToSingle(q.Y >> 16) * a.W;
        acc += KernelMath.HalfToSingle(q.Z & 0xffffu) * b.X;
        acc += KernelMath.HalfToSingle(q.Z >> 16) * b.Y;
        acc += KernelMath.HalfToSingle(q.W & 0xffffu) * b.Z;
        acc += KernelMath.HalfToSingle(q.W >> 16) * b.W;
        return acc;
    }

    public readonly void Axpy(Words4 q, float a, ref Floats4 lo, ref Floats4 hi)
    {
        lo.X += KernelMath.HalfToSingle(q.X & 0xffffu) * a;
        lo.Y += KernelMath.HalfToSingle(q.X >> 16) * a;
        lo.Z += KernelMath.HalfToSingle(q.Y & 0xffffu) * a;
        lo.W += KernelMath.HalfToSingle(q.Y >> 16) * a;
        hi.X += KernelMath.HalfToSingle(q.Z & 0xffffu) * a;
        hi.Y += KernelMath.HalfToSingle(q.Z >> 16) * a;
        hi.Z += KernelMath.HalfToSingle(q.W & 0xffffu) * a;
        hi.W += KernelMath.HalfToSingle(q.W >> 16) * a;
    }
}

/// <summary>f32: 4 weights per 16 bytes.</summary>
public struct F32Words : IWeightWords
{
    public readonly int PerLoad => 4;

    public readonly float Dot(Words4 q, ArrayView<Floats4> x, long c, float acc)
    {
        var a = x[c];
        acc += Interop.IntAsFloat(q.X) * a.X;
        acc += Interop.IntAsFloat(q.Y) * a.Y;
        acc += Interop.IntAsFloat(q.Z) * a.Z;
        acc += Interop.IntAsFloat(q.W) * a.W;
        return acc;
    }

    public readonly void Axpy(Words4 q, float a, ref Floats4 lo, ref Floats4 hi)
    {
        lo.X += Interop.IntAsFloat(q.X) * a;
        lo.Y += Interop.IntAsFloat(q.Y) * a;
        lo.Z += Interop.IntAsFloat(q.Z) * a;
        lo.W += Interop.IntAsFloat(q.W) * a;
    }
}

/// <summary>Matrix-vector kernels for decode (T = 1), one instance per weight dtype.</summary>
public static class GemvKernels
{
    /// <summary>
    /// y = x·Wᵀ + b for one token, W [M, K] viewed as 16-byte chunks (K a multiple of 8 for 16-bit weights, 4 for
    /// f32; W and x 16-byte aligned). A group's warps take rows: <paramref name="warpsPerRow"/> warps share one row
    /// and interleave its chunks (so a few rows still fill the GPU), four 16-byte loads in flight per lane, then a warp
    /// sum and, with several warps per row, a sum over them in shared memory in a fixed order.
    /// Grid: ⌈M / (warps per group / warps per row)⌉ groups.
    /// </summary>
    public static void GemvOutIn<TW>(ArrayView<Floats4> x, ArrayView<Words4> weight, WeightView bias, int hasBias, int chunks, int m,
        int warpsPerRow, ArrayView<float> y)
        where TW : struct, IWeightWords =>
        GemvOutInRows<TW>(x.AsAligned16(), weight, bias, hasBias, chunks, m, warpsPerRow, y);

    /// <summary>The body of <see cref="GemvOutIn{TW}"/> and <see cref="FusedKernels.NormGemvOutIn{TW}"/>: x in global or shared memory.</summary>
    internal static void GemvOutInRows<TW>(ArrayView<Floats4> xs, ArrayView<Words4> weight, WeightView bias, int hasBias, int chunks, int m,
        int warpsPerRow, ArrayView<float> y)
        where TW : struct, IWeightWords
    {
        var partial = SharedMemory.Allocate<float>(GroupedKernels.MaxWarpsPerGroup);
        var w = weight.AsAligned16();
        var words = default(TW);
        int warps = Group.DimX / Warp.WarpSize;
        int rowsPerGroup = warps / warpsPerRow;
        int part = Warp.WarpIdx % warpsPerRow;
        int row = (Grid.IdxX * rowsPerGroup) + (Warp.WarpIdx / warpsPerRow);
        bool valid = row < m;
        long o = (long)(valid ? row : 0) * chunks;
        int stride = Warp.WarpSize * warpsPerRow;
        int c = (part * Warp.WarpSize) + Warp.LaneIdx;
        float acc = valid ? OutInRowPart(words, w, xs, o, c, stride, chunks) : 0f;

        acc = KernelMath.WarpSum(acc);
        if (warpsPerRow > 1)
        {
            if (Warp.IsFirstLane)
            {
                partial[Warp.WarpIdx] = acc;
            }

            Group.Barrier();
            if (part == 0 && Warp.IsFirstLane && valid)
            {
                for (int i = 1; i < warpsPerRow; i++)
                {
                    acc += partial[Warp.WarpIdx + i];
                }
            }
        }

        if (part == 0 && Warp.IsFirstLane && valid)
        {
            y[row] = acc + (hasBias != 0 ? bias.Load(row) : 0f);
        }
    }

    /// <summary>
    /// One warp's share of an out×in row at offset <paramref name="o"/> (in 16-byte chunks) of W: the lane's chunks
    /// c0, c0 + stride, … &lt; chunks, dotted with x in order, four loads in flight. Shared by <see cref="GemvOutIn{TW}"/>
    /// and the fused gate/up kernel, so both give the same bits (kernels inline this, so the 128-bit loads stay).
    /// </summary>
    internal static float OutInRowPart<TW>(TW words, ArrayView<Words4> w, ArrayView<Floats4> xs, long o, int c0, int stride, int chunks)
        where TW : struct, IWeightWords
    {
        float acc = 0f;
        int c = c0;
        for (; c + (3 * stride) < chunks; c += 4 * stride)
        {
            var q0 = w[o + c];
            var q1 = w[o + c + stride];
            var q2 = w[o + c + (2 * stride)];
            var q3 = w[o + c + (3 * stride)];
            acc = words.Dot(q0, xs, c, acc);
            acc = words.Dot(q1, xs, c + stride, acc);
            acc = words.Dot(q2, xs, c + (2 * stride), acc);
            acc = words.Dot(q3, xs, c + (3 * stride), acc);
        }

        for (; c < chunks; c += stride)
        {
            acc = words.Dot(w[o + c], xs, c, acc);
        }

        return acc;
    }

    /// <summary>
    /// The in×out GEMV's inner loop, shared by <see cref="GemvInOut{TW}"/> and the LoRA kernels: lo/hi += Σ x[kk] ·
    /// (16-byte chunk <paramref name="chunk"/> of row kk of W, <paramref name="chunks"/> chunks a row) over kk = start,
    /// start + step, … &lt; end, four loads in flight, rows added in order. <paramref name="w"/> is the caller's
    /// 16-byte aligned view (kernels inline this, so the 128-bit loads stay).
    /// </summary>
    internal static void InOutRows<TW>(TW words, ArrayView<Words4> w, ArrayView<float> x, int start, int end, int step, int chunks,
        int chunk, ref Floats4 lo, ref Floats4 hi)
        where TW : struct, IWeightWords
    {
        int kk = start;
        for (; kk + (3 * step) < end; kk += 4 * step)
        {
            var q0 = w[((long)kk * chunks) + chunk];
            var q1 = w[((long)(kk + step) * chunks) + chunk];
            var q2 = w[((long)(kk + (2 * step)) * chunks) + chunk];
            var q3 = w[((long)(kk + (3 * step)) * chunks) + chunk];
            words.Axpy(q0, x[kk], ref lo, ref hi);
            words.Axpy(q1, x[kk + step], ref lo, ref hi);
            words.Axpy(q2, x[kk + (2 * step)], ref lo, ref hi);
            words.Axpy(q3, x[kk + (3 * step)], ref lo, ref hi);
        }

        for (; kk < end; kk += step)
        {
            words.Axpy(w[((long)kk * chunks) + chunk], x[kk], ref lo, ref hi);
        }
    }

    /// <summary>
    /// y = x·W for one token, W [K, M] (LoRA factors) viewed as 16-byte chunks of 8 (f32: 4) adjacent columns (M a
    /// multiple of that, W 16-byte aligned). A group's threads form columnThreads × (group size / columnThreads): thread
    /// (c, r) owns column chunk tile·columnThreads + c and takes rows k0 + r, k0 + r + rowThreads, … of its split
    /// [k0, k0 + rowsPerSplit), four 16-byte loads in flight; the row threads' sums meet in shared memory and are added
    /// in a fixed order. With one split the group writes y (+ bias); otherwise it writes partial[split, M] and
    /// <see cref="GemvSplits"/> adds the splits. Grid: column tiles × splits groups (tiles fastest).
    /// </summary>
    public static void GemvInOut<TW>(ArrayView<float> x, ArrayView<Words4> weight, WeightView bias, int hasBias, int k, int m,
        int columnThreads, int rowsPerSplit, int splits, ArrayView<float> partial, ArrayView<float> y)
        where TW : struct, IWeightWords
    {
        var sums = SharedMemory.Allocate<Floats4>(2 * GroupedKernels.MaxGroupSize);
        var w = weight.AsAligned16();
        var words = default(TW);
        int per = words.PerLoad;
        int chunkColumns = m / per;
        int tiles = (chunkColumns + columnThreads - 1) / columnThreads;
        int tile = Grid.IdxX % tiles;
        int split = Grid.IdxX / tiles;
        int rowThreads = Group.DimX / columnThreads;
        int c = Group.IdxX % columnThreads;
        int r = Group.IdxX / columnThreads;
        int chunk = (tile * columnThreads) + c;
        bool valid = chunk < chunkColumns;
        int k0 = split * rowsPerSplit;
        int k1 = IntrinsicMath.Min(k, k0 + rowsPerSplit);
        var lo = default(Floats4);
        var hi = default(Floats4);
        if (valid)
        {
            InOutRows(words, w, x, k0 + r, k1, rowThreads, chunkColumns, chunk, ref lo, ref hi);
        }

        if (!MeetRowSums(sums, rowThreads, columnThreads, ref lo, ref hi) || !valid)
        {
            return;
        }

        int column = chunk * per;
        if (splits == 1)
        {
            Write(lo, hi, per, column, bias, hasBias, y);
        }
        else
        {
            Write(lo, hi, per, column, bias, 0, partial.SubView((long)split * m, m));
        }
    }

    /// <summary>y[j] = Σ_s partial[s, j] (in split order) + bias[j]. Launched over M.</summary>
    public static void GemvSplits(Index1D j, ArrayView<float> partial, WeightView bias, int hasBias, int splits, int m, ArrayView<float> y)
    {
        float sum = 0f;
        for (int s = 0; s < splits; s++)
        {
            sum += partial[((long)s * m) + j];
        }

        y[j] = sum + (hasBias != 0 ? bias.Load(j) : 0f);
    }

    /// <summary>
    /// The row threads' <see cref="InOutRows"/> sums of a group meet: every thread (c, r) — c = IdxX % columnThreads,
    /// r = IdxX / columnThreads — stores its (lo, hi) in <paramref name="sums"/> (2 per thread), the group waits, and
    /// thread (c, 0) adds rows 1, 2, … in that order (a fixed order: the same bits every run and in every kernel that
    /// calls it) and returns true with column chunk c's total; every other thread returns false. Every thread of the
    /// group must call it (a barrier).
    /// </summary>
    internal static bool MeetRowSums(ArrayView<Floats4> sums, int rowThreads, int columnThreads, ref Floats4 lo, ref Floats4 hi)
    {
        sums[2 * Group.IdxX] = lo;
        sums[(2 * Group.IdxX) + 1] = hi;
        Group.Barrier();
        if (Group.IdxX >= columnThreads)
        {
            return false;
        }

        for (int i = 1; i < rowThreads; i++)
        {
            int o = 2 * ((i * columnThreads) + Group.IdxX);
            lo = Add(lo, sums[o]);
            hi = Add(hi, sums[o + 1]);
        }

        return true;
    }

    internal static Floats4 Add(Floats4 a, Floats4 b)
    {
        a.X += b.X;
        a.Y += b.Y;
        a.Z += b.Z;
        a.W += b.W;
        return a;
    }

    private static void Write(Floats4 lo, Floats4 hi, int per, int column, WeightView bias, int hasBias, ArrayView<float> y)
    {
        y[column] = lo.X + (hasBias != 0 ? bias.Load(column) : 0f);
        y[column + 1] = lo.Y + (hasBias != 0 ? bias.Load(column + 1) : 0f);
        y[column + 2] = lo.Z + (hasBias != 0 ? bias.Load(column + 2) : 0f);
        y[column + 3] = lo.W + (hasBias != 0 ? bias.Load(column + 3) : 0f);
        if (per == 8)
        {
            y[column + 4] = hi.X + (hasBias != 0 ? bias.Load(column + 4) : 0f);
            y[column + 5] = hi.Y + (hasBias != 0 ? bias.Load(column + 5) : 0f);
            y[column + 6] = hi.Z + (hasBias != 0 ? bias.Load(column + 6) : 0f);
            y[column + 7] = hi.W + (hasBias != 0 ? bias.Load(column + 7) : 0f);
        }
    }
}
