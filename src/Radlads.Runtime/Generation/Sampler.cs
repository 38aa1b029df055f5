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
/// Reproducible: the random numbers come from <see cref="Xoshiro256StarStar"/>, candidates are ordered by (logit descending,
/// id ascending), a total order, and every non-greedy call consumes exactly one uniform double. Probabilities use
/// <see cref="Math.Exp(double)"/>, whose last bit may differ between C runtimes; a draw can only change if the uniform
/// number lands within about 1e-16 of a boundary between two tokens.
/// </para>
/// <para>
/// Work buffers are held by the instance and grow to the largest vocabulary seen, so after the first call sampling does
/// not allocate. An instance is therefore not thread-safe; use one per generation stream.
/// </para>
/// </remarks>
public sealed class Sampler
{
    // Top-p sorts candidates lazily: select and sort this many first, then four times more each round, until the nucleus is complete.
    private const int FirstNucleusChunk = 64;

    private readonly SamplingOptions _options;
    private readonly Xoshiro256StarStar _rng;

    private float[] _logits = [];     // by id: the logits after the repetition penalty
    private double[] _weights = [];   // by id: exp((logit - max) / T), filled for the candidates only
    private int[] _penalisedAt = [];  // by id: the call number that last penalised it, so each distinct id is penalised once
    private ulong[] _keys = [];       // candidates, see Key
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

        var n = allowedVocabulary;
        EnsureCapacity(n);
        var work = _logits.AsSpan(0, n);
        logits[..n].CopyTo(work);
        CheckFinite(work);
        ApplyRepetitionPenalty(work, history);

        if (_options.Temperature == 0f)
            return ArgMax(work);

        // Candidates: every id with a finite logit. -Infinity is banned and never drawn.
        var keys = _keys.AsSpan();
        var count = 0;
        var max = float.NegativeInfinity;
        for (var id = 0; id < n; id++)
        {
            var l = work[id];
            if (l == float.NegativeInfinity)
                continue;
            keys[count++] = Key(l, id);
            if (l > max)
                max = l;
        }

        keys = keys[..count];
        var sorted = 0; // keys[..sorted] are in final order and hold the smallest keys
        var topK = _options.TopK;
        if (topK > 0 && topK < count)
        {
            SelectSmallest(keys, topK);
            keys = keys[..topK];
        }

        // Softmax weights relative to the top token (whose weight is exactly 1), in double: (l - max) / T cannot overflow to NaN.
        var invT = 1.0 / _options.Temperature;
        double total = 0;
        foreach (var key in keys)
        {
            var id = IdOf(key);
            var w = Math.Exp(((double)work[id] - max) * invT);
            _weights[id] = w;
            total += w;
        }

        if (_options.TopP < 1f)
        {
            var target = _options.TopP * total;
            double cumulative = 0;
            var chunk = FirstNucleusChunk;
            var kept = keys.Length;
            while (sorted < keys.Length)
            {
                var end = Math.Min(keys.Length, sorted + chunk);
                var rest = keys[sorted..];
                if (end < keys.Length)
                    SelectSmallest(rest, end - sorted);
                rest[..(end - sorted)].Sort();
                for (var i = sorted; i < end; i++)
                {
                    cumulative += _weights[IdOf(keys[i])];
                    if (cumulative >= target)
                    {
                        kept = i + 1;
                        break;
                    }
                }

                sorted = end;
                if (kept < keys.Length || cumulative >= target)
                    break;
                chunk *= 4;
            }

            keys = keys[..kept];
        }

        var minP = (double)_options.MinP;
        if (minP > 0)
        {
            // The top token has weight 1, so "p < MinP × p_max" is "weight < MinP". Compaction keeps the order.
            var m = 0;
            foreach (var key in keys)
            {
                if (_weights[IdOf(key)] >= minP)
                    keys[m++] = key;
            }

            keys = keys[..m];
        }

        total = 0;
        foreach (var key in keys)
            total += _weights[IdOf(key)];

        var u = _rng.NextDouble() * total;
        double sum = 0;
        var chosen = -1;
        foreach (var key in keys)
        {
            var id = IdOf(key);
            var w = _weights[id];
            if (w <= 0)
                continue;
            chosen = id;
            sum += w;
            if (u < sum)
                return id;
        }

        // Only reached when rounding puts u at the total: the last token with weight.
        return chosen;
    }

    private void EnsureCapacity(int n)
    {
        if (_logits.Length >= n)
            return;
        _logits = new float[n];
        _weights = new double[n];
        _penalisedAt = new int[n];
        _keys = new ulong[n];
        _call = 0;
    }

    private static void CheckFinite(ReadOnlySpan<float> logits)
    {
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
                throw new RadladsException(
                    $"The model produced non-finite logits ({(float.IsNaN(l) ? "NaN" : "+Infinity")} for token {id}); stopping instead of sampling from them");
            }
        }

        if (!anyFinite)
            throw new RadladsException($"The model produced non-finite logits (all {logits.Length} are -Infinity); no token can be chosen");
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

    private static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var id = 1; id < logits.Length; id++)
        {
            if (logits[id] > logits[best])
                best = id;
        }

        return best;
    }

    /// <summary>
    /// A sort key whose ascending order is (logit descending, id ascending): the high 32 bits are the logit's bits mapped so that
    /// larger floats give smaller numbers, the low 32 bits the id. Keys are distinct, so any correct sort gives the same order.
    /// </summary>
    private static ulong Key(float logit, int id)
    {
        var bits = BitConverter.SingleToUInt32Bits(logit == 0f ? 0f : logit); // -0 and +0 tie
        var ascending = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
        return ((ulong)~ascending << 32) | (uint)id;
    }

    private static int IdOf(ulong key) => (int)(uint)key;

    /// <summary>
    /// Quickselect: rearranges <paramref name="a"/> so that its <paramref name="m"/> smallest elements come first, in no particular order.
    /// Median-of-three pivots; falls back to a full sort of what is left after too many rounds, so the worst case is O(n log n).
    /// Deterministic, and with distinct keys the resulting set does not depend on the algorithm.
    /// </summary>
    private static void SelectSmallest(Span<ulong> a, int m)
    {
        if (m <= 0 || m >= a.Length)
            return;
        int lo = 0, hi = a.Length - 1;
        var rounds = 2 * (32 - int.LeadingZeroCount(a.Length)) + 8;
        while (hi > lo)
        {
            if (--rounds < 0)
            {
                a[lo..(hi + 1)].Sort();
                return;
            }

            var mid = lo + ((hi - lo) >> 1);
            if (a[mid] < a[lo])
                (a[mid], a[lo]) = (a[lo], a[mid]);
            if (a[hi] < a[lo])
                (a[hi], a[lo]) = (a[lo], a[hi]);
            if (a[mid] < a[hi])
                (a[mid], a[hi]) = (a[hi], a[mid]);
            var pivot = a[hi];
            var store = lo;
            for (var i = lo; i < hi; i++)
            {
                if (a[i] < pivot)
                {
                    (a[i], a[store]) = (a[store], a[i]);
                    store++;
                }
            }

            (a[store], a[hi]) = (a[hi], a[store]);
            // a[..store] < pivot = a[store] < a[(store + 1)..]
            if (store == m || store == m - 1)
                return;
            if (store < m)
                lo = store + 1;
            else
                hi = store - 1;
        }
    }
}
