using Radlads.Generation;

namespace Radlads.Tests.Generation;

public class SamplerTests
{
    private static readonly float[] Probs5 = [0.2f, 0.05f, 0.5f, 0.1f, 0.15f]; // sorted: id 2, 0, 4, 3, 1

    private static float[] LogOf(float[] probs) => [.. probs.Select(p => MathF.Log(p))];

    private static Sampler Make(SamplingOptions options) => new(options with { Seed = options.Seed ?? 12345 });

    private static int[] Counts(Sampler sampler, float[] logits, int draws, int allowed = -1, int[]? history = null)
    {
        var counts = new int[logits.Length];
        for (var i = 0; i < draws; i++)
            counts[sampler.Sample(logits, allowed < 0 ? logits.Length : allowed, history ?? [])]++;
        return counts;
    }

    private static double[] Softmax(float[] logits, double temperature)
    {
        var max = logits.Max();
        var e = logits.Select(l => Math.Exp((l - max) / temperature)).ToArray();
        var z = e.Sum();
        return [.. e.Select(x => x / z)];
    }

    /// <summary>Pearson chi-square of observed counts against expected probabilities (bins with p = 0 must be empty).</summary>
    private static double ChiSquare(int[] counts, double[] expected)
    {
        double n = counts.Sum(), chi = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            if (expected[i] == 0)
            {
                Assert.Equal(0, counts[i]);
                continue;
            }

            var e = n * expected[i];
            chi += (counts[i] - e) * (counts[i] - e) / e;
        }

        return chi;
    }

    // Chi-square critical values at p = 0.001 by degrees of freedom.
    private const double Chi2Df2 = 13.816, Chi2Df4 = 18.467;

    // ---------- RNG ----------

    [Fact]
    public void SplitMix64MatchesReference()
    {
        ulong state = 0;
        Assert.Equal(0xE220A8397B1DCDAFUL, Xoshiro256StarStar.SplitMix64(ref state));
    }

    [Fact]
    public void RngProducesPinnedSequence()
    {
        // From Blackman & Vigna's reference C code (xoshiro256starstar.c seeded by four splitmix64.c outputs).
        var rng = new Xoshiro256StarStar(0);
        Assert.Equal(0x99EC5F36CB75F2B4UL, rng.NextUInt64());
        Assert.Equal(0xBF6E1F784956452AUL, rng.NextUInt64());
        Assert.Equal(0x1A5F849D4933E6E0UL, rng.NextUInt64());
        Assert.Equal(0x6AA594F1262D2D2CUL, rng.NextUInt64());
        Assert.Equal(0xBBA5AD4A1F842E59UL, rng.NextUInt64());

        var rng42 = new Xoshiro256StarStar(42);
        Assert.Equal(0x15780B2E0C2EC716UL, rng42.NextUInt64());
        Assert.Equal(0x6104D9866D113A7EUL, rng42.NextUInt64());
        Assert.Equal(0xAE17533239E499A1UL, rng42.NextUInt64());

        var doubles = new Xoshiro256StarStar(ulong.MaxValue);
        Assert.Equal(0.55989270405052116, doubles.NextDouble());
        Assert.Equal(0.7674350796247662, doubles.NextDouble());
    }

    [Fact]
    public void NextDoubleIsInUnitIntervalAndUniform()
    {
        var rng = new Xoshiro256StarStar(7);
        var bins = new int[10];
        for (var i = 0; i < 100_000; i++)
        {
            var u = rng.NextDouble();
            Assert.InRange(u, 0.0, 1.0);
            Assert.True(u < 1.0);
            bins[(int)(u * 10)]++;
        }

        // 9 degrees of freedom, p = 0.001.
        Assert.True(ChiSquare(bins, [.. Enumerable.Repeat(0.1, 10)]) < 27.877);
    }

    // ---------- greedy ----------

    [Fact]
    public void GreedyPicksArgMax()
    {
        var sampler = Make(new SamplingOptions { Temperature = 0 });
        Assert.Equal(3, sampler.Sample([0.1f, -2f, 1.5f, 2.25f, 2.2f], 5, []));
    }

    [Fact]
    public void GreedyPicksLowestIdOnTies()
    {
        var sampler = Make(new SamplingOptions { Temperature = 0 });
        Assert.Equal(1, sampler.Sample([0f, 4f, 1f, 4f, 4f], 5, []));
        Assert.Equal(0, sampler.Sample([-0f, 0f, 0f], 3, []));
    }

    [Fact]
    public void GreedyIgnoresTopKTopPAndMinP()
    {
        var sampler = Make(new SamplingOptions { Temperature = 0, TopK = 2, TopP = 0.1f, MinP = 0.5f });
        Assert.Equal(2, sampler.Sample(LogOf(Probs5), 5, []));
    }

    [Fact]
    public void IdsAtOrBeyondAllowedVocabularyAreNeverChosen()
    {
        float[] logits = [0f, 1f, 0.5f, 100f, 200f, float.NaN];
        Assert.Equal(1, Make(new SamplingOptions { Temperature = 0 }).Sample(logits, 3, []));
        var counts = Counts(Make(new SamplingOptions { Temperature = 2f }), logits, 5_000, allowed: 3);
        Assert.Equal(0, counts[3] + counts[4] + counts[5]);
        Assert.True(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
    }

    // ---------- temperature ----------

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.7)]
    [InlineData(2.5)]
    public void DrawsFollowSoftmaxOfLogitsOverTemperature(double temperature)
    {
        float[] logits = [1f, 2f, 0.5f, -1f, 3f];
        var counts = Counts(Make(new SamplingOptions { Temperature = (float)temperature }), logits, 100_000);
        var expected = Softmax(logits, temperature);
        Assert.True(ChiSquare(counts, expected) < Chi2Df4, $"chi2 = {ChiSquare(counts, expected)}");
        for (var i = 0; i < logits.Length; i++)
            Assert.InRange(counts[i] / 100_000.0, expected[i] - 0.01, expected[i] + 0.01);
    }

    [Fact]
    public void TinyTemperatureIsEffectivelyGreedyWithoutOverflow()
    {
        var sampler = Make(new SamplingOptions { Temperature = 1e-30f });
        for (var i = 0; i < 100; i++)
            Assert.Equal(2, sampler.Sample([1e30f, -1e30f, 3e30f, 2.9e30f], 4, []));
    }

    // ---------- top-k ----------

    [Fact]
    public void TopKOneEqualsGreedy()
    {
        var greedy = Make(new SamplingOptions { Temperature = 0 });
        var topK1 = Make(new SamplingOptions { Temperature = 1.5f, TopK = 1 });
        var rng = new Xoshiro256StarStar(3);
        var logits = new float[1000];
        for (var trial = 0; trial < 50; trial++)
        {
            for (var i = 0; i < logits.Length; i++)
                logits[i] = (float)(rng.NextDouble() * 10 - 5);
            Assert.Equal(greedy.Sample(logits, logits.Length, []), topK1.Sample(logits, logits.Length, []));
        }
    }

    [Fact]
    public void TopKOneBreaksTiesToLowestId()
    {
        var sampler = Make(new SamplingOptions { TopK = 1 });
        for (var i = 0; i < 100; i++)
            Assert.Equal(1, sampler.Sample([0f, 5f, 5f, 5f, 1f], 5, []));
    }

    [Fact]
    public void TopKRestrictsSupportAndRenormalises()
    {
        float[] logits = LogOf(Probs5);
        var counts = Counts(Make(new SamplingOptions { TopK = 3 }), logits, 60_000);
        // The three most likely: ids 2 (0.5), 0 (0.2), 4 (0.15).
        Assert.Equal(0, counts[1]);
        Assert.Equal(0, counts[3]);
        double[] expected = [0.2 / 0.85, 0, 0.5 / 0.85, 0, 0.15 / 0.85];
        Assert.True(ChiSquare(counts, expected) < Chi2Df2);
    }

    [Fact]
    public void TopKOnLargeVocabularyKeepsExactlyTheTopK()
    {
        // Large enough to exercise the quickselect; logits are a permutation so the top 5 are known.
        const int n = 50_000;
        var logits = new float[n];
        for (var i = 0; i < n; i++)
            logits[i] = (i * 7919L % n) / 1000f; // 7919 is prime and coprime with n: a permutation of 0..n-1
        var top = Enumerable.Range(0, n).OrderByDescending(i => logits[i]).Take(5).ToHashSet();
        var sampler = Make(new SamplingOptions { TopK = 5, Temperature = 0.5f });
        var seen = new HashSet<int>();
        for (var i = 0; i < 2_000; i++)
            seen.Add(sampler.Sample(logits, n, []));
        Assert.Equal(top, seen);
    }

    [Fact]
    public void TopKLargerThanVocabularyKeepsEverything()
    {
        var counts = Counts(Make(new SamplingOptions { TopK = 100 }), LogOf(Probs5), 50_000);
        Assert.True(ChiSquare(counts, [.. Probs5.Select(p => (double)p)]) < Chi2Df4);
    }

    // ---------- top-p ----------

    [Fact]
    public void TopPKeepsTheExpectedNucleus()
    {
        // Sorted probabilities 0.5 (id 2), 0.2 (id 0), 0.15 (id 4), 0.1 (id 3), 0.05 (id 1); cumulative 0.5, 0.7, 0.85, 0.95, 1.
        // P = 0.8: 0.7 < 0.8 ≤ 0.85, so the nucleus is {2, 0, 4}, renormalised over 0.85.
        var counts = Counts(Make(new SamplingOptions { TopP = 0.8f }), LogOf(Probs5), 60_000);
        Assert.Equal(0, counts[1]);
        Assert.Equal(0, counts[3]);
        Assert.True(ChiSquare(counts, [0.2 / 0.85, 0, 0.5 / 0.85, 0, 0.15 / 0.85]) < Chi2Df2);

        // P = 0.6: {2, 0}.
        var two = Counts(Make(new SamplingOptions { TopP = 0.6f }), LogOf(Probs5), 20_000);
        Assert.Equal(20_000, two[2] + two[0]);
        Assert.InRange(two[2] / 20_000.0, 0.5 / 0.7 - 0.02, 0.5 / 0.7 + 0.02);
    }

    [Fact]
    public void TopPAlwaysKeepsAtLeastOneToken()
    {
        var sampler = Make(new SamplingOptions { TopP = 1e-6f });
        for (var i = 0; i < 1_000; i++)
            Assert.Equal(2, sampler.Sample(LogOf(Probs5), 5, []));
        // Even when the top token is tied: the lowest id wins.
        for (var i = 0; i < 100; i++)
            Assert.Equal(1, sampler.Sample([0f, 2f, 2f], 3, []));
    }

    [Fact]
    public void TopPOnLargeVocabularyKeepsExactNucleus()
    {
        // Ten tokens hold almost all the mass; the rest share a little. With P = 0.5 the nucleus is the first
        // tokens (by probability) whose cumulative sum reaches half, computed here by brute force.
        const int n = 20_000;
        var logits = new float[n];
        var rng = new Xoshiro256StarStar(11);
        for (var i = 0; i < n; i++)
            logits[i] = (float)(rng.NextDouble() * 2 - 12);
        for (var j = 0; j < 10; j++)
            logits[j * 1_999] = 2f + j * 0.3f;
        var p = Softmax(logits, 1.0);
        var order = Enumerable.Range(0, n).OrderByDescending(i => p[i]).ThenBy(i => i).ToArray();
        var nucleus = new HashSet<int>();
        double cum = 0;
        foreach (var id in order)
        {
            nucleus.Add(id);
            cum += p[id];
            if (cum >= 0.5)
                break;
        }

        var sampler = Make(new SamplingOptions { TopP = 0.5f });
        var seen = new HashSet<int>();
        for (var i = 0; i < 5_000; i++)
            seen.Add(sampler.Sample(logits, n, []));
        Assert.Equal(nucleus, seen);
    }

    [Fact]
    public void TopPNeedingManyTokensStillSortsCorrectly()
    {
        // Flat distribution over 1,000 tokens: P = 0.3 needs 300 of them, more than the first selection chunk.
        // All logits are equal, so the nucleus is the 300 lowest ids.
        var logits = new float[1_000];
        var sampler = Make(new SamplingOptions { TopP = 0.3f });
        var max = 0;
        var seen = new HashSet<int>();
        for (var i = 0; i < 20_000; i++)
        {
            var id = sampler.Sample(logits, logits.Length, []);
            seen.Add(id);
            max = Math.Max(max, id);
        }

        Assert.True(max <= 300, $"max {max}"); // 0.3f is a hair above 0.3, so the 301st token (id 300) is needed too
        Assert.True(seen.Count > 280);
    }

    [Fact]
    public void TopKAboveHeapLimitKeepsExactlyTheTopK()
    {
        // TopK > 4096 takes the quickselect path instead of the heap.
        const int n = 30_000;
        var logits = new float[n];
        for (var i = 0; i < n; i++)
            logits[i] = (i * 7919L % n) / 1000f;
        var sampler = Make(new SamplingOptions { TopK = 10_000 });
        var kept = sampler.Distribution(logits, n, []).Select(t => t.Id).ToHashSet();
        Assert.Equal(Enumerable.Range(0, n).Where(i => logits[i] >= (n - 10_000) / 1000f).ToHashSet(), kept);
    }

    // ---------- whole pipeline against a brute-force reference ----------

    /// <summary>The pipeline written the obvious way: sort everything by (logit desc, id asc), then cut.</summary>
    private static Dictionary<int, double> Reference(float[] logits, int allowed, int[] history, SamplingOptions o)
    {
        var l = logits[..allowed];
        foreach (var id in history[Math.Max(0, history.Length - o.RepetitionWindow)..].Where(id => id >= 0 && id < allowed).Distinct())
        {
            if (o.RepetitionPenalty != 1f && o.RepetitionWindow > 0)
                l[id] = l[id] > 0f ? l[id] / o.RepetitionPenalty : l[id] * o.RepetitionPenalty;
        }

        var order = Enumerable.Range(0, allowed).Where(id => !float.IsNegativeInfinity(l[id]))
            .OrderByDescending(id => l[id]).ThenBy(id => id).ToList();
        if (o.TopK > 0)
            order = [.. order.Take(o.TopK)];
        var max = (double)l[order[0]];
        var w = order.ToDictionary(id => id, id => Math.Exp(((double)l[id] - max) * (1.0 / o.Temperature)));
        if (o.TopP < 1f)
        {
            var target = o.TopP * w.Values.Sum();
            double cum = 0;
            var keep = 0;
            while (keep < order.Count && cum < target)
                cum += w[order[keep++]];
            order = [.. order.Take(keep)];
        }

        order = [.. order.Where(id => w[id] >= o.MinP && w[id] > 0)];
        var total = order.Sum(id => w[id]);
        return order.ToDictionary(id => id, id => w[id] / total);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(10)]
    [InlineData(11)]
    [InlineData(12)]
    public void PipelineMatchesBruteForceReference(int seed)
    {
        var rng = new Xoshiro256StarStar((ulong)seed);
        int Next(int bound) => (int)(rng.NextDouble() * bound);
        var n = 1 + Next(seed % 3 == 0 ? 20_000 : 300);
        var logits = new float[n + Next(50)];
        var spread = 1 + Next(15);
        var quantised = seed % 2 == 0; // many exact ties
        for (var i = 0; i < logits.Length; i++)
        {
            var v = (float)((rng.NextDouble() - 0.5) * 2 * spread);
            logits[i] = quantised ? MathF.Round(v * 2) / 2 : v;
            if (rng.NextDouble() < 0.05)
                logits[i] = float.NegativeInfinity;
        }

        logits[Next(n)] = 1.5f; // at least one finite logit in range
        var history = Enumerable.Range(0, Next(200)).Select(_ => Next(n + 20) - 10).ToArray();
        for (var trial = 0; trial < 6; trial++)
        {
            var options = new SamplingOptions
            {
                Seed = 1,
                Temperature = (float)(0.2 + rng.NextDouble() * 2),
                TopK = Next(3) == 0 ? 0 : 1 + Next(trial % 2 == 0 ? 50 : 6_000),
                TopP = Next(3) == 0 ? 1f : (float)(0.05 + rng.NextDouble() * 0.9),
                MinP = Next(3) == 0 ? 0f : (float)(rng.NextDouble() * 0.3),
                RepetitionPenalty = Next(2) == 0 ? 1f : (float)(0.5 + rng.NextDouble() * 1.5),
                RepetitionWindow = Next(100),
            };
            var expected = Reference(logits, n, history, options);
            var actual = new Sampler(options).Distribution(logits, n, history);
            Assert.Equal(expected.Keys.Order(), actual.Select(t => t.Id));
            foreach (var (id, p) in actual)
                Assert.Equal(expected[id], p, 1e-12);
        }
    }

    // ---------- min-p ----------

    [Fact]
    public void MinPDropsTokensBelowThreshold()
    {
        // p_max = 0.5; MinP = 0.25 → threshold 0.125: keep 0.5, 0.2, 0.15 (ids 2, 0, 4).
        var counts = Counts(Make(new SamplingOptions { MinP = 0.25f }), LogOf(Probs5), 60_000);
        Assert.Equal(0, counts[1]);
        Assert.Equal(0, counts[3]);
        Assert.True(ChiSquare(counts, [0.2 / 0.85, 0, 0.5 / 0.85, 0, 0.15 / 0.85]) < Chi2Df2);

        // MinP = 0.45 → threshold 0.225: only id 2.
        var only = Counts(Make(new SamplingOptions { MinP = 0.45f }), LogOf(Probs5), 1_000);
        Assert.Equal(1_000, only[2]);
    }

    [Fact]
    public void MinPUsesTemperedProbabilities()
    {
        // At T = 2 the probabilities are proportional to sqrt(p): 0.707, 0.447, 0.387, 0.316, 0.224 (relative to the max: 1, 0.632, 0.548, 0.447, 0.316).
        // MinP = 0.5 keeps ids 2, 0, 4.
        var counts = Counts(Make(new SamplingOptions { Temperature = 2f, MinP = 0.5f }), LogOf(Probs5), 20_000);
        Assert.Equal(0, counts[1] + counts[3]);
        Assert.True(counts[2] > 0 && counts[0] > 0 && counts[4] > 0);
    }

    // ---------- repetition penalty ----------

    [Fact]
    public void RepetitionPenaltyChangesArgMax()
    {
        var sampler = Make(new SamplingOptions { Temperature = 0, RepetitionPenalty = 2f });
        float[] logits = [2f, 1.5f, -1f, -0.5f];
        Assert.Equal(0, sampler.Sample(logits, 4, []));
        Assert.Equal(1, sampler.Sample(logits, 4, [0])); // 2 / 2 = 1 < 1.5
        Assert.Equal(2f, logits[0]); // the caller's logits are untouched
    }

    [Fact]
    public void RepetitionPenaltyMultipliesNegativeLogits()
    {
        // CTRL rule: -1 × 2 = -2 < -1.5. Dividing instead would give -0.5 and keep id 0.
        var sampler = Make(new SamplingOptions { Temperature = 0, RepetitionPenalty = 2f });
        Assert.Equal(0, sampler.Sample([-1f, -1.5f], 2, []));
        Assert.Equal(1, sampler.Sample([-1f, -1.5f], 2, [0]));
    }

    [Fact]
    public void RepetitionPenaltyAppliesOncePerDistinctToken()
    {
        // 4 / 1.5 = 2.67 > 2.5 keeps id 0; penalising twice (4 / 2.25 = 1.78) would pick id 1.
        var sampler = Make(new SamplingOptions { Temperature = 0, RepetitionPenalty = 1.5f });
        Assert.Equal(0, sampler.Sample([4f, 2.5f], 2, [0, 0, 0]));
    }

    [Fact]
    public void RepetitionPenaltyOnlyLooksAtTheWindow()
    {
        var sampler = Make(new SamplingOptions { Temperature = 0, RepetitionPenalty = 2f, RepetitionWindow = 2 });
        float[] logits = [3f, 2f, 1f];
        Assert.Equal(0, sampler.Sample(logits, 3, [0, 1, 2])); // id 0 is outside the last two
        Assert.Equal(1, sampler.Sample(logits, 3, [1, 2, 0])); // 3 / 2 = 1.5 < 2
        var noWindow = Make(new SamplingOptions { Temperature = 0, RepetitionPenalty = 2f, RepetitionWindow = 0 });
        Assert.Equal(0, noWindow.Sample(logits, 3, [0]));
    }

    [Fact]
    public void RepetitionPenaltyIgnoresHistoryOutsideVocabulary()
    {
        var sampler = Make(new SamplingOptions { Temperature = 0, RepetitionPenalty = 2f });
        Assert.Equal(0, sampler.Sample([3f, 2f, 9f], 2, [-1, 2, 5]));
    }

    [Fact]
    public void RepetitionPenaltyShiftsSampledDistribution()
    {
        // Logits [ln 0.5, ln 0.5] with history [0] and penalty 2: ln 0.5 < 0 so it becomes 2 ln 0.5 = ln 0.25.
        // Probabilities become 0.25 / 0.75 = 1/3 and 2/3.
        var logits = LogOf([0.5f, 0.5f]);
        var counts = Counts(Make(new SamplingOptions { RepetitionPenalty = 2f }), logits, 60_000, history: [0]);
        Assert.InRange(counts[0] / 60_000.0, 1.0 / 3 - 0.01, 1.0 / 3 + 0.01);
    }

    // ---------- reproducibility ----------

    private static int[] Sequence(ulong? seed, int length)
    {
        var sampler = new Sampler(new SamplingOptions { Seed = seed, Temperature = 1.2f, TopP = 0.95f, TopK = 50 });
        var logits = new float[500];
        var rng = new Xoshiro256StarStar(99);
        for (var i = 0; i < logits.Length; i++)
            logits[i] = (float)(rng.NextDouble() * 4);
        var result = new int[length];
        for (var i = 0; i < length; i++)
            result[i] = sampler.Sample(logits, logits.Length, result.AsSpan(0, i));
        return result;
    }

    [Fact]
    public void SameSeedGivesSameSequence() => Assert.Equal(Sequence(2024, 200), Sequence(2024, 200));

    [Fact]
    public void DifferentSeedGivesDifferentSequence() => Assert.NotEqual(Sequence(2024, 200), Sequence(2025, 200));

    [Fact]
    public void NullSeedPicksARandomSeedAndReportsIt()
    {
        var a = new Sampler(new SamplingOptions());
        var b = new Sampler(new SamplingOptions());
        Assert.NotEqual(a.Seed, b.Seed);
        Assert.Equal(77UL, new Sampler(new SamplingOptions { Seed = 77 }).Seed);
        var replay = new Sampler(new SamplingOptions { Seed = a.Seed });
        float[] logits = [0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f];
        for (var i = 0; i < 50; i++)
            Assert.Equal(a.Sample(logits, 6, []), replay.Sample(logits, 6, []));
    }

    [Fact]
    public void PinnedDrawsForFixedSeed()
    {
        // Uniform logits over 10 tokens: the draw is floor(u × 10) for the pinned RNG outputs of seed 0
        // (0.601, 0.748, 0.103, 0.417, 0.733), so a change of RNG, draw order or bits per draw is caught.
        var sampler = new Sampler(new SamplingOptions { Seed = 0 });
        var logits = new float[10];
        int[] draws = [.. Enumerable.Range(0, 5).Select(_ => sampler.Sample(logits, 10, []))];
        Assert.Equal([6, 7, 1, 4, 7], draws);
    }

    // ---------- non-finite logits ----------

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void NonFiniteLogitsThrow(float bad)
    {
        foreach (var temperature in new[] { 0f, 1f })
        {
            var sampler = Make(new SamplingOptions { Temperature = temperature });
            var ex = Assert.Throws<RadladsException>(() => sampler.Sample([0f, bad, 1f], 3, []));
            Assert.Contains("non-finite logits", ex.Message);
            Assert.Contains("token 1", ex.Message);
        }
    }

    [Fact]
    public void AllNegativeInfinityThrows()
    {
        var sampler = Make(new SamplingOptions());
        var ex = Assert.Throws<RadladsException>(() =>
            sampler.Sample([float.NegativeInfinity, float.NegativeInfinity, 5f], 2, []));
        Assert.Contains("non-finite logits", ex.Message);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(1f)]
    [InlineData(100f)]
    public void AllNegativeInfinityButOnePicksThatOne(float temperature)
    {
        var sampler = Make(new SamplingOptions { Temperature = temperature, TopK = 3, TopP = 0.9f, MinP = 0.1f });
        float[] logits = [float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, -50f, float.NegativeInfinity];
        for (var i = 0; i < 200; i++)
            Assert.Equal(3, sampler.Sample(logits, 5, []));
    }

    [Fact]
    public void NegativeInfinityIsNeverDrawnEvenAtHighTemperature()
    {
        var sampler = Make(new SamplingOptions { Temperature = 1e6f });
        float[] logits = [0f, float.NegativeInfinity, 0f, float.NegativeInfinity];
        var counts = Counts(sampler, logits, 10_000);
        Assert.Equal(0, counts[1] + counts[3]);
    }

    [Fact]
    public void AllowedVocabularyOutOfRangeIsAnArgumentError()
    {
        var sampler = Make(new SamplingOptions());
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Sample([0f, 1f], 3, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Sample([0f, 1f], 0, []));
    }

    // ---------- validation ----------

    public static TheoryData<SamplingOptions, string> InvalidOptions => new()
    {
        { new SamplingOptions { Temperature = -0.1f }, "--temperature must be finite and >= 0, got -0.1" },
        { new SamplingOptions { Temperature = float.NaN }, "--temperature must be finite and >= 0, got NaN" },
        { new SamplingOptions { Temperature = float.PositiveInfinity }, "--temperature must be finite and >= 0, got Infinity" },
        { new SamplingOptions { TopK = -1 }, "--top-k must be >= 0 (0 disables), got -1" },
        { new SamplingOptions { TopP = 1.5f }, "--top-p must be in (0, 1], got 1.5" },
        { new SamplingOptions { TopP = 0f }, "--top-p must be in (0, 1], got 0" },
        { new SamplingOptions { TopP = float.NaN }, "--top-p must be in (0, 1], got NaN" },
        { new SamplingOptions { MinP = 1f }, "--min-p must be in [0, 1), got 1" },
        { new SamplingOptions { MinP = -0.5f }, "--min-p must be in [0, 1), got -0.5" },
        { new SamplingOptions { MinP = float.NaN }, "--min-p must be in [0, 1), got NaN" },
        { new SamplingOptions { RepetitionPenalty = 0f }, "--repetition-penalty must be finite and > 0 (1 disables), got 0" },
        { new SamplingOptions { RepetitionPenalty = -1f }, "--repetition-penalty must be finite and > 0 (1 disables), got -1" },
        { new SamplingOptions { RepetitionPenalty = float.PositiveInfinity }, "--repetition-penalty must be finite and > 0 (1 disables), got Infinity" },
        { new SamplingOptions { RepetitionWindow = -3 }, "--repetition-window must be >= 0, got -3" },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void ValidateRejectsInvalidOptions(SamplingOptions options, string message)
    {
        Assert.Equal(message, Assert.Throws<RadladsException>(options.Validate).Message);
        Assert.Equal(message, Assert.Throws<RadladsException>(() => new Sampler(options)).Message);
    }

    [Fact]
    public void ValidateAcceptsBoundaryValues()
    {
        new SamplingOptions().Validate();
        new SamplingOptions { Temperature = 0, TopK = 0, TopP = 1f, MinP = 0f, RepetitionPenalty = 1f, RepetitionWindow = 0 }.Validate();
        new SamplingOptions { TopP = 1e-6f, MinP = 0.999f, RepetitionPenalty = 0.5f, TopK = int.MaxValue }.Validate();
    }

    // ---------- allocation ----------

    [Fact]
    public void SamplingDoesNotAllocateAfterWarmUp()
    {
        var logits = new float[152_000];
        var rng = new Xoshiro256StarStar(5);
        for (var i = 0; i < logits.Length; i++)
            logits[i] = (float)(rng.NextDouble() * 20 - 10);
        int[] history = [1, 2, 3, 4, 5, 100, 151_999];
        var samplers = new[]
        {
            Make(new SamplingOptions { Temperature = 0, RepetitionPenalty = 1.3f }),
            Make(new SamplingOptions { Temperature = 0.8f, TopK = 40, TopP = 0.9f, MinP = 0.05f, RepetitionPenalty = 1.1f }),
            Make(new SamplingOptions { Temperature = 1f, TopP = 0.95f }),
            Make(new SamplingOptions { Temperature = 1f }),
        };
        foreach (var s in samplers)
        {
            for (var i = 0; i < 3; i++)
                s.Sample(logits, logits.Length, history);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var s in samplers)
        {
            for (var i = 0; i < 5; i++)
                s.Sample(logits, logits.Length, history);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
