using System.Numerics;

namespace Radlads.Generation;

/// <summary>
/// The arithmetic of a sampled draw, written so that every backend (CPU reference, CUDA kernel, ILGPU kernel) picks the
/// same token from the same logits and uniform number, bit for bit:
/// <list type="bullet">
/// <item>Tokens are ranked by <see cref="Key"/> (logit descending, id ascending): a total order, so top-k, the nucleus
/// and the draw are each "the smallest key prefix whose measure reaches a target", which a CPU quickselect and a GPU
/// radix select answer identically.</item>
/// <item>The softmax weight of a token is w = <see cref="Exp"/>((logit − max) / T) in float64 (the top token's is exactly
/// 1). <see cref="Exp"/> uses only fused multiply-adds, exact scalings and comparisons, never a math library, so it is
/// the same double everywhere (a library exp may differ in the last bit between C runtimes and GPUs).</item>
/// <item>Weights become integers, <see cref="Units"/> = ⌊w · 2^shift⌋ with shift = <see cref="UnitShift"/>(V), so that
/// the V units sum below 2^62. Every sum (totals, the nucleus mass, the cumulative mass of the draw) is a sum of
/// integers, which no summation order or parallel reduction can change. The cost: a token whose weight is below
/// 2^−shift (2^−44 of the top token's at V = 151,936) has no units and is never drawn, a change of at most
/// V · 2^−shift ≈ 9e-9 in total probability.</item>
/// </list>
/// The draw: with the kept tokens' units summing to U, r = ⌊u · U⌋ (at most U − 1) and the token is the one whose key
/// ends the smallest prefix holding more than r units. Ties of logits are broken by id (lower id first) everywhere.
/// </summary>
public static class SamplingMath
{
    // Cody–Waite split of ln 2 (fdlibm's): k · Ln2Hi is exact for |k| < 2^11.
    private const double Ln2Hi = 6.93147180369123816490e-01;
    private const double Ln2Lo = 1.90821492927058770002e-10;
    private const double Log2E = 1.4426950408889634;

    /// <summary>Below this argument <see cref="Exp"/> returns 0 (the true value, below 1e-304, has no units anyway).</summary>
    public const double ExpCutoff = -700.0;

    /// <summary>
    /// e^x for x ≤ 0 in float64, accurate to a few ulp, from operations that round the same on every IEEE-754 device:
    /// k = round(x·log2 e) (ties down, by floor and an exact comparison), r = x − k·ln 2 by two fused multiply-adds, the
    /// degree-13 Taylor polynomial of e^r by Horner's rule with fused multiply-adds (|r| ≤ 0.35: truncation error
    /// below 1e-17), times 2^k built from its bits (exact: the result stays normal above the cutoff).
    /// Returns 0 below <see cref="ExpCutoff"/> and for NaN.
    /// </summary>
    public static double Exp(double x)
    {
        if (!(x >= ExpCutoff))
        {
            return 0.0;
        }

        if (x > 0.0)
        {
            x = 0.0; // callers pass (logit − max) / T ≤ 0; clamp so the scaling below stays in range
        }

        double t = x * Log2E;
        double k = Math.Floor(t);
        if (t > k + 0.5) // t − k > 0.5, written so that no device may fuse the product t into a subtraction
        {
            k += 1.0;
        }

        double r = Math.FusedMultiplyAdd(-k, Ln2Hi, x);
        r = Math.FusedMultiplyAdd(-k, Ln2Lo, r);
        double p = 1.6059043836821613e-10;
        p = Math.FusedMultiplyAdd(p, r, 2.08767569878681e-09);
        p = Math.FusedMultiplyAdd(p, r, 2.505210838544172e-08);
        p = Math.FusedMultiplyAdd(p, r, 2.755731922398589e-07);
        p = Math.FusedMultiplyAdd(p, r, 2.7557319223985893e-06);
        p = Math.FusedMultiplyAdd(p, r, 2.48015873015873e-05);
        p = Math.FusedMultiplyAdd(p, r, 0.0001984126984126984);
        p = Math.FusedMultiplyAdd(p, r, 0.001388888888888889);
        p = Math.FusedMultiplyAdd(p, r, 0.008333333333333333);
        p = Math.FusedMultiplyAdd(p, r, 0.041666666666666664);
        p = Math.FusedMultiplyAdd(p, r, 0.16666666666666666);
        p = Math.FusedMultiplyAdd(p, r, 0.5);
        p = Math.FusedMultiplyAdd(p, r, 1.0);
        p = Math.FusedMultiplyAdd(p, r, 1.0);
        return p * BitConverter.Int64BitsToDouble((long)((int)k + 1023) << 52);
    }

    /// <summary>The softmax weight of a logit relative to the row's largest: e^((logit − max) · invT), invT = 1 / T.</summary>
    public static double Weight(float logit, float max, double inverseTemperature) =>
        Exp(((double)logit - max) * inverseTemperature);

    /// <summary>
    /// The power of two that scales weights to integer units for a row of <paramref name="vocabulary"/> logits:
    /// 62 − bit length of V, so V units of at most 2^shift each sum below 2^62.
    /// </summary>
    public static int UnitShift(int vocabulary) => 62 - (32 - BitOperations.LeadingZeroCount((uint)vocabulary));

    /// <summary>⌊weight · 2^shift⌋ (the multiplication is exact; the conversion truncates).</summary>
    public static ulong Units(double weight, int shift) =>
        (ulong)(weight * BitConverter.Int64BitsToDouble((long)(shift + 1023) << 52));

    /// <summary>
    /// A sort key whose ascending order is (logit descending, id ascending): the high 32 bits are the logit's bits mapped so
    /// that larger floats give smaller numbers (−0 and +0 tie), the low 32 bits the id. Keys of distinct ids are distinct.
    /// </summary>
    public static ulong Key(float logit, int id)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(logit == 0f ? 0f : logit);
        uint ascending = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
        return ((ulong)~ascending << 32) | (uint)id;
    }

    /// <summary>The units the nucleus must reach: ⌈P · total⌉ in float64, at most <paramref name="total"/>.</summary>
    public static ulong NucleusTarget(float topP, ulong total)
    {
        ulong target = (ulong)Math.Ceiling((double)topP * total);
        return target > total ? total : target;
    }

    /// <summary>
    /// The units the draw's prefix must reach: r + 1 with r = ⌊u · total⌋ (float64), at most total − 1, so the token drawn
    /// is the one whose prefix is the first to hold more than r units. <paramref name="total"/> ≥ 1.
    /// </summary>
    public static ulong DrawTarget(double uniform, ulong total)
    {
        ulong r = (ulong)(uniform * total);
        return (r >= total ? total - 1 : r) + 1;
    }
}
