using ILGPU;
using ILGPU.Runtime.Cuda;
using Radlads.Generation;

namespace Radlads.Ilgpu.Kernels;

/// <summary>
/// Token sampling (IOps.Sample) in two launches, the design of kernels/sampling.cu's multi-block path and the same
/// arithmetic as the CPU reference: the kernels call <see cref="SamplingMath"/> themselves (keys, unit shift, targets)
/// and <see cref="Exp{TFma}"/> repeats its portable exp, so the three backends pick the same id.
/// <list type="bullet">
/// <item><see cref="SampleScan"/>: many groups per row, <see cref="Chunk"/> ids each. Each writes its check results
/// (<see cref="SampleScanStats"/>) and, when the row's effective top-k k (1 for greedy) is 2 … <see cref="TopKBound"/>,
/// its min(k, Chunk) smallest keys, sorted, to a candidate slab of TopKBound keys. Every member of the row's top k is
/// among its own chunk's k smallest keys, so the candidates hold the whole top k.</item>
/// <item><see cref="SampleFinish{TFma}"/>: one group per row. Merges the checks; greedy and top-k 1 take the smallest
/// key of the row; top-k ≤ TopKBound selects the k-th smallest candidate (radix select), sorts the k survivors and
/// walks them in key order for units, top-p, min-p and the draw (integer sums, so the prefix measures of the
/// whole-row selects); without a usable top-k it runs the whole-row radix selects over the logits (one group).</item>
/// </list>
/// Launch shapes depend on the vocabulary only, never on a row's options: a recorded decode step reads them from
/// device memory. Histogram bins are integer sums (atomics in any order give the same bins). Results in ids[row]: the
/// id, or -1 (all −Infinity), −2 − 2·id (NaN at id), −3 − 2·id (+Infinity at id), as in sampling.cu. A row whose
/// temperature is negative is skipped by both kernels (a recorded step replayed for its logits only).
/// </summary>
public static class SamplingKernels
{
    /// <summary>Parameters per row in <c>parameters</c>: temperature, top-k, top-p, min-p, uniform (all exact as doubles).</summary>
    public const int ParameterCount = 5;

    /// <summary>Ids per group of <see cref="SampleScan"/> (sampling.cu's SAMPLE_CHUNK); a power of two (the sort).</summary>
    public const int Chunk = 1024;

    /// <summary>The largest top-k served from the candidates (SAMPLE_TOPK_BOUND): the keys of a candidate slab.</summary>
    public const int TopKBound = 1024;

    private const ulong UnitsMask = 0x3fff_ffff_ffff_ffffUL;
    private const ulong MinPFail = 0x8000_0000_0000_0000UL;
    private const ulong NoKey = ulong.MaxValue;
    private const int NoBad = int.MaxValue;
    private const int MeasureCount = 0;
    private const int MeasureUnits = 1;
    private const int MeasureDraw = 2;

    /// <summary>
    /// The largest group the kernels take (their reduction scratch holds a value per thread): the ILGPU backend's
    /// groups are at most 256 threads (<see cref="IlgpuDevice.GroupSize"/>).
    /// </summary>
    public const int MaxGroupSize = 256;

    /// <summary>Histogram copies of a radix select: warp w adds to copy w mod HistogramCopies (fewer atomics on one bin).</summary>
    private const int HistogramCopies = 8;

    /// <summary>Groups per row of <see cref="SampleScan"/>: one per <see cref="Chunk"/> ids.</summary>
    public static int Blocks(int n) => (n + Chunk - 1) / Chunk;

    /// <summary>
    /// The top-k the candidates serve for a row: 1 for greedy, k for 1 ≤ k ≤ <see cref="TopKBound"/>, else 0 (the
    /// whole-row path).
    /// </summary>
    private static int EffectiveTopK(float temperature, int topK)
    {
        if (temperature == 0f)
        {
            return 1;
        }

        return topK > 0 && topK <= TopKBound ? topK : 0;
    }

    /// <summary>
    /// Grid = blocks · rows groups (group g: row g / blocks, chunk g mod blocks) over logits [rows, stride], the first n
    /// of each row sampled. stats [rows, blocks]; candidates [rows, blocks, <see cref="TopKBound"/>] keys, of which a
    /// group writes the first min(k, Chunk) (ids past n and banned ids pad as <see cref="NoKey"/>), nothing for k ≤ 1.
    /// </summary>
    public static void SampleScan(ArrayView<float> allLogits, int stride, int n, ArrayView<double> parameters, int blocks,
        ArrayView<SampleScanStats> stats, ArrayView<ulong> candidates)
    {
        var keys = SharedMemory.Allocate<ulong>(Chunk);
        var scratch = SharedMemory.Allocate<ulong>(2 * MaxGroupSize);
        int group = Grid.IdxX;
        int row = group / blocks;
        int block = group - (row * blocks);
        long logits = (long)row * stride;
        int tid = Group.IdxX;
        float temperature = (float)parameters[(row * ParameterCount) + 0];
        if (temperature < 0f)
        {
            return; // uniform across the group
        }

        int k = EffectiveTopK(temperature, (int)parameters[(row * ParameterCount) + 1]);
        ulong least = NoKey;
        int bad = NoBad, finite = 0;
        for (int i = tid; i < Chunk; i += Group.DimX)
        {
            int id = (block * Chunk) + i;
            ulong key = NoKey;
            if (id < n)
            {
                float l = allLogits[logits + id];
                if (float.IsNaN(l) || l == float.PositiveInfinity)
                {
                    bad = id < bad ? id : bad;
                }
                else if (l != float.NegativeInfinity)
                {
                    key = SamplingMath.Key(l, id);
                    finite++;
                }
            }

            keys[i] = key;
            least = key < least ? key : least;
        }

        var merged = Merge(least, bad, finite, scratch); // the group's in thread 0
        if (tid == 0)
        {
            stats[group] = merged;
        }

        if (k <= 1)
        {
            return; // greedy and top-k 1 need the smallest key only (in the stats); k = 0 needs no candidates
        }

        Sort(keys, synchronized: true); // Merge's barrier follows the writes of keys
        int kept = k < Chunk ? k : Chunk;
        long slab = (long)group * TopKBound;
        for (int i = tid; i < kept; i += Group.DimX)
        {
            candidates[slab + i] = keys[i];
        }
    }

    /// <summary>
    /// One group per row, after <see cref="SampleScan"/> (blocks = its groups per row). units: scratch of rows · n for
    /// the whole-row path; shift = SamplingMath.UnitShift(n). <typeparamref name="TFma"/> supplies the fused multiply-add
    /// of <see cref="Exp{TFma}"/> for the accelerator.
    /// </summary>
    public static void SampleFinish<TFma>(ArrayView<float> allLogits, int stride, int n, ArrayView<double> parameters, int shift,
        ArrayView<ulong> allUnits, ArrayView<int> ids, ArrayView<SampleScanStats> allStats, ArrayView<ulong> allCandidates, int blocks)
        where TFma : struct, IFusedMultiplyAdd
    {
        var hist = SharedMemory.Allocate<ulong>(HistogramCopies * 256);
        var total = SharedMemory.Allocate<ulong>(256);
        var scratch = SharedMemory.Allocate<ulong>(2 * MaxGroupSize);
        var result = SharedMemory.Allocate<ulong>(2);
        var sorted = SharedMemory.Allocate<ulong>(TopKBound);
        var survivors = SharedMemory.Allocate<int>(1);
        int row = Grid.IdxX;
        int tid = Group.IdxX;
        var logits = allLogits.SubView((long)row * stride, n);
        float temperature = (float)parameters[(row * ParameterCount) + 0];
        int topK = (int)parameters[(row * ParameterCount) + 1];
        float topP = (float)parameters[(row * ParameterCount) + 2];
        float minP = (float)parameters[(row * ParameterCount) + 3];
        double uniform = parameters[(row * ParameterCount) + 4];
        if (temperature < 0f)
        {
            return; // uniform across the group
        }

        // The checks of the whole row: lowest NaN/+Infinity id, finite count, smallest key (the largest logit, lowest id).
        ulong least = NoKey;
        int bad = NoBad, finite = 0;
        for (int b = tid; b < blocks; b += Group.DimX)
        {
            var st = allStats[((long)row * blocks) + b];
            least = st.Least < least ? st.Least : least;
            bad = st.Bad < bad ? st.Bad : bad;
            finite += st.Count;
        }

        var merged = MergeAll(least, bad, finite, scratch, result);
        if (merged.Bad != NoBad)
        {
            if (tid == 0)
            {
                int at = merged.Bad;
                ids[row] = float.IsNaN(logits[at]) ? -2 - (2 * at) : -3 - (2 * at);
            }

            return;
        }

        if (merged.Count == 0)
        {
            if (tid == 0)
            {
                ids[row] = -1;
            }

            return;
        }

        int k = EffectiveTopK(temperature, topK);
        if (k == 1)
        {
            // Greedy or top-k 1: the smallest key is the lowest id holding the largest logit (−0 and +0 share a key).
            if (tid == 0)
            {
                ids[row] = (int)(uint)merged.Least;
            }

            return;
        }

        float top = logits[(int)(uint)merged.Least];
        ulong count = (ulong)merged.Count;
        if (k == 0)
        {
            ulong chosen = WholeRow<TFma>(logits, allUnits.SubView((long)row * n, n), n, temperature, topK, topP, minP, uniform, shift,
                top, count, hist, total, result, scratch);
            if (tid == 0)
            {
                ids[row] = (int)(uint)chosen;
            }

            return;
        }

        // The k-th smallest candidate (or every finite one when k ≥ count): exactly min(k, count) survivors, gathered
        // from the slabs (the first min(k, Chunk) keys of each) and sorted.
        var candidates = allCandidates.SubView((long)row * blocks * TopKBound, (long)blocks * TopKBound);
        int perBlock = k < Chunk ? k : Chunk;
        ulong wanted = (ulong)k < count ? (ulong)k : count;
        if (tid == 0)
        {
            survivors[0] = 0;
        }

        for (int i = tid; i < TopKBound; i += Group.DimX)
        {
            sorted[i] = NoKey;
        }

        ulong bound = NoKey - 1; // every finite candidate
        if ((ulong)k < count)
        {
            bound = SelectCandidate(candidates, blocks, perBlock, wanted, hist, total, result);
        }

        Group.Barrier();
        for (int i = tid; i < blocks * perBlock; i += Group.DimX)
        {
            int b = i / perBlock;
            ulong key = candidates[((long)b * TopKBound) + (i - (b * perBlock))];
            if (key <= bound)
            {
                sorted[Atomic.Add(ref survivors[0], 1)] = key;
            }
        }

        Sort(sorted, synchronized: false);

        // Units of the survivors in key order (the histogram is free now), flagged when min-p drops them.
        int m = (int)wanted;
        var units = hist.SubView(0, TopKBound);
        double inverseT = 1.0 / temperature;
        double scale = BitConverter.Int64BitsToDouble((long)(shift + 1023) << 52);
        double minPd = minP;
        for (int i = tid; i < m; i += Group.DimX)
        {
            ulong key = sorted[i];
            double w = Exp<TFma>(((double)logits[(int)(uint)key] - top) * inverseT);
            ulong u = (ulong)(w * scale);
            if (minPd > 0.0 && w < minPd)
            {
                u |= MinPFail;
            }

            units[i] = u;
        }

        Group.Barrier();
        if (tid != 0)
        {
            return;
        }

        // Integer sums in key order: the prefix measures of the whole-row selects, walked directly.
        ulong sum = 0;
        for (int i = 0; i < m; i++)
        {
            sum += units[i] & UnitsMask;
        }

        int nucleus = m - 1; // the last key of the nucleus
        if (topP < 1f)
        {
            ulong target = SamplingMath.NucleusTarget(topP, sum);
            ulong cum = 0;
            for (int i = 0; i < m; i++)
            {
                cum += units[i] & UnitsMask;
                if (cum >= target)
                {
                    nucleus = i;
                    break;
                }
            }
        }

        ulong kept = 0;
        for (int i = 0; i <= nucleus; i++)
        {
            kept += (units[i] & MinPFail) == 0 ? units[i] : 0;
        }

        ulong draw = SamplingMath.DrawTarget(uniform, kept);
        ulong drawn = 0;
        int pick = nucleus;
        for (int i = 0; i <= nucleus; i++)
        {
            drawn += (units[i] & MinPFail) == 0 ? units[i] : 0;
            if (drawn >= draw)
            {
                pick = i;
                break;
            }
        }

        ids[row] = (int)(uint)sorted[pick];
    }

    /// <summary>
    /// The whole-row path of <see cref="SampleFinish{TFma}"/> (top-k off or above <see cref="TopKBound"/>; never greedy):
    /// top-k, units, top-p and the draw as radix selects over every logit of the row. top = the largest finite logit,
    /// count = the number of finite logits (≥ 1). Returns the drawn key (the same in every thread).
    /// </summary>
    private static ulong WholeRow<TFma>(ArrayView<float> logits, ArrayView<ulong> units, int n, float temperature, int topK, float topP,
        float minP, double uniform, int shift, float top, ulong count, ArrayView<ulong> hist, ArrayView<ulong> total,
        ArrayView<ulong> result, ArrayView<ulong> scratch)
        where TFma : struct, IFusedMultiplyAdd
    {
        int tid = Group.IdxX;
        ulong topKKey = NoKey;
        if (topK > 0 && (ulong)topK < count)
        {
            topKKey = Select(logits, units, n, MeasureCount, 0, (ulong)topK, hist, total, result);
        }

        // Units of the top-k tokens (0 for the rest, which then never change a prefix measure), flagged when min-p drops them.
        double inverseT = 1.0 / temperature;
        double scale = BitConverter.Int64BitsToDouble((long)(shift + 1023) << 52);
        double minPd = minP;
        ulong sum = 0;
        for (int id = tid; id < n; id += Group.DimX)
        {
            float l = logits[id];
            ulong u = 0;
            if (l != float.NegativeInfinity && SamplingMath.Key(l, id) <= topKKey)
            {
                double w = Exp<TFma>(((double)l - top) * inverseT);
                u = (ulong)(w * scale);
                sum += u;
                if (minPd > 0.0 && w < minPd)
                {
                    u |= MinPFail;
                }
            }

            units[id] = u;
        }

        Group.Barrier(); // units written by other threads are read by the selects below (global memory, same group)
        sum = GroupSum(sum, scratch, result);

        ulong nucleusKey = NoKey;
        if (topP < 1f)
        {
            nucleusKey = Select(logits, units, n, MeasureUnits, 0, SamplingMath.NucleusTarget(topP, sum), hist, total, result);
        }

        ulong kept = 0;
        for (int id = tid; id < n; id += Group.DimX)
        {
            ulong u = units[id];
            if ((u & MinPFail) == 0 && SamplingMath.Key(logits[id], id) <= nucleusKey)
            {
                kept += u & UnitsMask;
            }
        }

        kept = GroupSum(kept, scratch, result);
        return Select(logits, units, n, MeasureDraw, nucleusKey, SamplingMath.DrawTarget(uniform, kept), hist, total, result);
    }

    /// <summary>
    /// <see cref="SamplingMath.Exp"/> operation for operation (a test compares them on the host), with the fused
    /// multiply-adds of <typeparamref name="TFma"/>: ILGPU has no intrinsic for <see cref="Math.FusedMultiplyAdd(double, double, double)"/>
    /// and would leave it an unresolved external function in the PTX, so CUDA emits <c>fma.rn.f64</c> itself.
    /// </summary>
    public static double Exp<TFma>(double x)
        where TFma : struct, IFusedMultiplyAdd
    {
        if (!(x >= SamplingMath.ExpCutoff))
        {
            return 0.0;
        }

        if (x > 0.0)
        {
            x = 0.0;
        }

        double t = x * 1.4426950408889634;
        double k = Math.Floor(t);
        if (t > k + 0.5)
        {
            k += 1.0;
        }

        double r = default(TFma).Fma(-k, 6.93147180369123816490e-01, x);
        r = default(TFma).Fma(-k, 1.90821492927058770002e-10, r);
        double p = 1.6059043836821613e-10;
        p = default(TFma).Fma(p, r, 2.08767569878681e-09);
        p = default(TFma).Fma(p, r, 2.505210838544172e-08);
        p = default(TFma).Fma(p, r, 2.755731922398589e-07);
        p = default(TFma).Fma(p, r, 2.7557319223985893e-06);
        p = default(TFma).Fma(p, r, 2.48015873015873e-05);
        p = default(TFma).Fma(p, r, 0.0001984126984126984);
        p = default(TFma).Fma(p, r, 0.001388888888888889);
        p = default(TFma).Fma(p, r, 0.008333333333333333);
        p = default(TFma).Fma(p, r, 0.041666666666666664);
        p = default(TFma).Fma(p, r, 0.16666666666666666);
        p = default(TFma).Fma(p, r, 0.5);
        p = default(TFma).Fma(p, r, 1.0);
        p = default(TFma).Fma(p, r, 1.0);
        return p * BitConverter.Int64BitsToDouble((long)((int)k + 1023) << 52);
    }

    /// <summary>
    /// Ascending bitonic sort of the <see cref="Chunk"/> keys in shared memory by the whole group, for any group size.
    /// A stage whose pairs (i, i + stride) cross threads' segments gives thread t every DimX-th of its Chunk / 2 pairs
    /// and a barrier before it; when the group divides the keys into segments of a power of two (Chunk / DimX: 4 keys
    /// at 256 threads, 128 on the CPU simulator's 8), the stages with 2 · stride ≤ segment stay inside a segment and
    /// run back to back in its thread without barriers (45 barriers instead of 55 at 256 threads, 10 at 8). The
    /// result is the same sort either way. <paramref name="synchronized"/>: a barrier has passed since the keys were
    /// last written (the first one is skipped). Ends with a barrier.
    /// </summary>
    private static void Sort(ArrayView<ulong> keys, bool synchronized)
    {
        int per = Chunk / Group.DimX;
        int segment = per * Group.DimX == Chunk && (per & (per - 1)) == 0 ? per : 1;
        int first = Group.IdxX * segment;
        bool local = false; // whether the last step ran inside the segments (the next local step needs no barrier)
        for (int size = 2; size <= Chunk; size <<= 1)
        {
            int stride = size >> 1;
            for (; stride > 0 && 2 * stride > segment; stride >>= 1)
            {
                if (!synchronized)
                {
                    Group.Barrier();
                }

                synchronized = false;
                for (int t = Group.IdxX; t < Chunk / 2; t += Group.DimX)
                {
                    int i = (2 * t) - (t & (stride - 1));
                    CompareExchange(keys, i, i + stride, (i & size) == 0);
                }

                local = false;
            }

            if (stride == 0)
            {
                continue;
            }

            if (!local && !synchronized)
            {
                Group.Barrier();
            }

            synchronized = false;

            for (; stride > 0; stride >>= 1)
            {
                for (int i = first; i < first + segment; i++)
                {
                    if ((i & stride) == 0)
                    {
                        CompareExchange(keys, i, i + stride, (i & size) == 0);
                    }
                }
            }

            local = true;
        }

        Group.Barrier();
    }

    /// <summary>Orders keys[i] and keys[j] (i &lt; j) ascending, or descending when <paramref name="ascending"/> is false.</summary>
    private static void CompareExchange(ArrayView<ulong> keys, int i, int j, bool ascending)
    {
        ulong a = keys[i], b = keys[j];
        if ((a > b) == ascending)
        {
            keys[i] = b;
            keys[j] = a;
        }
    }

    /// <summary>The smallest key whose prefix measure reaches target: 8-bit digits from the top, the id's unused top byte skipped.</summary>
    private static ulong Select(ArrayView<float> logits, ArrayView<ulong> units, int n, int measure, ulong bound, ulong target,
        ArrayView<ulong> hist, ArrayView<ulong> total, ArrayView<ulong> result)
    {
        int copy = (Warp.WarpIdx % HistogramCopies) * 256;
        ulong prefix = 0, mask = 0, before = 0;
        for (int pass = 0; pass < 7; pass++)
        {
            int shift = pass < 4 ? 56 - (8 * pass) : 16 - (8 * (pass - 4));
            ClearHistogram(hist);
            for (int id = Group.IdxX; id < n; id += Group.DimX)
            {
                float l = logits[id];
                ulong key = SamplingMath.Key(l, id);
                if ((key & mask) != prefix)
                {
                    continue;
                }

                ulong m;
                if (measure == MeasureCount)
                {
                    m = l != float.NegativeInfinity ? 1UL : 0UL;
                }
                else
                {
                    ulong u = units[id];
                    m = measure == MeasureDraw && ((u & MinPFail) != 0 || key > bound) ? 0UL : u & UnitsMask;
                }

                if (m != 0)
                {
                    Atomic.Add(ref hist[copy + (int)((key >> shift) & 255)], m);
                }
            }

            (prefix, before) = NextDigit(hist, total, result, prefix, before, shift, target);
            mask |= 255UL << shift;
        }

        return prefix;
    }

    /// <summary>
    /// The smallest candidate key whose count of real keys (not <see cref="NoKey"/>) ≤ it reaches target (1 ≤ target ≤
    /// their count). The candidates of chunk b are candidates[b · TopKBound + [0, perBlock)].
    /// </summary>
    private static ulong SelectCandidate(ArrayView<ulong> candidates, int blocks, int perBlock, ulong target, ArrayView<ulong> hist,
        ArrayView<ulong> total, ArrayView<ulong> result)
    {
        int copy = (Warp.WarpIdx % HistogramCopies) * 256;
        ulong prefix = 0, mask = 0, before = 0;
        for (int pass = 0; pass < 7; pass++)
        {
            int shift = pass < 4 ? 56 - (8 * pass) : 16 - (8 * (pass - 4));
            ClearHistogram(hist);
            for (int i = Group.IdxX; i < blocks * perBlock; i += Group.DimX)
            {
                int b = i / perBlock;
                ulong key = candidates[((long)b * TopKBound) + (i - (b * perBlock))];
                if (key != NoKey && (key & mask) == prefix)
                {
                    Atomic.Add(ref hist[copy + (int)((key >> shift) & 255)], 1UL);
                }
            }

            (prefix, before) = NextDigit(hist, total, result, prefix, before, shift, target);
            mask |= 255UL << shift;
        }

        return prefix;
    }

    private static void ClearHistogram(ArrayView<ulong> hist)
    {
        for (int i = Group.IdxX; i < HistogramCopies * 256; i += Group.DimX)
        {
            hist[i] = 0;
        }

        Group.Barrier();
    }

    /// <summary>
    /// One radix-select step after the histogram pass: sums the copies into <paramref name="total"/>, then the first warp
    /// finds the digit whose bin makes the prefix measure reach <paramref name="target"/> (lane ℓ owns bins
    /// [ℓ·w, (ℓ+1)·w), w = 256 / warp size: an inclusive scan of the lane sums finds the crossing lane, which walks its
    /// bins). Returns the prefix with that digit and the measure of the keys below it; the same in every thread.
    /// </summary>
    private static (ulong Prefix, ulong Before) NextDigit(ArrayView<ulong> hist, ArrayView<ulong> total, ArrayView<ulong> result,
        ulong prefix, ulong before, int shift, ulong target)
    {
        Group.Barrier();
        for (int bin = Group.IdxX; bin < 256; bin += Group.DimX)
        {
            ulong t = 0;
            for (int c = 0; c < HistogramCopies; c++)
            {
                t += hist[(c * 256) + bin];
            }

            total[bin] = t;
        }

        Group.Barrier();
        if (Warp.WarpIdx == 0)
        {
            int lane = Warp.LaneIdx;
            int width = 256 / Warp.WarpSize;
            ulong own = 0;
            for (int j = 0; j < width; j++)
            {
                own += total[(lane * width) + j];
            }

            ulong inclusive = own;
            for (int d = 1; d < Warp.WarpSize; d <<= 1)
            {
                ulong v = Warp.ShuffleUp(inclusive, d);
                if (lane >= d)
                {
                    inclusive += v;
                }
            }

            // The lowest crossing lane (always one: the target is at most the measure still matching the prefix).
            int at = before + inclusive >= target ? lane : Warp.WarpSize - 1;
            for (int o = Warp.WarpSize / 2; o > 0; o /= 2)
            {
                int other = Warp.ShuffleXor(at, o);
                at = other < at ? other : at;
            }

            ulong exclusive = Warp.Shuffle(inclusive - own, at);
            if (lane == at)
            {
                ulong cum = before + exclusive;
                int digit = (lane * width) + width - 1;
                for (int j = 0; j < width; j++)
                {
                    ulong t = total[(lane * width) + j];
                    if (cum + t >= target)
                    {
                        digit = (lane * width) + j;
                        break;
                    }

                    cum += t;
                }

                result[0] = prefix | ((ulong)digit << shift);
                result[1] = cum;
            }
        }

        Group.Barrier();
        var next = (result[0], result[1]);
        Group.Barrier();
        return next;
    }

    /// <summary>
    /// The group's smallest key, lowest bad id and finite count, in thread 0 only (the others get their own values):
    /// each thread's values go to <paramref name="scratch"/> (2 · <see cref="MaxGroupSize"/> entries), one barrier, and
    /// thread 0 folds them in thread order. No warp shuffles: ILGPU's CPU simulator pays ~0.1 ms a shuffle and ~0.08 ms a
    /// barrier (8 OS threads on a small machine), and the scan runs this once per chunk; on a GPU the fold is 256 shared
    /// loads in one thread. The caller must pass another barrier before <paramref name="scratch"/> is written again.
    /// </summary>
    private static SampleScanStats Merge(ulong least, int bad, int count, ArrayView<ulong> scratch)
    {
        int tid = Group.IdxX;
        scratch[tid] = least;
        scratch[MaxGroupSize + tid] = ((ulong)(uint)bad << 32) | (uint)count;
        Group.Barrier();
        if (tid == 0)
        {
            for (int t = 1; t < Group.DimX; t++)
            {
                ulong l = scratch[t];
                ulong packed = scratch[MaxGroupSize + t];
                int b = (int)(uint)(packed >> 32);
                least = l < least ? l : least;
                bad = b < bad ? b : bad;
                count += (int)(uint)packed;
            }
        }

        return new SampleScanStats { Least = least, Bad = bad, Count = count };
    }

    /// <summary>
    /// <see cref="Merge"/> for every thread: thread 0 publishes the result through <paramref name="cells"/> (2 entries)
    /// after a second barrier.
    /// </summary>
    private static SampleScanStats MergeAll(ulong least, int bad, int count, ArrayView<ulong> scratch, ArrayView<ulong> cells)
    {
        var merged = Merge(least, bad, count, scratch);
        if (Group.IdxX == 0)
        {
            cells[0] = merged.Least;
            cells[1] = ((ulong)(uint)merged.Bad << 32) | (uint)merged.Count;
        }

        Group.Barrier();
        ulong packed = cells[1];
        return new SampleScanStats { Least = cells[0], Bad = (int)(uint)(packed >> 32), Count = (int)(uint)packed };
    }

    /// <summary>
    /// Sum over the group, the same in every thread: values to <paramref name="scratch"/>, thread 0 adds them in thread
    /// order and publishes the sum through <paramref name="cells"/>[0] (two barriers, no shuffles; see <see cref="Merge"/>).
    /// </summary>
    private static ulong GroupSum(ulong value, ArrayView<ulong> scratch, ArrayView<ulong> cells)
    {
        int tid = Group.IdxX;
        scratch[tid] = value;
        Group.Barrier();
        if (tid == 0)
        {
            for (int t = 1; t < Group.DimX; t++)
            {
                value += scratch[t];
            }

            cells[0] = value;
        }

        Group.Barrier();
        return cells[0];
    }
}

/// <summary>
/// What one group of <see cref="SamplingKernels.SampleScan"/> found in its chunk (16 bytes): the smallest key (the
/// largest finite logit, lowest id; all ones when none), the lowest NaN or +Infinity id (int.MaxValue when none), and
/// the number of finite logits.
/// </summary>
public struct SampleScanStats
{
    public ulong Least;
    public int Bad;
    public int Count;
}

/// <summary>a · b + c for <see cref="SamplingKernels.Exp{TFma}"/>, chosen per accelerator when the kernel is loaded.</summary>
public interface IFusedMultiplyAdd
{
    double Fma(double a, double b, double c);
}

/// <summary>CUDA: PTX <c>fma.rn.f64</c> (rounded once, as <see cref="Math.FusedMultiplyAdd(double, double, double)"/>).</summary>
public readonly struct PtxFusedMultiplyAdd : IFusedMultiplyAdd
{
    public double Fma(double a, double b, double c)
    {
        CudaAsm.Emit("fma.rn.f64 %0, %1, %2, %3;", out double r, a, b, c);
        return r;
    }
}

/// <summary>The CPU simulator (and host-side tests): .NET's <see cref="Math.FusedMultiplyAdd(double, double, double)"/>.</summary>
public readonly struct HostFusedMultiplyAdd : IFusedMultiplyAdd
{
    public double Fma(double a, double b, double c) => Math.FusedMultiplyAdd(a, b, c);
}

/// <summary>
/// OpenCL: a · b + c as written (the compiler may or may not fuse it, so the last bit of a weight, and with odds near
/// 2^-40 a drawn token, may differ from the CPU). ILGPU 1.5.3 offers no OpenCL fma intrinsic.
/// </summary>
public readonly struct PlainMultiplyAdd : IFusedMultiplyAdd
{
    public double Fma(double a, double b, double c) => (a * b) + c;
}
