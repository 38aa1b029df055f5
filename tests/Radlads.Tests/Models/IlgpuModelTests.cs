using Radlads.Generation;
using Radlads.Ilgpu;
using Radlads.IO;
using Radlads.Models;
using Radlads.Tests.Ops;

namespace Radlads.Tests.Models;

/// <summary>Whether an ILGPU accelerator of a kind can be opened here, decided once per test run and kind.</summary>
public static class IlgpuAvailability
{
    private static readonly Dictionary<IlgpuDeviceKind, Lazy<string?>> Reasons = Enum.GetValues<IlgpuDeviceKind>()
        .ToDictionary(k => k, k => new Lazy<string?>(() =>
        {
            try
            {
                new IlgpuBackend(k).Dispose();
                return null;
            }
            catch (RadladsException e)
            {
                return e.Message;
            }
        }));

    /// <summary>Null when a backend of <paramref name="kind"/> can be created, else why not (the backend's own message).</summary>
    public static string? Unavailable(IlgpuDeviceKind kind) => Reasons[kind].Value;

    /// <summary>A new backend, or a skip of the running test with the reason there is none.</summary>
    public static IlgpuBackend Backend(IlgpuDeviceKind kind)
    {
        Assert.SkipWhen(Unavailable(kind) is not null, Unavailable(kind) ?? "");
        return new IlgpuBackend(kind);
    }
}

/// <summary>
/// The six golden fixtures through the ILGPU backend: logits within the same bound as the CPU against the references
/// nobody here wrote, prefill equal to token-by-token decode, batched sequences and snapshots equal to the CPU, and
/// 64 greedy tokens identical to the CPU backend's. One subclass per accelerator.
/// </summary>
public abstract class IlgpuModelTests(IlgpuDeviceKind kind)
{
    /// <summary>Greedy tokens compared with the CPU backend (issue #5).</summary>
    public const int GreedyTokens = 64;

    private IlgpuBackend Backend() => IlgpuAvailability.Backend(kind);

    private static float[] Prefill(CausalLM model, int[] tokens)
    {
        using var state = model.CreateState();
        return model.Forward(state, tokens, allLogits: true);
    }

    private static float[] TokenByToken(CausalLM model, int[] tokens)
    {
        using var state = model.CreateState();
        var logits = tokens.SelectMany(t => model.Forward(state, [t])).ToArray();
        Assert.Equal(tokens.Length, state.Position);
        return logits;
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void OnePassMatchesTheReference(string name)
    {
        using var backend = Backend();
        var (reference, _) = Npy.ReadFloat64(Path.Combine(Fixtures.Directory(name), "logits.npy"));
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        double error = Compare.MaxErrorRelativeToMax(reference, Prefill(model, GoldenLogitsTests.Tokens(name)));
        CudaModelTests.Report($"{name} one pass: max error {error:G3} × max |logit| on {backend.Description}");
        Assert.True(error <= Tolerances.GoldenLogitsRelativeToMax, $"{name} on ILGPU {kind}: max error {error:G3} × max |logit|");
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void TokenByTokenDecodeMatchesTheReference(string name)
    {
        using var backend = Backend();
        var (reference, _) = Npy.ReadFloat64(Path.Combine(Fixtures.Directory(name), "logits.npy"));
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        double error = Compare.MaxErrorRelativeToMax(reference, TokenByToken(model, GoldenLogitsTests.Tokens(name)));
        CudaModelTests.Report($"{name} token by token: max error {error:G3} × max |logit| on ILGPU {kind}");
        Assert.True(error <= Tolerances.GoldenLogitsRelativeToMax, $"{name} on ILGPU {kind}: max error {error:G3} × max |logit|");
    }

    /// <summary>
    /// The synthetic tiny RAD-RWKV7 and RAD-RWKV6 (every LoRA rank 32, so every branch takes ILGPU's two LoraSet kernels;
    /// the fixtures' ranks are mostly 4/12/20, only rwkv7's rank-8 decay does): token-by-token decode matches the CPU.
    /// </summary>
    [Theory]
    [MemberData(nameof(CudaGraphTests.RecurrentArchitectures), MemberType = typeof(CudaGraphTests))]
    public void DecodeWithEveryLoraBranchOnTheKernelsMatchesTheCpu(Radlads.Models.Architecture architecture)
    {
        using var backend = Backend();
        var config = SyntheticModel.Config("tiny", architecture);
        using var model = SyntheticModel.Create(config, backend, seed: 5);
        int[] tokens = [.. Enumerable.Range(0, 6).Select(i => ((i * 37) + 11) % config.VocabSize)];
        var (logits, state) = CudaGraphTests.Decode(model, tokens);
        Assert.True(backend.LoraKernelBranches > 0, "no LoRA branch took the kernels");
        using var cpu = SyntheticModel.Create(config, new Radlads.Cpu.CpuBackend(), seed: 5);
        var (cpuLogits, cpuState) = CudaGraphTests.Decode(cpu, tokens);
        double error = Compare.MaxErrorRelativeToMax(cpuLogits.Select(v => (double)v).ToArray(), logits);
        double stateError = Compare.MaxErrorRelativeToMax(cpuState.Select(v => (double)v).ToArray(), state);
        CudaModelTests.Report($"tiny {architecture}: ILGPU {kind} vs CPU decode, logits {error:G3}, state {stateError:G3} × max");
        Assert.True(error <= Tolerances.ConsistencyRelativeToMax, $"logits: max error {error:G3} × max |logit|");
        Assert.True(stateError <= Tolerances.ConsistencyRelativeToMax, $"state: max error {stateError:G3} × max |state|");
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void PrefillEqualsTokenByTokenDecode(string name)
    {
        using var backend = Backend();
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var tokens = GoldenLogitsTests.Tokens(name);
        var prefill = Prefill(model, tokens);
        double error = Compare.MaxErrorRelativeToMax(prefill.Select(v => (double)v).ToArray(), TokenByToken(model, tokens));
        CudaModelTests.Report($"{name} prefill vs token by token: {error:G3} × max |logit| on ILGPU {kind}");
        Assert.True(error <= Tolerances.ConsistencyRelativeToMax, $"{name}: max error {error:G3} × max |logit|");
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void BatchedSequencesAndSnapshotsMatchTheCpu(string name)
    {
        using var backend = Backend();
        using var device = CausalLM.Load(Fixtures.Directory(name), backend);
        using var cpu = CausalLM.Load(Fixtures.Directory(name), new Radlads.Cpu.CpuBackend());
        var tokens = GoldenLogitsTests.Tokens(name);
        int[][] prompts = [tokens[..5], tokens[3..20], [tokens[9]]];
        float[][] Run(CausalLM model)
        {
            var states = prompts.Select(_ => model.CreateState()).ToArray();
            var first = model.Forward(states, prompts, allLogits: true);
            // Snapshot sequence 1, continue both copies by one token: they must agree.
            using var snapshot = states[1].Clone();
            var next = model.Forward(states, prompts.Select(_ => new[] { tokens[0] }).ToArray());
            var resumed = model.Forward(snapshot, [tokens[0]]);
            // A continuous-batching step: two decode rows (batched ops) and a prompt chunk (per-sequence ops).
            var mixed = model.Forward(states, [[tokens[1]], [tokens[2]], tokens[20..24]], allLogits: true);
            foreach (var s in states)
            {
                s.Dispose();
            }

            return [.. first, .. next, resumed, .. mixed];
        }

        var expected = Run(cpu);
        var actual = Run(device);
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Compare.MaxErrorRelativeToMax(expected[i].Select(v => (double)v).ToArray(), actual[i]);
            Assert.True(error <= Tolerances.ConsistencyRelativeToMax, $"{name} part {i}: max error {error:G3} × max |logit|");
        }
    }

    /// <summary>Greedy decoding (the sampler at temperature 0, no stop tokens) from the fixture's prompt.</summary>
    internal static int[] Greedy(CausalLM model, int[] prompt, int count)
    {
        var sampler = new Sampler(new SamplingOptions { Temperature = 0 });
        using var state = model.CreateState();
        var logits = model.Forward(state, prompt);
        var generated = new List<int>();
        for (int i = 0; i < count; i++)
        {
            int token = sampler.Sample(logits, model.Config.VocabSize, []);
            generated.Add(token);
            if (i + 1 < count)
            {
                logits = model.Forward(state, [token]);
            }
        }

        return [.. generated];
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void GreedyGenerationIsTheCpuBackendsForSixtyFourTokens(string name)
    {
        using var backend = Backend();
        using var device = CausalLM.Load(Fixtures.Directory(name), backend);
        using var cpu = CausalLM.Load(Fixtures.Directory(name), new Radlads.Cpu.CpuBackend());
        var prompt = GoldenLogitsTests.Tokens(name)[..8];
        var expected = Greedy(cpu, prompt, GreedyTokens);
        var actual = Greedy(device, prompt, GreedyTokens);
        CudaModelTests.Report($"{name} greedy on ILGPU {kind}: {string.Join(",", actual)}");
        Assert.Equal(expected, actual);
        // On ILGPU's CUDA accelerator decode steps are recorded graphs (the prompt is one eager pass; Qwen2's steps too,
        // recorded again when the KV cache grows past 64 rows); nowhere else is anything replayed.
        Assert.Equal(backend.CaptureEnabled ? GreedyTokens - 1 : 0, backend.Replays);
    }
}

/// <summary>The fixtures on ILGPU's CPU simulator: every machine, in CI.</summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuCpuModelTests() : IlgpuModelTests(IlgpuDeviceKind.Cpu);

/// <summary>The fixtures on ILGPU's CUDA accelerator; skipped with the reason where there is no GPU.</summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuCudaModelTests() : IlgpuModelTests(IlgpuDeviceKind.Cuda);
