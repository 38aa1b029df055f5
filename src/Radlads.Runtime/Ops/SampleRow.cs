namespace Radlads.Ops;

/// <summary>
/// The sampling parameters of one row of <see cref="IOps.Sample"/>: temperature (0 = greedy), top-k (0 disables),
/// top-p (1 disables), min-p (0 disables) and the uniform number in [0, 1) that makes the draw, taken on the host from
/// the generation's <see cref="Generation.Xoshiro256StarStar"/> so that every backend picks the same token.
/// </summary>
public readonly record struct SampleRow(float Temperature, int TopK, float TopP, float MinP, double Uniform)
{
    /// <summary>Greedy: the lowest id holding the largest logit.</summary>
    public static SampleRow Greedy => new(0f, 0, 1f, 0f, 0.0);
}
