namespace Radlads.Generation;

/// <summary>
/// How the next token is chosen. Temperature 0 means greedy (argmax).
/// Order of application: repetition penalty → temperature → top-k → top-p → min-p → draw.
/// </summary>
public sealed record SamplingOptions
{
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the K most likely tokens; 0 disables.</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of tokens whose probability sums to at least P; 1 disables.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Drop tokens whose probability is below MinP × the top probability; 0 disables.</summary>
    public float MinP { get; init; }

    /// <summary>CTRL-style penalty on tokens seen in the last <see cref="RepetitionWindow"/> tokens; 1 disables.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    public int RepetitionWindow { get; init; } = 64;

    /// <summary>Seed for reproducible draws; null picks one at random.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Throws a <see cref="RadladsException"/> naming the first invalid option.</summary>
    public void Validate() => throw new NotImplementedException();
}
