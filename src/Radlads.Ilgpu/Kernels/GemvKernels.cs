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
    /// <summary>acc + Σ (the weights in <paramref name="q"/>) · (the activations of chunk <paramref name="c"/> of x).</summary>
    float Dot(Words4 q, ArrayView<Floats4> x, long c, float acc);
}

/// <summary>bf16: 8 weights per 16 bytes; a bf16 is the high half of an fp32.</summary>
public struct Bf16Words : IWeightWords
{
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
}

/// <summary>f16: 8 weights per 16 bytes, widened exactly with integer ops.</summary>
public struct F16Words : IWeightWords
{
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
}

/// <summary>f32: 4 weights per 16 bytes.</summary>
public struct F32Words : IWeightWords
{
    public readonly float Dot(Words4 q, ArrayView<Floats4> x, long c, float acc)
    {
        var a = x[c];
        acc += Interop.IntAsFloat(q.X) * a.X;
        acc += Interop.IntAsFloat(q.Y) * a.Y;
        acc += Interop.IntAsFloat(q.Z) * a.Z;
        acc += Interop.IntAsFloat(q.W) * a.W;
        return acc;
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
        where TW : struct, IWeightWords
    {
        var partial = SharedMemory.Allocate<float>(GroupedKernels.MaxWarpsPerGroup);
        var w = weight.AsAligned16();
        var xs = x.AsAligned16();
        var words = default(TW);
        int warps = Group.DimX / Warp.WarpSize;
        int rowsPerGroup = warps / warpsPerRow;
        int part = Warp.WarpIdx % warpsPerRow;
        int row = (Grid.IdxX * rowsPerGroup) + (Warp.WarpIdx / warpsPerRow);
        bool valid = row < m;
        long o = (long)(valid ? row : 0) * chunks;
        int stride = Warp.WarpSize * warpsPerRow;
        int c = (part * Warp.WarpSize) + Warp.LaneIdx;
        float acc = 0f;
        if (valid)
        {
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
        }

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
}
