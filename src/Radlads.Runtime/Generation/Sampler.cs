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
/// Reproducible: the random numbers come from <see cref="Xoshiro256StarStar"/>; top-k and top-p rank tokens by (logit descending,
/// id ascending), a total order, so the kept set is unique (ties go to the lower id), and the kept tokens are walked in an order
/// fixed by this code (library sorts only ever see distinct keys, so their algorithm cannot change it); every non-greedy call
/// consumes exactly one uniform double. Probabilities use <see cref="Math.Exp(double)"/>, whose last bit may differ between C
/// runtimes; a draw can only change if the uniform
/// number lands within about 1e-16 of a boundary between two tokens.
/// </para>
/// <para>
/// Work buffers are held by the instance and grow to the largest vocabulary seen, so after the first call sampling does
/// not allocate. An instance is therefore not thread-safe; use one per generation stream.
/// </para>
/// </remarks>
public sealed class Sampler
{
    // Below this many keys, selection sorts instead of partitioning.
    private const int SmallSelection = 32;

    // Top-k up to this size keeps a bounded heap while scanning the logits (most tokens fail one comparison); above it, quickselect.
    private const int HeapTopKLimit = 4096;

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

        var work = Prepare(logits[..allowedVocabulary], history);
        if (_options.Temperature == 0f)
            return ArgMax(work);

        var keys = Filter(work, out var total);
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

    /// <summary>
    /// For tests: the ids that a non-greedy <see cref="Sample"/> could draw (weight &gt; 0) with their probabilities,
    /// ordered by id. Does not touch the random number generator.
    /// </summary>
    internal (int Id, double Probability)[] Distribution(ReadOnlySpan<float> logits, int allowedVocabulary, ReadOnlySpan<int> history)
    {
        var keys = Filter(Prepare(logits[..allowedVocabulary], history), out var total);
        var result = new List<(int, double)>();
        foreach (var key in keys)
        {
            if (_weights[IdOf(key)] > 0)
                result.Add((IdOf(key), _weights[IdOf(key)] / total));
        }

        return [.. result.OrderBy(t => t.Item1)];
    }

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

    /// <summary>
    /// Top-k, softmax weights (into <see cref="_weights"/>), top-p and min-p: returns the keys of the tokens left and the
    /// sum of their weights.
    /// </summary>
    private Span<ulong> Filter(ReadOnlySpan<float> work, out double total)
    {
        // Candidates: every id with a finite logit (-Infinity is banned and never drawn), or the best TopK of them.
        var topK = _options.TopK;
        var keys = _keys.AsSpan();
        var count = topK > 0 && topK <= HeapTopKLimit ? SelectTopKByHeap(work, topK, keys) : AllFinite(work, keys);
        keys = keys[..count];
        if (topK > HeapTopKLimit && topK < count)
        {
            SelectSmallest(keys, topK);
            keys = keys[..topK];
        }

        // Softmax weights relative to the top token (whose weight is exactly 1), in double: (l - max) / T cannot overflow to NaN.
        var max = TensorPrimitives.Max(work); // finite: CheckFinite ruled out NaN, +Infinity and all -Infinity
        var invT = 1.0 / _options.Temperature;
        total = 0;
        foreach (var key in keys)
        {
            var id = IdOf(key);
            var w = Math.Exp(((double)work[id] - max) * invT);
            _weights[id] = w;
            total += w;
        }

        var candidates = keys.Length;
        if (_options.TopP < 1f)
            keys = keys[..SelectNucleus(keys, _options.TopP * total)];

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

        if (keys.Length != candidates)
        {
            total = 0;
            foreach (var key in keys)
                total += _weights[IdOf(key)];
        }

        return keys;
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

    private static int AllFinite(ReadOnlySpan<float> logits, Span<ulong> keys)
    {
        var count = 0;
        for (var id = 0; id < logits.Length; id++)
        {
            var l = logits[id];
            if (l != float.NegativeInfinity)
                keys[count++] = Key(l, id);
        }

        return count;
    }

    /// <summary>
    /// The keys of the (up to) <paramref name="k"/> best finite logits, as a max-heap of keys in <paramref name="heap"/>[..result]:
    /// the root is the worst kept token, so a token that does not beat it costs one comparison.
    /// </summary>
    private static int SelectTopKByHeap(ReadOnlySpan<float> logits, int k, Span<ulong> heap)
    {
        var size = 0;
        var worst = float.NegativeInfinity; // the root's logit once the heap is full
        for (var id = 0; id < logits.Length; id++)
        {
            var l = logits[id];
            if (l < worst || l == float.NegativeInfinity)
                continue; // cannot beat the root (ties on the logit still compare by id below)
            var key = Key(l, id);
            if (size < k)
            {
                // Sift up.
                var i = size++;
                while (i > 0)
                {
                    var parent = (i - 1) >> 1;
                    if (heap[parent] >= key)
                        break;
                    heap[i] = heap[parent];
                    i = parent;
                }

                heap[i] = key;
            }
            else if (key < heap[0])
            {
                // Replace the root and sift down.
                var i = 0;
                while (true)
                {
                    var child = (2 * i) + 1;
                    if (child >= size)
                        break;
                    if (child + 1 < size && heap[child + 1] > heap[child])
                        child++;
                    if (heap[child] <= key)
                        break;
                    heap[i] = heap[child];
                    i = child;
                }

                heap[i] = key;
            }
            else
            {
                continue;
            }

            if (size == k)
                worst = logits[IdOf(heap[0])];
        }

        return size;
    }

    private static void CheckFinite(ReadOnlySpan<float> logits)
    {
        // Max is NaN if any logit is NaN, +Infinity if any is, -Infinity if all are: one vectorised pass in the normal case.
        if (float.IsFinite(TensorPrimitives.Max(logits)))
            return;
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

    /// <summary>The lowest id holding the largest logit (-0 and +0 tie).</summary>
    private static int ArgMax(ReadOnlySpan<float> logits)
    {
        var max = TensorPrimitives.Max(logits);
        for (var id = 0; ; id++)
        {
            if (logits[id] == max)
                return id;
        }
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
    /// Top-p without sorting: a quickselect that tracks probability mass. Rearranges <paramref name="keys"/> so that its first
    /// m keys are the m best (in no particular order), for the smallest m whose weights sum to at least <paramref name="target"/>,
    /// and returns m (at least 1; all keys if rounding keeps the sum short). Expected O(n), worst case O(n log n) via the same
    /// fall-back to sorting as <see cref="SelectSmallest"/>.
    /// </summary>
    private int SelectNucleus(Span<ulong> keys, double target)
    {
        var weights = _weights;
        int lo = 0, hi = keys.Length - 1;
        double mass = 0; // of keys[..lo], all in the nucleus
        var rounds = 2 * (32 - int.LeadingZeroCount(keys.Length)) + 8;
        while (lo <= hi)
        {
            if (hi - lo < SmallSelection || --rounds < 0)
            {
                var range = keys[lo..(hi + 1)];
                range.Sort();
                for (var i = lo; i <= hi; i++)
                {
                    mass += weights[IdOf(keys[i])];
                    if (mass >= target)
                        return i + 1;
                }

                return hi + 1;
            }

            var store = Partition(keys, lo, hi, out var pivot);
            double left = 0;
            for (var i = lo; i < store; i++)
                left += weights[IdOf(keys[i])];
            if (mass + left >= target)
            {
                hi = store - 1; // the nucleus ends before the pivot
                continue;
            }

            mass += left + weights[IdOf(pivot)];
            if (mass >= target)
                return store + 1;
            lo = store + 1;
        }

        return lo;
    }

    /// <summary>
    /// Lomuto partition of a[lo..hi] around the median of a[lo], a[mid], a[hi]: returns the pivot's final index p, with
    /// a[lo..p) &lt; a[p] &lt; a(p..hi].
    /// </summary>
    private static int Partition(Span<ulong> a, int lo, int hi, out ulong pivot)
    {
        var mid = lo + ((hi - lo) >> 1);
        if (a[mid] < a[lo])
            (a[mid], a[lo]) = (a[lo], a[mid]);
        if (a[hi] < a[lo])
            (a[hi], a[lo]) = (a[lo], a[hi]);
        if (a[mid] < a[hi])
            (a[mid], a[hi]) = (a[hi], a[mid]);
        pivot = a[hi];
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
        return store;
    }

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

            var store = Partition(a, lo, hi, out _);
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
