using System.Text;
using Radlads.Generation;

namespace Radlads.Conversion;

/// <summary>
/// One random stream per tensor, derived from the conversion seed and the tensor's name only: a tensor's values
/// do not depend on which other tensors exist, on their ranks or on the order they are generated in, so tensors
/// can be generated in parallel and a changed rank of one LoRA leaves every other tensor as it was.
/// </summary>
public static class TensorRng
{
    /// <summary>xoshiro256** seeded with <c>seed ⊕ SplitMix64(FNV-1a-64(UTF-8 name))</c>.</summary>
    public static Xoshiro256StarStar For(ulong seed, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ulong hash = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            hash = (hash ^ b) * 0x100000001B3UL;
        }

        return new Xoshiro256StarStar(seed ^ Xoshiro256StarStar.SplitMix64(ref hash));
    }
}

/// <summary>Standard normal samples by the Box–Muller transform, both outputs of each pair used, in float64.</summary>
public sealed class GaussianSource(Xoshiro256StarStar rng)
{
    private double spare;
    private bool hasSpare;

    public double Next()
    {
        if (hasSpare)
        {
            hasSpare = false;
            return spare;
        }

        double u1 = 1.0 - rng.NextDouble(); // (0, 1]: the logarithm stays finite
        double u2 = rng.NextDouble();
        double radius = Math.Sqrt(-2.0 * Math.Log(u1));
        double angle = 2.0 * Math.PI * u2;
        spare = radius * Math.Sin(angle);
        hasSpare = true;
        return radius * Math.Cos(angle);
    }
}
