using System.Globalization;

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
    /// <remarks>Options are named by their command-line spelling, e.g. "--top-p must be in (0, 1], got 1.5".</remarks>
    public void Validate()
    {
        if (!float.IsFinite(Temperature) || Temperature < 0f)
            throw Invalid("--temperature", "finite and >= 0", Temperature);
        if (TopK < 0)
            throw Invalid("--top-k", ">= 0 (0 disables)", TopK);
        if (!(TopP > 0f && TopP <= 1f))
            throw Invalid("--top-p", "in (0, 1]", TopP);
        if (!(MinP >= 0f && MinP < 1f))
            throw Invalid("--min-p", "in [0, 1)", MinP);
        if (!float.IsFinite(RepetitionPenalty) || RepetitionPenalty <= 0f)
            throw Invalid("--repetition-penalty", "finite and > 0 (1 disables)", RepetitionPenalty);
        if (RepetitionWindow < 0)
            throw Invalid("--repetition-window", ">= 0", RepetitionWindow);
    }

    private static RadladsException Invalid<T>(string option, string range, T value) where T : IFormattable
    {
        var shown = value.ToString(null, CultureInfo.InvariantCulture);
        return new RadladsException($"{option} must be {range}, got {shown}");
    }
}
