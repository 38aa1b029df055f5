using ILGPU;

namespace Radlads.Ilgpu.Kernels;

/// <summary>
/// A weight or parameter vector as a kernel sees it: the same device bytes viewed as fp32 and as 16-bit words,
/// and the stored dtype, which is the same for the whole launch (so the branch in <see cref="Load"/> is uniform).
/// </summary>
public struct WeightView
{
    public ArrayView<float> F;
    public ArrayView<ushort> H;
    public int DType;

    /// <summary>Element <paramref name="i"/> as fp32: bf16 is the high half of an fp32, f16 is widened exactly.</summary>
    public readonly float Load(long i)
    {
        if (DType == (int)Checkpoints.DType.BF16)
        {
            return Interop.IntAsFloat((uint)H[i] << 16);
        }

        if (DType == (int)Checkpoints.DType.F16)
        {
            return KernelMath.HalfToSingle(H[i]);
        }

        return F[i];
    }
}

/// <summary>Device helpers shared by the kernels. Everything here runs inside kernels (ILGPU inlines it).</summary>
public static class KernelMath
{
    /// <summary>IEEE binary16 bits to fp32, exactly (subnormals, infinities and NaN included), with integer ops only.</summary>
    public static float HalfToSingle(uint h)
    {
        uint sign = (h & 0x8000u) << 16;
        uint exponent = (h >> 10) & 0x1fu;
        uint mantissa = h & 0x3ffu;
        if (exponent == 0x1fu)
        {
            return Interop.IntAsFloat(sign | 0x7f800000u | (mantissa << 13));
        }

        if (exponent != 0)
        {
            return Interop.IntAsFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
        }

        // Zero or subnormal: mantissa · 2^−24, exact in fp32.
        float value = mantissa * 5.9604644775390625e-8f;
        return sign != 0 ? -value : value;
    }

    /// <summary>
    /// The rotate-half RoPE of the pair (a, b) by the angle with cosine c and sine s: (a·c − b·s, b·c + a·s). Every RoPE
    /// kernel calls it, so the fused and the plain kernels compile the same arithmetic and give the same bits.
    /// </summary>
    public static (float First, float Second) RopePair(float a, float b, float c, float s) => ((a * c) - (b * s), (b * c) + (a * s));

    /// <summary>σ(x) = 1 / (1 + e^−x).</summary>
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    /// <summary>
    /// tanh from exp: ILGPU lowers MathF.Tanh to PTX tanh.approx.f32 (about 11 bits), too coarse for the op tolerances.
    /// Small |x| uses the Taylor series, where (1 − e^−2|x|) would cancel.
    /// </summary>
    public static float Tanh(float x)
    {
        float a = MathF.Abs(x);
        if (a < 0.0625f)
        {
            float x2 = x * x;
            return x * (1f + (x2 * (-1f / 3f + (x2 * ((2f / 15f) + (x2 * (-17f / 315f)))))));
        }

        float e = MathF.Exp(-2f * a);
        float t = (1f - e) / (1f + e);
        return x < 0 ? -t : t;
    }

    /// <summary>Sum over the warp; every lane gets the total.</summary>
    public static float WarpSum(float value)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset /= 2)
        {
            value += Warp.ShuffleXor(value, offset);
        }

        return value;
    }

    /// <summary>Maximum over the warp; every lane gets it.</summary>
    public static float WarpMax(float value)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset /= 2)
        {
            value = MathF.Max(value, Warp.ShuffleXor(value, offset));
        }

        return value;
    }

    /// <summary>
    /// Sum over the group; every thread gets the total. <paramref name="scratch"/> is shared memory of at least one
    /// float per warp. Every thread of the group must call it (it has barriers).
    /// </summary>
    public static float GroupSum(float value, ArrayView<float> scratch)
    {
        value = WarpSum(value);
        if (Warp.IsFirstLane)
        {
            scratch[Warp.WarpIdx] = value;
        }

        Group.Barrier();
        float total = 0f;
        int warps = Group.DimX / Warp.WarpSize;
        for (int w = 0; w < warps; w++)
        {
            total += scratch[w];
        }

        Group.Barrier();
        return total;
    }

    /// <summary>Maximum over the group, as <see cref="GroupSum"/>.</summary>
    public static float GroupMax(float value, ArrayView<float> scratch)
    {
        value = WarpMax(value);
        if (Warp.IsFirstLane)
        {
            scratch[Warp.WarpIdx] = value;
        }

        Group.Barrier();
        float top = float.NegativeInfinity;
        int warps = Group.DimX / Warp.WarpSize;
        for (int w = 0; w < warps; w++)
        {
            top = MathF.Max(top, scratch[w]);
        }

        Group.Barrier();
        return top;
    }
}
