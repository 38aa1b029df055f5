namespace Radlads.Generation;

/// <summary>Chooses the next token from a row of logits.</summary>
public sealed class Sampler
{
    public Sampler(SamplingOptions options) => throw new NotImplementedException();

    /// <summary>
    /// Picks a token id in [0, <paramref name="allowedVocabulary"/>) from <paramref name="logits"/> (length ≥ allowedVocabulary;
    /// ids at or above it, e.g. padding rows of the embedding, are never chosen).
    /// <paramref name="history"/> is the sequence so far (prompt and generated), used by the repetition penalty.
    /// </summary>
    public int Sample(ReadOnlySpan<float> logits, int allowedVocabulary, ReadOnlySpan<int> history) => throw new NotImplementedException();
}
