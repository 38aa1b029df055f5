using Radlads.Cpu;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// The CPU's batched recurrences (<see cref="IBackwardOps.Wkv6Sequences"/> and friends, training's windows in one call)
/// equal one single-sequence call per sequence bit for bit, with outputs poisoned first and every element checked; a
/// layout that does not split into the sequences is a clear error.
/// </summary>
public sealed class RecurrenceSequencesTests
{
    private readonly CpuBackend cpu = new();
    private readonly CpuBackwardOps back = new();

    private Tensor T(float[] values, params int[] shape) => cpu.FromFloats(values, shape);

    private Tensor Poisoned(params int[] shape) =>
        cpu.FromFloats(Enumerable.Repeat(float.NaN, shape.Aggregate(1, (x, y) => x * y)).ToArray(), shape);

    private float[] Read(Tensor t)
    {
        var values = new float[t.ElementCount];
        cpu.Download(t, values);
        return values;
    }

    private static void Same(float[] expected, float[] actual, string what)
    {
        Assert.All(actual, x => Assert.True(float.IsFinite(x), what + " has a non-finite element"));
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(1, 1, 1, 4)]
    [InlineData(3, 17, 2, 8)]
    [InlineData(4, 33, 3, 16)]
    public void Wkv6SequencesEqualPerSequenceCalls(int sequences, int length, int heads, int n)
    {
        var data = new TestData(301);
        int a = heads * n, t = sequences * length, states = sequences * heads * n * n;
        var (r, k, v, g) = (T(data.Normal(t * a), t, a), T(data.Normal(t * a, 0.5f), t, a), T(data.Normal(t * a), t, a), T(data.Normal(t * a), t, a));
        var w = T(data.Uniform(t * a, (float)Math.Exp(-5), 1f), t, a);
        var s0 = data.Normal(states);
        var (batchedState, singleState, zero) = (T(s0, sequences * heads, n, n), T(s0, sequences * heads, n, n), cpu.Allocate(sequences * heads, n, n));
        float scale = 1f / MathF.Sqrt(n);
        var batched = Enumerable.Range(0, 5).Select(_ => Poisoned(t, a)).ToArray();
        var single = Enumerable.Range(0, 5).Select(_ => Poisoned(t, a)).ToArray();
        back.Wkv6Sequences(sequences, r, k, v, w, batchedState, scale, batched[0]);
        back.Wkv6BackwardSequences(sequences, r, k, v, w, zero, scale, g, batched[1], batched[2], batched[3], batched[4]);
        for (int i = 0; i < sequences; i++)
        {
            Tensor W(Tensor x) => x.Rows(i * length, length);
            cpu.Ops.Wkv6(W(r), W(k), W(v), W(w), singleState.Rows(i * heads, heads), scale, W(single[0]));
            back.Wkv6Backward(W(r), W(k), W(v), W(w), zero.Rows(i * heads, heads), scale, W(g), null,
                W(single[1]), W(single[2]), W(single[3]), W(single[4]), null);
        }

        Same(Read(singleState), Read(batchedState), "final states");
        Assert.NotEqual(s0, Read(batchedState));
        string[] names = ["y", "dr", "dk", "dv", "dw"];
        for (int o = 0; o < names.Length; o++)
        {
            Same(Read(single[o]), Read(batched[o]), names[o]);
        }
    }

    [Theory]
    [InlineData(1, 1, 1, 4)]
    [InlineData(3, 17, 2, 8)]
    [InlineData(4, 33, 3, 16)]
    public void Wkv7SequencesEqualPerSequenceCalls(int sequences, int length, int heads, int n)
    {
        var data = new TestData(302);
        int a = heads * n, t = sequences * length, states = sequences * heads * n * n;
        Tensor Normal(float std = 1f) => T(data.Normal(t * a, std), t, a);
        var (r, k, v, g) = (Normal(), Normal(0.3f), Normal(), Normal());
        var w = T(data.Uniform(t * a, 0.545f, 1f), t, a);
        var (ra, rb) = (Normal(0.1f), Normal(0.1f));
        var s0 = data.Normal(states, 0.5f);
        var (batchedState, singleState, zero) = (T(s0, sequences * heads, n, n), T(s0, sequences * heads, n, n), cpu.Allocate(sequences * heads, n, n));
        var batched = Enumerable.Range(0, 7).Select(_ => Poisoned(t, a)).ToArray();
        var single = Enumerable.Range(0, 7).Select(_ => Poisoned(t, a)).ToArray();
        back.Wkv7Sequences(sequences, r, w, k, v, ra, rb, batchedState, batched[0]);
        back.Wkv7BackwardSequences(sequences, r, w, k, v, ra, rb, zero, g, batched[1], batched[2], batched[3], batched[4], batched[5], batched[6]);
        for (int i = 0; i < sequences; i++)
        {
            Tensor W(Tensor x) => x.Rows(i * length, length);
            cpu.Ops.Wkv7(W(r), W(w), W(k), W(v), W(ra), W(rb), singleState.Rows(i * heads, heads), W(single[0]));
            back.Wkv7Backward(W(r), W(w), W(k), W(v), W(ra), W(rb), zero.Rows(i * heads, heads), W(g), null,
                W(single[1]), W(single[2]), W(single[3]), W(single[4]), W(single[5]), W(single[6]), null);
        }

        Same(Read(singleState), Read(batchedState), "final states");
        Assert.NotEqual(s0, Read(batchedState));
        string[] names = ["y", "dr", "dw", "dk", "dv", "da", "db"];
        for (int o = 0; o < names.Length; o++)
        {
            Same(Read(single[o]), Read(batched[o]), names[o]);
        }
    }

    [Fact]
    public void UnevenSplitIsAClearError()
    {
        var rows = cpu.Allocate(10, 8);
        var state = cpu.Allocate(6, 4, 4);
        var e = Assert.Throws<ArgumentException>(() => back.Wkv6Sequences(3, rows, rows, rows, rows, state, 1f, rows));
        Assert.Contains("3 sequences", e.Message);
        Assert.Throws<ArgumentException>(() => back.Wkv7Sequences(4, rows, rows, rows, rows, rows, rows, cpu.Allocate(4, 4, 4), rows));
        Assert.Throws<ArgumentException>(() => back.Wkv7BackwardSequences(0, rows, rows, rows, rows, rows, rows, state, rows,
            rows, rows, rows, rows, rows, rows));
    }
}
