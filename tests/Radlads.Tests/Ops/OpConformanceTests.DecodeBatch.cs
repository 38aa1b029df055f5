namespace Radlads.Tests.Ops;

/// <summary>
/// The multi-sequence decode ops (IOps.RopeRows, ScatterRows, AttentionDecode, Wkv6Decode, Wkv7Decode,
/// TokenShiftRows): B sequences, one token each, every sequence at its own position / cache length / state,
/// compared row by row with the float64 single-sequence definitions. B = 70 crosses the CUDA launch table (64 rows).
/// </summary>
public abstract partial class OpConformanceTests
{
    /// <summary>Position (or cache length − 1) of sequence b: 0, a few long ones past 256 (the CUDA split size), mixed.</summary>
    private static int DecodePosition(int b, int longest) => b switch
    {
        0 => 0,
        1 => Math.Min(longest - 1, 299),
        _ => (b * 37) % longest,
    };

    [Theory]
    [InlineData(1, 2, 16)]
    [InlineData(2, 3, 8)]
    [InlineData(5, 1, 128)]
    [InlineData(33, 2, 64)]
    [InlineData(70, 1, 8)]
    public void RopeRows(int sequences, int heads, int n)
    {
        var x = new TestData(40).Normal(sequences * heads * n);
        var positions = Enumerable.Range(0, sequences).Select(b => b == 1 ? 4093 : (b * 611) % 5000).ToArray();
        var tensor = In(x, sequences, heads * n);
        Ops.RopeRows(tensor, heads, n, positions, 1e6f);
        int width = heads * n;
        var expected = Enumerable.Range(0, sequences)
            .SelectMany(b => NaiveOps.Rope(x[(b * width)..((b + 1) * width)], 1, heads, n, positions[b], 1e6)).ToArray();
        Check(expected, tensor, "rope_rows");
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(5, 67)]
    [InlineData(70, 16)]
    public void ScatterRows(int sequences, int width)
    {
        var data = new TestData(41);
        var x = data.Normal(sequences * width);
        var capacities = Enumerable.Range(0, sequences).Select(b => 1 + (b % 4)).ToArray();
        var rows = Enumerable.Range(0, sequences).Select(b => b % capacities[b]).ToArray();
        var initial = capacities.Select(c => data.Normal(c * width)).ToArray();
        var destinations = initial.Select((d, b) => In(d, capacities[b], width)).ToArray();
        Ops.ScatterRows(In(x, sequences, width), destinations, rows);
        for (int b = 0; b < sequences; b++)
        {
            var expected = initial[b].Select(v => (double)v).ToArray();
            for (int j = 0; j < width; j++)
            {
                expected[(rows[b] * width) + j] = x[(b * width) + j];
            }

            Check(expected, destinations[b], $"scatter_rows destination {b}");
        }
    }

    [Theory]
    [InlineData(1, 8, 4, 0)]
    [InlineData(1, 67, 5, 4)]
    [InlineData(3, 16, 9, 2)]
    [InlineData(5, 130, 12, 7)]
    public void AppendKv(int tokens, int width, int capacity, int position)
    {
        var data = new TestData(43);
        var k = data.Normal(tokens * width);
        var v = data.Normal(tokens * width);
        var initialK = data.Normal(capacity * width);
        var initialV = data.Normal(capacity * width);
        var kc = In(initialK, capacity, width);
        var vc = In(initialV, capacity, width);
        Ops.AppendKv(In(k, tokens, width), In(v, tokens, width), kc, vc, position);
        // Rows position .. position + T − 1 hold k and v exactly; every other row keeps its value.
        double[] Expected(float[] initial, float[] rows)
        {
            var expected = initial.Select(x => (double)x).ToArray();
            for (int i = 0; i < rows.Length; i++)
            {
                expected[(position * width) + i] = rows[i];
            }

            return expected;
        }

        Check(Expected(initialK, k), kc, "append_kv keys");
        Check(Expected(initialV, v), vc, "append_kv values");
    }

    [Fact]
    public void AppendKvPastTheCacheSaysToReserve()
    {
        var kc = In(new float[4 * 8], 4, 8);
        var vc = In(new float[4 * 8], 4, 8);
        var k = In(new float[2 * 8], 2, 8);
        var e = Assert.Throws<ArgumentException>(() => Ops.AppendKv(k, k, kc, vc, 3));
        Assert.Contains("reserve the cache", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, 2, 2, 8, 40)]
    [InlineData(2, 4, 2, 16, 300)]
    [InlineData(5, 4, 1, 64, 700)]
    [InlineData(33, 6, 3, 32, 320)]
    [InlineData(5, 2, 2, 128, 600)]
    [InlineData(70, 2, 1, 8, 50)]
    public void AttentionDecode(int sequences, int heads, int kvHeads, int n, int longest)
    {
        var data = new TestData(42);
        int width = heads * n;
        int kvWidth = kvHeads * n;
        var q = data.Normal(sequences * width);
        var lengths = Enumerable.Range(0, sequences).Select(b => DecodePosition(b, longest) + 1).ToArray();
        var keys = lengths.Select(l => data.Normal(l * kvWidth)).ToArray();
        var values = lengths.Select(l => data.Normal(l * kvWidth)).ToArray();
        // Each cache has spare rows past the used ones, as a real cache does; they must be ignored.
        var kc = keys.Select((k, b) => In([.. k, .. data.Normal(3 * kvWidth, 100f)], lengths[b] + 3, kvWidth)).ToArray();
        var vc = values.Select((v, b) => In([.. v, .. data.Normal(3 * kvWidth, 100f)], lengths[b] + 3, kvWidth)).ToArray();
        var y = Out(sequences, width);
        Ops.AttentionDecode(In(q, sequences, width), kc, vc, lengths, heads, kvHeads, n, y);
        var expected = Enumerable.Range(0, sequences).SelectMany(b =>
            NaiveOps.Attention(q[(b * width)..((b + 1) * width)], keys[b], values[b], 1, heads, kvHeads, n, lengths[b] - 1)).ToArray();
        Check(expected, y, "attention_decode");
    }

    [Theory]
    [InlineData(1, 1, 4)]
    [InlineData(2, 3, 8)]
    [InlineData(5, 2, 64)]
    [InlineData(33, 2, 16)]
    [InlineData(70, 1, 8)]
    public void Wkv6Decode(int sequences, int heads, int n)
    {
        var data = new TestData(43);
        int a = heads * n;
        var r = data.Normal(sequences * a);
        var k = data.Normal(sequences * a, 0.5f);
        var v = data.Normal(sequences * a);
        var w = data.Uniform(sequences * a, (float)Math.Exp(-5), 1f);
        var s0 = Enumerable.Range(0, sequences).Select(_ => data.Normal(heads * n * n)).ToArray();
        var states = s0.Select(s => In(s, heads, n, n)).ToArray();
        var y = Out(sequences, a);
        double scale = 1 / Math.Sqrt(n);
        Ops.Wkv6Decode(In(r, sequences, a), In(k, sequences, a), In(v, sequences, a), In(w, sequences, a), states, (float)scale, y);
        var expected = new List<double>();
        for (int b = 0; b < sequences; b++)
        {
            var expectedState = s0[b].Select(x => (double)x).ToArray();
            var rows = (b * a)..((b + 1) * a);
            expected.AddRange(NaiveOps.Wkv6(r[rows], k[rows], v[rows], w[rows], expectedState, 1, heads, n, scale));
            Check(expectedState, states[b], $"wkv6_decode state {b}", recurrence: true);
        }

        Check([.. expected], y, "wkv6_decode output", recurrence: true);
    }

    /// <summary>
    /// Random inputs of one RAD-RWKV7 decode step for <paramref name="sequences"/> sequences of H heads of N: r, w (decay
    /// in [0.545, 1]), k, v, the removal key a = −κ/|κ| and replacement b = κ/|κ| ⊙ iclr per head, and each state.
    /// </summary>
    private static (float[] R, float[] W, float[] K, float[] V, float[] Removal, float[] Replacement, float[][] States) Wkv7DecodeInputs(
        TestData data, int sequences, int heads, int n)
    {
        int count = sequences * heads * n;
        var r = data.Normal(count);
        var w = data.Uniform(count, 0.545f, 1f);
        var k = data.Normal(count, 0.3f);
        var v = data.Normal(count);
        var (removal, replacement) = data.Wkv7Keys(count, n);

        var states = Enumerable.Range(0, sequences).Select(_ => data.Normal(heads * n * n, 0.5f)).ToArray();
        return (r, w, k, v, removal, replacement, states);
    }

    [Theory]
    [InlineData(1, 3, 64)]
    [InlineData(2, 2, 40)]
    [InlineData(5, 2, 128)]
    [InlineData(33, 2, 16)]
    [InlineData(70, 1, 8)]
    public void Wkv7Decode(int sequences, int heads, int n)
    {
        var data = new TestData(44);
        int a = heads * n;
        int count = sequences * a;
        var (r, w, k, v, removal, replacement, s0) = Wkv7DecodeInputs(data, sequences, heads, n);
        var states = s0.Select(s => In(s, heads, n, n)).ToArray();
        var y = Out(sequences, a);
        Ops.Wkv7Decode(In(r, sequences, a), In(w, sequences, a), In(k, sequences, a), In(v, sequences, a),
            In(removal, sequences, a), In(replacement, sequences, a), states, y);
        var expected = new List<double>();
        for (int b = 0; b < sequences; b++)
        {
            var expectedState = s0[b].Select(x => (double)x).ToArray();
            var rows = (b * a)..((b + 1) * a);
            expected.AddRange(NaiveOps.Wkv7(r[rows], w[rows], k[rows], v[rows], removal[rows], replacement[rows], expectedState, 1, heads, n));
            Check(expectedState, states[b], $"wkv7_decode state {b}", recurrence: true);
        }

        Check([.. expected], y, "wkv7_decode output", recurrence: true);
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(5, 67)]
    [InlineData(70, 16)]
    public void TokenShiftRows(int sequences, int c)
    {
        var data = new TestData(45);
        var x = data.Normal(sequences * c);
        var shifts = Enumerable.Range(0, sequences).Select(_ => data.Normal(c)).ToArray();
        var states = shifts.Select(s => In(s, 1, c)).ToArray();
        var delta = Out(sequences, c);
        Ops.TokenShiftRows(In(x, sequences, c), states, delta);
        Check([.. x.Select((v, i) => shifts[i / c][i % c] - (double)v)], delta, "token_shift_rows delta");
        for (int b = 0; b < sequences; b++)
        {
            Check([.. x[(b * c)..((b + 1) * c)].Select(v => (double)v)], states[b], $"token_shift_rows state {b}");
        }
    }

    [Fact]
    public void DecodeOpsRejectARowCountThatDoesNotMatchTheSequences()
    {
        var x = In(new float[16], 2, 8);
        var e = Assert.Throws<ArgumentException>(() => Ops.RopeRows(x, 1, 8, [0, 1, 2], 1e4f));
        Assert.Contains("one row per sequence", e.Message);
        var cache = In(new float[8], 1, 8);
        var q = In(new float[8], 1, 8);
        var y = Out(1, 8);
        e = Assert.Throws<ArgumentException>(() => Ops.AttentionDecode(q, [cache], [cache], [2], 1, 1, 8, y));
        Assert.Contains("length 2", e.Message);
    }
}
