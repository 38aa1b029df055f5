using System.Numerics.Tensors;
using Radlads.Ops;

namespace Radlads.Generation;

/// <summary>
/// The CPU reference of <see cref="IOps.Sample"/> for one row, after any repetition penalty: checks the logits, then
/// greedy (temperature 0: the lowest id holding the largest logit, −0 and +0 tie) or top-k → softmax weights → top-p →
/// min-p → one draw, with the arithmetic of <see cref="SamplingMath"/>, which the CUDA and ILGPU kernels repeat.
/// Selections use a bounded heap and quickselect; with a total order on keys and integer masses their results (sets and
/// the token drawn) do not depend on the algorithm, only the speed does. Holds work buffers: not thread-safe.
/// </summary>
internal sealed class RowSampler
{
    // Below this many keys, selection sorts instead of partitioning.
    private const int SmallSelection = 32;

    // Top-k up to this size keeps a bounded heap while scanning the logits (most tokens fail one comparison); above it, quickselect.
    private const int HeapTopKLimit = 4096;

    private double[] _weights = []; // by id: exp((logit - max) / T), filled for the candidates only
    private ulong[] _units = [];    // by id: SamplingMath.Units of the weight
    private ulong[] _keys = [];     // candidates, see SamplingMath.Key

    /// <summary>Picks one id of <paramref name="logits"/> (the allowed vocabulary only) for <paramref name="row"/>; the row index names it in errors.</summary>
    public int Sample(ReadOnlySpan<float> logits, SampleRow row, int rowIndex = 0, int rows = 1)
    {
        Sampler.CheckFinite(logits, rowIndex, rows);
        if (row.Temperature == 0f)
        {
            return ArgMax(logits);
        }

        var keys = Filter(logits, row, out var total);
        // The token whose key ends the smallest prefix holding more than r = ⌊u · total⌋ units.
        int m = SelectNucleus(keys, SamplingMath.DrawTarget(row.Uniform, total));
        ulong last = 0;
        foreach (var key in keys[..m])
        {
            last = Math.Max(last, key);
        }

        return IdOf(last);
    }

    /// <summary>The ids a non-greedy draw could pick (units &gt; 0) and their probabilities, ordered by id.</summary>
    public (int Id, double Probability)[] Distribution(ReadOnlySpan<float> logits, SampleRow row)
    {
        Sampler.CheckFinite(logits);
        var keys = Filter(logits, row, out var total);
        var result = new List<(int, double)>();
        foreach (var key in keys)
        {
            var units = _units[IdOf(key)];
            if (units > 0)
            {
                result.Add((IdOf(key), (double)units / total));
            }
        }

        return [.. result.OrderBy(t => t.Item1)];
    }

    /// <summary>
    /// Top-k, softmax weights and units, top-p and min-p: returns the keys of the tokens left (in no particular order)
    /// and the sum of their units (≥ 1: the top token always stays and has 2^shift units).
    /// </summary>
    private Span<ulong> Filter(ReadOnlySpan<float> logits, SampleRow row, out ulong total)
    {
        EnsureCapacity(logits.Length);

        // Candidates: every id with a finite logit (-Infinity is banned and never drawn), or the best TopK of them.
        var topK = row.TopK;
        var keys = _keys.AsSpan();
        var count = topK > 0 && topK <= HeapTopKLimit ? SelectTopKByHeap(logits, topK, keys) : AllFinite(logits, keys);
        keys = keys[..count];
        if (topK > HeapTopKLimit && topK < count)
        {
            SelectSmallest(keys, topK);
            keys = keys[..topK];
        }

        // Weights relative to the top token (whose weight is exactly 1), in double: (l - max) / T cannot overflow to NaN.
        var max = TensorPrimitives.Max(logits); // finite: CheckFinite ruled out NaN, +Infinity and all -Infinity
        var invT = 1.0 / row.Temperature;
        var shift = SamplingMath.UnitShift(logits.Length);
        total = 0;
        foreach (var key in keys)
        {
            var id = IdOf(key);
            var w = SamplingMath.Weight(logits[id], max, invT);
            _weights[id] = w;
            _units[id] = SamplingMath.Units(w, shift);
            total += _units[id];
        }

        if (row.TopP < 1f)
        {
            keys = keys[..SelectNucleus(keys, SamplingMath.NucleusTarget(row.TopP, total))];
        }

        var minP = (double)row.MinP;
        if (minP > 0)
        {
            // The top token has weight 1, so "p < MinP × p_max" is "weight < MinP". Compaction keeps the set.
            var m = 0;
            foreach (var key in keys)
            {
                if (_weights[IdOf(key)] >= minP)
                {
                    keys[m++] = key;
                }
            }

            keys = keys[..m];
        }

        total = 0;
        foreach (var key in keys)
        {
            total += _units[IdOf(key)];
        }

        return keys;
    }

    private void EnsureCapacity(int n)
    {
        if (_weights.Length >= n)
        {
            return;
        }

        _weights = new double[n];
        _units = new ulong[n];
        _keys = new ulong[n];
    }

    private static ulong Key(float logit, int id) => SamplingMath.Key(logit, id);

    private static int IdOf(ulong key) => (int)(uint)key;

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
    /// Top-p without sorting: a quickselect that tracks probability mass. Rearranges <paramref name="keys"/> so that its first
    /// m keys are the m best (in no particular order), for the smallest m whose units sum to at least <paramref name="target"/>,
    /// and returns m (at least 1; all keys if the target exceeds their sum). Integer sums: the answer does not depend on the
    /// order the keys are visited in. Expected O(n), worst case O(n log n) via the same
    /// fall-back to sorting as <see cref="SelectSmallest"/>.
    /// </summary>
    private int SelectNucleus(Span<ulong> keys, ulong target)
    {
        var units = _units;
        int lo = 0, hi = keys.Length - 1;
        ulong mass = 0; // of keys[..lo], all in the nucleus
        var rounds = 2 * (32 - int.LeadingZeroCount(keys.Length)) + 8;
        while (lo <= hi)
        {
            if (hi - lo < SmallSelection || --rounds < 0)
            {
                var range = keys[lo..(hi + 1)];
                range.Sort();
                for (var i = lo; i <= hi; i++)
                {
                    mass += units[IdOf(keys[i])];
                    if (mass >= target)
                        return i + 1;
                }

                return hi + 1;
            }

            var store = Partition(keys, lo, hi, out var pivot);
            ulong left = 0;
            for (var i = lo; i < store; i++)
                left += units[IdOf(keys[i])];
            if (mass + left >= target)
            {
                hi = store - 1; // the nucleus ends before the pivot
                continue;
            }

            mass += left + units[IdOf(pivot)];
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
