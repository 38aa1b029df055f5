using Radlads.Cpu;
using Radlads.Models;
using Radlads.Tests.Ops;

namespace Radlads.Tests.Models;

/// <summary>
/// The state carries everything: prefill equals token-by-token decode, a prompt split in two equals one pass,
/// sequences batched together equal sequences run alone, and a snapshot resumes exactly.
/// </summary>
public sealed class StateConsistencyTests
{
    private static void Same(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double error = Compare.MaxErrorRelativeToMax(expected.Select(v => (double)v).ToArray(), actual);
        Assert.True(error <= Tolerances.ConsistencyRelativeToMax, $"{what}: max error {error:G3} × max |logit|");
    }

    private static CausalLM Load(string name) => CausalLM.Load(Fixtures.Directory(name), new CpuBackend());

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void PrefillEqualsTokenByTokenDecode(string name)
    {
        var tokens = GoldenLogitsTests.Tokens(name);
        using var model = Load(name);
        using var prefillState = model.CreateState();
        var prefill = model.Forward(prefillState, tokens, allLogits: true);
        using var stepState = model.CreateState();
        var steps = tokens.SelectMany(t => model.Forward(stepState, [t])).ToArray();
        Same(prefill, steps, name);
        Assert.Equal(tokens.Length, prefillState.Position);
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void SplitPromptWithCarriedStateEqualsOnePass(string name)
    {
        var tokens = GoldenLogitsTests.Tokens(name);
        using var model = Load(name);
        using var whole = model.CreateState();
        var expected = model.Forward(whole, tokens, allLogits: true);
        foreach (int split in new[] { 1, 7, tokens.Length - 1 })
        {
            using var state = model.CreateState();
            var first = model.Forward(state, tokens.AsSpan(0, split), allLogits: true);
            var second = model.Forward(state, tokens.AsSpan(split), allLogits: true);
            Same(expected, [.. first, .. second], $"{name} split at {split}");
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void BatchedSequencesEqualSequencesRunAlone(string name)
    {
        var tokens = GoldenLogitsTests.Tokens(name);
        using var model = Load(name);
        int[][] prompts = [tokens[..5], tokens[3..20], [tokens[9]]];
        // The third step mixes decode rows with a prompt chunk, as a continuous-batching server does: the two leading
        // one-token sequences take the batched decode ops, the chunk the per-sequence ones.
        int[][] mixed = [[tokens[1]], [tokens[2]], tokens[20..24]];
        var alone = prompts.Select((p, i) =>
        {
            using var s = model.CreateState();
            var prefill = model.Forward(s, p, allLogits: true);
            var step = model.Forward(s, [tokens[0]]);
            return prefill.Concat(step).Concat(model.Forward(s, mixed[i], allLogits: true)).ToArray();
        }).ToArray();

        var states = prompts.Select(_ => model.CreateState()).ToArray();
        var batched = model.Forward(states, prompts, allLogits: true);
        // A second batched step: one new token per sequence, as batched decode does.
        var next = model.Forward(states, prompts.Select(_ => new[] { tokens[0] }).ToArray());
        var third = model.Forward(states, mixed, allLogits: true);
        for (int i = 0; i < prompts.Length; i++)
        {
            Same(alone[i], [.. batched[i], .. next[i], .. third[i]], $"{name} sequence {i}");
            Assert.Equal(prompts[i].Length + 1 + mixed[i].Length, states[i].Position);
            states[i].Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void BatchedForwardSamplePicksTheArgmaxOfEachSequence(string name)
    {
        var tokens = GoldenLogitsTests.Tokens(name);
        using var model = Load(name);
        int[][] prompts = [tokens[..5], [tokens[7]], tokens[3..20], [tokens[9]]];
        var states = prompts.Select(_ => model.CreateState()).ToArray();
        var copies = new List<SequenceState>();
        try
        {
            model.Forward(states, prompts);
            copies.AddRange(states.Select(s => s.Clone()));
            int[][] step = [[tokens[1]], [tokens[2]], [tokens[3]], tokens[10..13]];
            var logits = model.Forward(copies, step);
            var greedy = Enumerable.Repeat(Radlads.Ops.SampleRow.Greedy, states.Length).ToArray();
            var ids = model.ForwardSample(states, step, greedy, model.Config.VocabSize);
            for (int i = 0; i < states.Length; i++)
            {
                int best = 0;
                for (int v = 1; v < logits[i].Length; v++)
                {
                    best = logits[i][v] > logits[i][best] ? v : best;
                }

                Assert.Equal(best, ids[i]);
                Assert.Equal(copies[i].Position, states[i].Position);
            }

            // Ids past the allowed vocabulary are never picked.
            var limited = model.ForwardSample(states, [[ids[0]], [ids[1]], [ids[2]], [ids[3]]], greedy, 3);
            Assert.All(limited, id => Assert.InRange(id, 0, 2));
            Assert.Throws<ArgumentException>(() => model.ForwardSample(states, [[1], [2], [3], [4]], greedy[..2], 3));
        }
        finally
        {
            foreach (var s in states.Concat(copies))
            {
                s.Dispose();
            }
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void SnapshotsResumeExactlyInMemoryAndFromAFile(string name)
    {
        var tokens = GoldenLogitsTests.Tokens(name);
        using var model = Load(name);
        using var state = model.CreateState();
        model.Forward(state, tokens[..10]);
        using var copy = state.Clone();
        var path = Path.Combine(Path.GetTempPath(), $"radlads-state-{Guid.NewGuid():N}.bin");
        try
        {
            state.Save(path);
            var expected = model.Forward(state, tokens[10..], allLogits: true);
            // The clone was not advanced by the original's forward.
            Assert.Equal(10, copy.Position);
            Same(expected, model.Forward(copy, tokens[10..], allLogits: true), $"{name} clone");
            using var loaded = SequenceState.Load(model, path);
            Assert.Equal(10, loaded.Position);
            Same(expected, model.Forward(loaded, tokens[10..], allLogits: true), $"{name} file");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AStateFileOfAnotherModelIsRefused()
    {
        using var rwkv = Load("rwkv7");
        using var qwen = Load("qwen2");
        using var state = qwen.CreateState();
        qwen.Forward(state, [1, 2, 3]);
        using var stream = new MemoryStream();
        state.Save(stream);
        stream.Position = 0;
        var e = Assert.Throws<RadladsException>(() => SequenceState.Load(rwkv, stream, "saved.state"));
        Assert.Contains("saved.state", e.Message, StringComparison.Ordinal);
        Assert.Contains("qwen2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ATruncatedStateFileIsRefused()
    {
        using var model = Load("rwkv6");
        using var state = model.CreateState();
        model.Forward(state, [5, 6]);
        using var stream = new MemoryStream();
        state.Save(stream);
        var cut = new MemoryStream(stream.ToArray()[..(int)(stream.Length / 2)]);
        var e = Assert.Throws<RadladsException>(() => SequenceState.Load(model, cut, "half.state"));
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RecurrentStateStaysTheSameSizeWhileTheKvCacheGrows()
    {
        using var rwkv = Load("rwkv7");
        using var qwen = Load("qwen2");
        using var r = rwkv.CreateState();
        using var q = qwen.CreateState();
        long rBefore = r.SizeBytes;
        var tokens = Enumerable.Range(0, 200).Select(i => i % 380).ToArray();
        rwkv.Forward(r, tokens);
        qwen.Forward(q, tokens);
        Assert.Equal(rBefore, r.SizeBytes);
        Assert.True(q.SizeBytes >= 200L * qwen.MemoryCost.CacheBytesPerToken, $"KV cache {q.SizeBytes} bytes for 200 tokens");
    }
}
