using System.Numerics.Tensors;

namespace Radlads.Generation;

/// <summary>Chooses the next token from a row of logits.</summary>
/// <remarks>
/// <para>
/// Pipeline: repetition penalty (CTRL rule: for each distinct id among the last <see cref="SamplingOptions.RepetitionWindow"/>
/// history tokens, a positive logit is divided by the penalty, any other multiplied by it) → temperature 0 is greedy
/// (argmax, lowest id on ties) → otherwise top-k on the logits → softmax of logits / T → top-p (the smallest prefix,
/// by descending probability, whose cumulative probability is at least P; at least one token) → min-p (drop tokens whose
/// probability is below MinP × the top probability) → renormalise → one draw.
/// </para>
/// <para>
/// A logit of -Infinity bans its token. NaN or +Infinity anywhere in [0, allowedVocabulary), or no finite logit at all,
/// stops the run with a <see cref="RadladsException"/>: the model is broken and its output must not be sampled.
/// </para>
/// <para>
/// Reproducible and the same on every backend: everything after the repetition penalty is <see cref="RowSampler"/>, the
/// CPU reference of <see cref="Ops.IOps.Sample"/>, whose arithmetic (<see cref="SamplingMath"/>) the GPU kernels repeat
/// bit for bit: tokens are ranked by (logit descending, id ascending), weights are a portable float64 exp turned into
/// integer units, and the draw walks the kept tokens in rank order. Every non-greedy call consumes exactly one uniform
/// double of <see cref="Xoshiro256StarStar"/>, so a seed gives the same tokens on the CPU and the GPU.
/// </para>
/// <para>
/// Work buffers are held by the instance and grow to the largest vocabulary seen, so after the first call sampling does
/// not allocate. An instance is therefore not thread-safe; use one per generation stream.
/// </para>
/// </remarks>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly Xoshiro256StarStar _rng;
    private readonly RowSampler _row = new();

    private float[] _logits = [];     // by id: the logits after the repetition penalty
    private int[] _penalisedAt = [];  // by id: the call number that last penalised it, so each distinct id is penalised once
    private int _call;

    public Sampler(SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        Seed = options.Seed ?? Xoshiro256StarStar.RandomSeed();
        _rng = new Xoshiro256StarStar(Seed);
    }

    /// <summary>The seed in use: <see cref="SamplingOptions.Seed"/>, or the one drawn at random when that is null (print it to replay a run).</summary>
    public ulong Seed { get; }

    /// <summary>
    /// True when the repetition penalty is on: it needs the logits on the host (a GPU backend then downloads them);
    /// otherwise <see cref="NextRow"/> and <see cref="Ops.IOps.Sample"/> choose the token where the logits are.
    /// </summary>
    public bool NeedsLogits => _options.RepetitionPenalty != 1f && _options.RepetitionWindow > 0;

    /// <summary>
    /// The parameters of the next draw for <see cref="Ops.IOps.Sample"/>: consumes one uniform number unless greedy,
    /// exactly as <see cref="Sample"/> does, so both give the same sequence for a seed.
    /// </summary>
    public Ops.SampleRow NextRow() => _options.Temperature == 0f
        ? Ops.SampleRow.Greedy
        : new Ops.SampleRow(_options.Temperature, _options.TopK, _options.TopP, _options.MinP, _rng.NextDouble());

    /// <summary>
    /// Picks a token id in [0, <paramref name="allowedVocabulary"/>) from <paramref name="logits"/> (length ≥ allowedVocabulary;
    /// ids at or above it, e.g. padding rows of the embedding, are never chosen).
    /// <paramref name="history"/> is the sequence so far (prompt and generated), used by the repetition penalty.
    /// </summary>
    public int Sample(ReadOnlySpan<float> logits, int allowedVocabulary, ReadOnlySpan<int> history)
    {
        if (allowedVocabulary <= 0 || allowedVocabulary > logits.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(allowedVocabulary), allowedVocabulary,
                $"must be in [1, {logits.Length}] (the length of the logits row)");
        }

        var work = Prepare(logits[..allowedVocabulary], history);
        return _row.Sample(work, NextRow());
    }

    /// <summary>
    /// For tests: the ids that a non-greedy <see cref="Sample"/> could draw (units &gt; 0) with their probabilities,
    /// ordered by id. Does not touch the random number generator.
    /// </summary>
    internal (int Id, double Probability)[] Distribution(ReadOnlySpan<float> logits, int allowedVocabulary, ReadOnlySpan<int> history) =>
        _row.Distribution(Prepare(logits[..allowedVocabulary], history),
            new Ops.SampleRow(_options.Temperature, _options.TopK, _options.TopP, _options.MinP, 0.0));

    /// <summary>Copies the allowed logits into the work buffer, checks them and applies the repetition penalty.</summary>
    private Span<float> Prepare(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        EnsureCapacity(logits.Length);
        var work = _logits.AsSpan(0, logits.Length);
        logits.CopyTo(work);
        CheckFinite(work);
        ApplyRepetitionPenalty(work, history);
        return work;
    }

    private void EnsureCapacity(int n)
    {
        if (_logits.Length >= n)
            return;
        _logits = new float[n];
        _penalisedAt = new int[n];
        _call = 0;
    }

    /// <summary>
    /// Throws unless every logit is finite or −Infinity and at least one is finite; names the lowest bad id (and the row
    /// when there are several).
    /// </summary>
    internal static void CheckFinite(ReadOnlySpan<float> logits, int row = 0, int rows = 1)
    {
        // Max is NaN if any logit is NaN, +Infinity if any is, -Infinity if all are: one vectorised pass in the normal case.
        if (float.IsFinite(TensorPrimitives.Max(logits)))
        {
            return;
        }

        var anyFinite = false;
        for (var id = 0; id < logits.Length; id++)
        {
            var l = logits[id];
            if (float.IsFinite(l))
            {
                anyFinite = true;
            }
            else if (l != float.NegativeInfinity)
            {
                throw Ops.SampleChecks.NonFinite(row, rows, id, float.IsNaN(l));
            }
        }

        if (!anyFinite)
        {
            throw Ops.SampleChecks.AllBanned(row, rows, logits.Length);
        }
    }

    private void ApplyRepetitionPenalty(Span<float> logits, ReadOnlySpan<int> history)
    {
        var penalty = _options.RepetitionPenalty;
        var window = _options.RepetitionWindow;
        if (penalty == 1f || window == 0 || history.IsEmpty)
            return;

        if (++_call == int.MaxValue)
        {
            Array.Clear(_penalisedAt);
            _call = 1;
        }

        foreach (var id in history[Math.Max(0, history.Length - window)..])
        {
            if ((uint)id >= (uint)logits.Length || _penalisedAt[id] == _call)
                continue;
            _penalisedAt[id] = _call;
            var l = logits[id];
            var penalised = l > 0f ? l / penalty : l * penalty;
            // A tiny penalty can push a finite logit past float range; keep it finite so it is not mistaken for a ban.
            logits[id] = float.IsNegativeInfinity(l) ? l : Math.Clamp(penalised, float.MinValue, float.MaxValue);
        }
    }
}
