namespace Radlads.Generation;

/// <summary>What to generate and when to stop.</summary>
public sealed record GenerationOptions
{
    /// <summary>Upper bound on generated tokens.</summary>
    public int MaxTokens { get; init; } = 256;

    public SamplingOptions Sampling { get; init; } = new();

    /// <summary>Generation ends when the text contains one of these; the stop string itself is not returned.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Generation ends when one of these ids is sampled (it is not returned as text).</summary>
    public IReadOnlyCollection<int> StopTokens { get; init; } = [];

    /// <summary>Throws a <see cref="RadladsException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (MaxTokens < 0)
        {
            throw new RadladsException($"--max-tokens must be ≥ 0, got {MaxTokens}");
        }

        if (StopStrings.Any(string.IsNullOrEmpty))
        {
            throw new RadladsException("--stop strings must not be empty");
        }

        Sampling.Validate();
    }
}
