using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Radlads.Checkpoints;

/// <summary>
/// bfloat16: the upper 16 bits of an IEEE fp32. Widening is exact (a shift); narrowing rounds to nearest even.
/// </summary>
public static class Bf16
{
    /// <summary>The fp32 value of one bf16 bit pattern: <c>(uint)bits &lt;&lt; 16</c> reinterpreted.</summary>
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>
    /// Widens <paramref name="source"/> into the first <c>source.Length</c> elements of <paramref name="destination"/>.
    /// The spans must not overlap.
    /// </summary>
    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length)
        {
            throw new ArgumentException(
                $"destination has {destination.Length} elements, source has {source.Length}", nameof(destination));
        }

        ref var src = ref MemoryMarshal.GetReference(source);
        ref var dst = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
        var n = source.Length;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var (lower, upper) = Vector256.Widen(Vector256.LoadUnsafe(ref src, (nuint)i));
                Vector256.ShiftLeft(lower, 16).StoreUnsafe(ref dst, (nuint)i);
                Vector256.ShiftLeft(upper, 16).StoreUnsafe(ref dst, (nuint)(i + Vector256<uint>.Count));
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= n - Vector128<ushort>.Count; i += Vector128<ushort>.Count)
            {
                var (lower, upper) = Vector128.Widen(Vector128.LoadUnsafe(ref src, (nuint)i));
                Vector128.ShiftLeft(lower, 16).StoreUnsafe(ref dst, (nuint)i);
                Vector128.ShiftLeft(upper, 16).StoreUnsafe(ref dst, (nuint)(i + Vector128<uint>.Count));
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref dst, i) = (uint)Unsafe.Add(ref src, i) << 16;
        }
    }

    /// <summary>
    /// The nearest bf16 (ties to even); values beyond the bf16 range become ±infinity and NaN stays NaN
    /// (the quiet NaN of the same sign, 0x7FC0 or 0xFFC0).
    /// </summary>
    public static ushort FromSingle(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)(((bits >> 16) & 0x8000) | 0x7FC0);
        }

        bits += 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }

    /// <summary>Narrows every element with <see cref="FromSingle(float)"/>.</summary>
    public static void FromSingle(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length)
        {
            throw new ArgumentException(
                $"destination has {destination.Length} elements, source has {source.Length}", nameof(destination));
        }

        for (var i = 0; i < source.Length; i++)
        {
            destination[i] = FromSingle(source[i]);
        }
    }
}
