using Radlads.Cpu;
using Radlads.Models;
using Radlads.Ops;
using Radlads.Tests.Cli;

namespace Radlads.Tests.Models;

/// <summary>The op profiler counts every call and changes nothing about the results.</summary>
public sealed class ProfilingTests
{
    [Fact]
    public void ProfiledRunGivesTheSameLogitsAndCountsEveryOp()
    {
        var tokens = GoldenLogitsTests.Tokens("rwkv7");
        using var plain = CausalLM.Load(Fixtures.Directory("rwkv7"), new CpuBackend());
        var backend = new ProfilingBackend(new CpuBackend());
        using var profiled = CausalLM.Load(Fixtures.Directory("rwkv7"), backend);
        using var s1 = plain.CreateState();
        using var s2 = profiled.CreateState();
        Assert.Equal(plain.Forward(s1, tokens, allLogits: true), profiled.Forward(s2, tokens, allLogits: true));
        var report = backend.Profile.Report().ToDictionary(r => r.Op, r => r.Calls);
        // One sequence, 3 layers: one recurrence per layer, the prompt's with its keys (Rwkv7RopeKeysWkv7, profiled as
        // that op: the wrapper must not expand it); two norms per layer, each run by the op after it (q/k/v with the
        // LoRA set, the whole MLP) with the residual add before it (the first layer's input norm without one), plus the
        // final norm alone; the last layer's MLP add stays alone.
        Assert.Equal(3, report[nameof(IOps.Rwkv7RopeKeysWkv7)]);
        Assert.False(report.ContainsKey(nameof(IOps.Wkv7)));
        Assert.False(report.ContainsKey(nameof(IOps.RopeExpand)));
        Assert.Equal(1, report[nameof(IOps.RmsNorm)]);
        Assert.False(report.ContainsKey(nameof(IOps.AddRmsNorm)));
        Assert.Equal(3, report[nameof(IOps.AddRmsNormMatMulSharedLoraSet)]);
        Assert.False(report.ContainsKey(nameof(IOps.AddRmsNormMatMulShared)));
        // The prompt's low-rank gate LoRA is its own LoraSet, run beside the recurrence (IOps.BeginBeside).
        Assert.Equal(3, report[nameof(IOps.LoraSet)]);
        Assert.Equal(3, report[nameof(IOps.AddRmsNormMlp)]);
        Assert.False(report.ContainsKey(nameof(IOps.AddRmsNormGateUpSwiGlu)));
        Assert.Equal(1, report[nameof(IOps.Add)]);
        Assert.Equal(1, report[nameof(IOps.Embedding)]);
        Assert.False(report.ContainsKey(nameof(IOps.Wkv6)));
        Assert.Contains("Rwkv7RopeKeysWkv7", backend.Profile.FormatReport(), StringComparison.Ordinal);
        Assert.True(tokens.Length > 1);
        // The prompt is one prefill: its three recurrences are the prefill token mixing, with their time.
        var (calls, total) = backend.Profile.PrefillMixing;
        Assert.Equal(3, calls);
        var prompt = backend.Profile.Report().Single(r => r.Op == nameof(IOps.Rwkv7RopeKeysWkv7));
        Assert.Equal(prompt.Total, total);
        // One decode step adds a recurrence per layer, but nothing to the prefill mixing: the fixture is gated without
        // GroupNorm, so each layer's one-token RoPE, keys, recurrence, scale and gate are one call (Rwkv7RopeKeysWkv7Rows),
        // profiled as that op (not as the two it composes, which the wrapper must not expand).
        profiled.Forward(s2, [tokens[0]]);
        Assert.DoesNotContain(backend.Profile.Report(), r => r.Op == nameof(IOps.Wkv7));
        Assert.Equal(3, backend.Profile.Report().Single(r => r.Op == nameof(IOps.Rwkv7RopeKeysWkv7Rows)).Calls);
        Assert.DoesNotContain(backend.Profile.Report(), r => r.Op == nameof(IOps.Wkv7DecodeScaleGate));
        Assert.Equal(3, backend.Profile.PrefillMixing.Calls);
        Assert.StartsWith("prefill token mixing (Wkv6, Wkv7, Rwkv7RopeKeysWkv7, Attention with T > 1): ", backend.Profile.FormatPrefillMixing(), StringComparison.Ordinal);
    }

    [Fact]
    public void ProfileOptionPrintsTheTable()
    {
        var (exit, _, error) = CliRunner.Run("score", "--model", Fixtures.Directory("qwen2"), "--tokens", "1,2,3", "--profile");
        Assert.True(exit == 0, error);
        Assert.Contains("Attention", error, StringComparison.Ordinal);
        Assert.Contains("mean µs", error, StringComparison.Ordinal);
    }
}
