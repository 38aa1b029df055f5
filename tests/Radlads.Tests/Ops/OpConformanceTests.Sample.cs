using Radlads.Generation;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// Sample: the backend must pick exactly the id of the CPU reference (<see cref="RowSampler"/>, the arithmetic of
/// <see cref="SamplingMath"/>) for the same logits and uniform numbers. There is no tolerance: a sampled id is right or
/// wrong. Every row gets its own uniform number, so one call checks many draws; ids are poisoned first.
/// </summary>
public abstract partial class OpConformanceTests
{
    private const int Poison = -12345;

    /// <summary>The reference ids, row by row.</summary>
    private static int[] ReferenceIds(float[] logits, int vocab, int allowed, SampleRow[] rows)
    {
        var sampler = new RowSampler();
        return [.. rows.Select((p, r) => sampler.Sample(logits.AsSpan(r * vocab, allowed), p, r, rows.Length))];
    }

    private int[] SampleIds(float[] logits, int vocab, int allowed, SampleRow[] rows)
    {
        var x = In(logits, rows.Length, vocab);
        var ids = Enumerable.Repeat(Poison, rows.Length + 1).ToArray();
        Ops.Sample(x, allowed, rows, ids.AsSpan(0, rows.Length));
        Assert.Equal(Poison, ids[^1]); // nothing written past the rows
        return ids[..^1];
    }

    private static SampleRow[] Rows(int count, float temperature, int topK, float topP, float minP, int seed)
    {
        var rng = new Xoshiro256StarStar((ulong)seed);
        return [.. Enumerable.Range(0, count).Select(_ => new SampleRow(temperature, topK, topP, minP, rng.NextDouble()))];
    }

    [Theory]
    [InlineData(1, 7, 7, 0f, 0, 1f, 0f, 4f)]                    // greedy, tiny vocabulary
    [InlineData(3, 151936, 151936, 0f, 0, 1f, 0f, 4f)]          // greedy at Qwen2.5's vocabulary
    [InlineData(16, 151936, 151936, 0.7f, 20, 0.8f, 0f, 4f)]    // Qwen2.5's generation_config defaults
    [InlineData(16, 151936, 151665, 1f, 0, 1f, 0f, 2f)]         // plain sampling over the whole allowed vocabulary
    [InlineData(8, 151936, 151936, 1f, 5000, 0.95f, 0f, 3f)]    // top-k above the heap limit (quickselect)
    [InlineData(24, 8192, 8192, 1f, 0, 1f, 0f, 1f)]             // RWKV-sized vocabulary, flat distribution
    [InlineData(24, 8192, 8000, 1.3f, 0, 0.95f, 0.05f, 3f)]     // allowed < V, min-p
    [InlineData(12, 33, 33, 1f, 1, 1f, 0f, 2f)]                 // top-k 1 is greedy
    [InlineData(12, 1000, 1000, 1f, 0, 1e-6f, 0f, 2f)]          // tiny top-p keeps the top token only
    [InlineData(32, 512, 500, 0.5f, 50, 0.9f, 0.01f, 5f)]       // every filter at once, many rows
    [InlineData(16, 300, 300, 1e-3f, 0, 1f, 0f, 2f)]            // near-greedy temperature: huge 1/T, weights underflow
    [InlineData(16, 300, 300, 50f, 0, 1f, 0f, 2f)]              // hot temperature: nearly uniform
    // CUDA and ILGPU serve greedy and top-k <= 1024 from per-block candidates (blocks of 1024 ids), the rest by whole-row select:
    [InlineData(6, 151936, 151936, 0.7f, 1, 0.8f, 0f, 4f)]      // top-k 1 at Qwen2.5's vocabulary
    [InlineData(3, 2049, 2049, 1f, 2, 1f, 0f, 1f)]              // V one past two blocks, top-k 2
    [InlineData(8, 5000, 4099, 0.9f, 1000, 1f, 0.02f, 3f)]      // top-k just below the bound, allowed not a block multiple
    [InlineData(4, 151936, 151936, 1f, 1024, 0.95f, 0f, 2f)]    // top-k at the bound
    [InlineData(4, 151936, 151936, 1f, 1025, 1f, 0f, 2f)]       // top-k just above the bound: whole-row path
    [InlineData(5, 7, 7, 1f, 20, 0.8f, 0f, 2f)]                 // top-k above V (fewer ids than one block)
    [InlineData(5, 1500, 1500, 1f, 1200, 0.9f, 0f, 2f)]         // top-k above one block's ids, below the bound
    [InlineData(12, 5000, 4500, 0.8f, 50, 0.9f, 0.02f, 3f)]     // top-k 50 over five blocks, every filter, allowed not a block multiple
    [InlineData(8, 3000, 3000, 1e-3f, 40, 1f, 0f, 2f)]          // near-greedy temperature on the candidates
    [InlineData(8, 3000, 2999, 50f, 500, 0.9f, 0f, 2f)]         // hot temperature on the candidates: hundreds of near-equal weights
    [InlineData(6, 4000, 4000, 1f, 2000, 0.9f, 0.01f, 3f)]      // top-k above the bound at a small vocabulary: whole-row path
    [InlineData(8, 151936, 151936, 0.9f, 32, 0.95f, 0.01f, 3f)] // top-k 32, the most the CUDA warp path serves, every filter
    [InlineData(8, 151936, 151665, 0.9f, 33, 0.95f, 0.01f, 3f)] // top-k 33: the CUDA radix path again
    [InlineData(6, 20, 20, 1f, 31, 0.9f, 0f, 2f)]               // top-k 31 above V: every id survives (fewer than k)
    [InlineData(8, 40000, 39999, 1e-3f, 17, 0.5f, 0.2f, 2f)]    // near-greedy top-k 17 over 40 blocks (the warp tree's uneven lists)
    public void SampleMatchesTheReference(int b, int vocab, int allowed, float temperature, int topK, float topP, float minP, float std)
    {
        var data = new TestData(100 + b + vocab);
        var logits = data.Normal(b * vocab, std);
        var rows = Rows(b, temperature, topK, topP, minP, b * 31 + vocab);
        var expected = ReferenceIds(logits, vocab, allowed, rows);
        var actual = SampleIds(logits, vocab, allowed, rows);
        Assert.Equal(expected, actual);
        Assert.All(actual, id => Assert.InRange(id, 0, allowed - 1));
        if (temperature == 0f || topK == 1 || topP <= 1e-6f)
        {
            // These settings are greedy: the lowest id holding the row's largest logit.
            for (int r = 0; r < b; r++)
            {
                var row = logits.AsSpan(r * vocab, allowed);
                Assert.Equal(row.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(row)), actual[r]);
            }
        }
    }

    [Fact]
    public void SampleBreaksTiesByTheLowerIdEverywhere()
    {
        // Row 0: ties at the top (greedy takes id 1). Row 1: -0 and +0 tie (id 0). Rows 2-5: all logits equal, top-k 3
        // keeps ids 0..2 and the draw walks them in id order; u picks the first, second, third. Row 6: 1-ulp neighbours.
        const int v = 6;
        float up = MathF.BitIncrement(2f);
        float[] logits =
        [
            0f, 4f, 1f, 4f, 4f, -1f,
            -0f, 0f, 0f, -1f, -2f, -3f,
            1f, 1f, 1f, 1f, 1f, 1f,
            1f, 1f, 1f, 1f, 1f, 1f,
            1f, 1f, 1f, 1f, 1f, 1f,
            1f, 1f, 1f, 1f, 1f, 1f,
            2f, up, 2f, up, -5f, float.NegativeInfinity,
        ];
        SampleRow[] rows =
        [
            SampleRow.Greedy,
            SampleRow.Greedy,
            new(1f, 3, 1f, 0f, 0.0),
            new(1f, 3, 1f, 0f, 0.5),
            new(1f, 3, 1f, 0f, 0.9999999999999999),
            new(1f, 0, 0.5f, 0f, 0.99),     // top-p 0.5 of six equal tokens: the three lowest ids
            new(1f, 2, 1f, 0f, 0.75),       // top-k 2 of 1-ulp neighbours: ids 1 and 3 (the larger value), u picks 3
        ];
        var expected = ReferenceIds(logits, v, v, rows);
        Assert.Equal([1, 0, 0, 1, 2, 2, 3], expected);
        Assert.Equal(expected, SampleIds(logits, v, v, rows));
    }

    [Fact]
    public void SampleBreaksTiesAcrossBlocksByTheLowerId()
    {
        // V = 5000 spans five CUDA scan blocks of 1024 ids (the last one partial): equal logits in different blocks
        // must still go to the lower id, and a block with fewer finite logits than k pads its candidates.
        const int v = 5000;
        var data = new TestData(77);
        var noise = data.Normal(v, 0.5f);
        var logits = new float[9 * v];
        for (int r = 0; r < 9; r++)
        {
            noise.CopyTo(logits, r * v);
        }

        void Set(int row, int id, float value) => logits[row * v + id] = value;
        foreach (var id in new[] { 4000, 1500, 3000 })
        {
            Set(0, id, 9f);                              // greedy: the lowest of three tied maxima, blocks 3, 1, 2
        }

        foreach (var id in new[] { 4999, 2047, 1024, 1023 })
        {
            Set(1, id, 9f);                              // top-k 2 keeps 1023 and 1024 (a block edge); u = 0.75 picks 1024
        }

        Set(2, 2048, 9f);
        Set(2, 1025, 9f);                                // top-k 1 (T > 0): the lower id, 1025
        Array.Fill(logits, 1f, 3 * v, v);                // all equal, top-k 3: ids 0..2, u = 0.9 picks 2
        Array.Fill(logits, 1f, 4 * v, v);                // all equal, top-k 1024 (the bound): ids 0..1023, u = 0.5
        Array.Fill(logits, -1f, 5 * v, v);
        Set(5, 3000, -0f);
        Set(5, 2000, 0f);                                // greedy, -0 and +0 tie across blocks: 2000
        Array.Fill(logits, float.NegativeInfinity, 6 * v, 1024);
        Set(6, 7, 3f);                                   // block 0 has one finite logit; top-k 50
        Array.Fill(logits, 9f, 7 * v + 990, 100);        // 100 equal maxima over a block edge; top-k 64, top-p 0.5
        Array.Fill(logits, 9f, 8 * v + 1000, 60);        // 60 equal maxima over a block edge; top-k 32 (warp path), u = 0.999
        SampleRow[] rows =
        [
            SampleRow.Greedy,
            new(1f, 2, 1f, 0f, 0.75),
            new(0.5f, 1, 1f, 0f, 0.9),
            new(1f, 3, 1f, 0f, 0.9),
            new(1f, 1024, 1f, 0f, 0.5),
            SampleRow.Greedy,
            new(1f, 50, 0.9f, 0f, 0.3),
            new(1f, 64, 0.5f, 0f, 0.99),
            new(1f, 32, 1f, 0f, 0.999),
        ];
        var expected = ReferenceIds(logits, v, v, rows);
        Assert.Equal([1500, 1024, 1025, 2], expected[..4]);
        Assert.InRange(expected[4], 0, 1023);
        Assert.Equal(2000, expected[5]);
        Assert.InRange(expected[7], 990, 1021); // top-p 0.5 of 64 equal maxima keeps the 32 lowest ids
        Assert.Equal(1031, expected[8]);        // top-k 32 of 60 equal maxima keeps ids 1000..1031; u = 0.999 takes the last
        Assert.Equal(expected, SampleIds(logits, v, v, rows));
    }

    [Fact]
    public void SampleTakesEachRowsOwnPathInOneCall()
    {
        // One call, every path of the GPU kernels side by side (their launch shapes depend on V only; each row's options
        // pick its path on the device): V = 3000 is three blocks, the last partial.
        const int v = 3000;
        var data = new TestData(41);
        SampleRow[] rows =
        [
            SampleRow.Greedy,
            new(0.8f, 1, 0.5f, 0f, 0.7),          // top-k 1: greedy however it is drawn
            new(0.7f, 20, 0.8f, 0f, 0.31),        // Qwen2.5's defaults
            new(1f, 50, 0.9f, 0.05f, 0.93),       // top-k 50 with top-p and min-p
            new(1.2f, 1024, 0.95f, 0f, 0.5),      // top-k at the bound
            new(1f, 1025, 1f, 0f, 0.12),          // just above it: whole-row path
            new(0.9f, 0, 0.8f, 0f, 0.77),         // top-p only: whole-row path
            new(2f, 7, 0.5f, 0f, 0.999),          // few candidates, a hot temperature
            new(1e-3f, 0, 1f, 0.1f, 0.4),         // near-greedy without top-k
            new(1f, 3000, 1f, 0f, 0.6),           // top-k = V
            new(1f, 32, 0.9f, 0.01f, 0.45),       // top-k 32: the CUDA warp path's bound
            new(1f, 33, 0.9f, 0.01f, 0.45),       // top-k 33: the CUDA radix path
        ];
        var logits = data.Normal(rows.Length * v, 3f);
        var expected = ReferenceIds(logits, v, v, rows);
        Assert.Equal(expected, SampleIds(logits, v, v, rows));
        for (int r = 0; r < 2; r++)
        {
            var row = logits.AsSpan(r * v, v);
            Assert.Equal(row.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(row)), expected[r]);
        }
    }

    [Theory]
    [InlineData(0f, 0)]   // greedy (the candidates' smallest key)
    [InlineData(1f, 50)]  // top-k on the candidates
    [InlineData(1f, 0)]   // whole-row path
    public void SampleChecksEveryBlockOfTheRow(float temperature, int topK)
    {
        // V = 3000 (three blocks). The lowest bad id is named whichever block holds it, on every path; -Infinity only is an
        // error; bad logits past the allowed vocabulary are ignored. Messages are the reference's, word for word.
        const int v = 3000;
        var rows = Rows(3, temperature, topK, 0.9f, 0f, 5);
        void Same(float[] logits, int allowed)
        {
            var reference = Assert.Throws<RadladsException>(() => ReferenceIds(logits, v, allowed, rows));
            var backend = Assert.Throws<RadladsException>(() => SampleIds(logits, v, allowed, rows));
            Assert.Equal(reference.Message, backend.Message);
        }

        var logits = new TestData(12).Normal(3 * v, 2f);
        logits[v + 2900] = float.NaN;
        logits[v + 1100] = float.PositiveInfinity;       // the lowest bad id of row 1, in the middle block
        logits[(2 * v) + 5] = float.NaN;                 // row 2 is never reached: row 1 is reported first
        Same(logits, v);
        Assert.Contains("+Infinity for token 1100 in row 1", Assert.Throws<RadladsException>(() => SampleIds(logits, v, v, rows)).Message, StringComparison.Ordinal);

        var late = new TestData(13).Normal(3 * v, 2f);
        late[2999] = float.NaN;                          // the last id of the partial last block
        Same(late, v);
        Assert.Contains("NaN for token 2999 in row 0", Assert.Throws<RadladsException>(() => SampleIds(late, v, v, rows)).Message, StringComparison.Ordinal);
        Assert.Equal(ReferenceIds(late, v, 2999, rows), SampleIds(late, v, 2999, rows)); // past the allowed vocabulary: ignored

        var banned = new TestData(14).Normal(3 * v, 2f);
        Array.Fill(banned, float.NegativeInfinity, 2 * v, v);
        Same(banned, v);
        Assert.Contains("all 3000 are -Infinity in row 2", Assert.Throws<RadladsException>(() => SampleIds(banned, v, v, rows)).Message, StringComparison.Ordinal);

        // Banned everywhere but one id in the last block: every other block has no finite logit.
        Array.Fill(banned, float.NegativeInfinity, 0, 2 * v);
        banned[2500] = -7f;
        banned[v + 2047] = 1f;
        banned[(2 * v) + 2999] = 0f;
        Assert.Equal([2500, 2047, 2999], SampleIds(banned, v, v, rows));
        Assert.Equal(ReferenceIds(banned, v, v, rows), SampleIds(banned, v, v, rows));
    }

    [Fact]
    public void SampleDrawsOnlyAllowedAndUnbannedTokens()
    {
        // -Infinity bans a token; ids at or above the allowed vocabulary are never drawn, whatever their logits.
        const int v = 10;
        var logits = new float[] { float.NegativeInfinity, 1f, float.NegativeInfinity, 0.5f, float.NegativeInfinity, 0f, 0f, 0f, 50f, 60f };
        var rows = Rows(40, 1f, 0, 1f, 0f, 7);
        var tiled = Enumerable.Range(0, rows.Length).SelectMany(_ => logits).ToArray();
        var actual = SampleIds(tiled, v, 8, rows);
        Assert.Equal(ReferenceIds(tiled, v, 8, rows), actual);
        Assert.All(actual, id => Assert.Contains(id, new[] { 1, 3, 5, 6, 7 }));
        Assert.Contains(3, actual); // the draws are not all greedy
    }

    [Theory]
    [InlineData(float.NaN, "NaN for token 5")]
    [InlineData(float.PositiveInfinity, "+Infinity for token 5")]
    public void SampleRejectsNonFiniteLogitsNamingTheToken(float bad, string message)
    {
        var logits = new TestData(9).Normal(2 * 9);
        logits[9 + 5] = bad;
        logits[9 + 7] = bad; // a later bad id is not the one named
        var rows = Rows(2, 1f, 0, 1f, 0f, 3);
        var e = Assert.Throws<RadladsException>(() => SampleIds(logits, 9, 9, rows));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Contains("in row 1", e.Message, StringComparison.Ordinal);

        // Greedy rows are checked too, and a bad logit beyond the allowed vocabulary is ignored.
        var greedy = new TestData(10).Normal(9);
        greedy[8] = bad;
        Assert.Equal(ReferenceIds(greedy, 9, 8, [SampleRow.Greedy]), SampleIds(greedy, 9, 8, [SampleRow.Greedy]));
        greedy[2] = bad;
        Assert.Throws<RadladsException>(() => SampleIds(greedy, 9, 8, [SampleRow.Greedy]));
    }

    [Fact]
    public void SampleRejectsARowOfBannedTokens()
    {
        var logits = Enumerable.Repeat(float.NegativeInfinity, 16).ToArray();
        var e = Assert.Throws<RadladsException>(() => SampleIds(logits, 16, 16, Rows(1, 0.8f, 0, 1f, 0f, 1)));
        Assert.Contains("all 16 are -Infinity", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SampleRejectsBadArguments()
    {
        var x = In(new float[12], 2, 6);
        var ids = new int[2];
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Sample(x, 7, [SampleRow.Greedy, SampleRow.Greedy], ids));
        Assert.Throws<ArgumentException>(() => Ops.Sample(x, 6, [SampleRow.Greedy], ids));
        Assert.Throws<ArgumentException>(() => Ops.Sample(x, 6, [SampleRow.Greedy, new(1f, 0, 1f, 0f, 1.0)], ids));
        Assert.Throws<ArgumentException>(() => Ops.Sample(x, 6, [SampleRow.Greedy, new(1f, 0, 0f, 0f, 0.5)], ids));
    }
}
