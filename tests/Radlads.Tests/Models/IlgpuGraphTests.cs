using Radlads.Generation;
using Radlads.Ilgpu;
using Radlads.IO;
using Radlads.Models;
using Radlads.Ops;
using Radlads.Tests.Ops;

namespace Radlads.Tests.Models;

/// <summary>
/// Decode steps recorded as CUDA graphs on ILGPU's CUDA accelerator and replayed (issue #5): the same ILGPU kernels on
/// the same inputs, so logits, sampled tokens and state equal the eager path's bit for bit (see Tolerances: recorded
/// steps are compared exactly), including positions past the recording's and past the end of a RoPE table (which
/// records the step again). Host calls inside a recording fail clearly; the CPU simulator never records.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuGraphTests
{
    public static TheoryData<string> RecurrentFixtures => new(Fixtures.Names.Where(n => !n.StartsWith("qwen2", StringComparison.Ordinal)));

    private static IlgpuBackend Cuda()
    {
        var backend = IlgpuAvailability.Backend(IlgpuDeviceKind.Cuda);
        Assert.True(backend.CaptureUnsupported is null, backend.CaptureUnsupported);
        backend.CaptureEnabled = true;
        return backend;
    }

    [Theory]
    [MemberData(nameof(RecurrentFixtures))]
    public void RecordedDecodeEqualsEagerDecodeBitForBitPastTheRopeTablesEnd(string name)
    {
        using var backend = Cuda();
        backend.FuseNormGemv = true; // off by default (slower); its group counter must survive replays all the same
        // RoPE tables of 8 positions, doubling: the 24 tokens cross a table's end at positions 8 and 16, where the
        // recording no longer covers the position and is made again. Recorded first, so the tables start small.
        backend.RopeTableMinimum = 8;
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var tokens = GoldenLogitsTests.Tokens(name);
        var (graphLogits, graphState) = CudaGraphTests.Decode(model, tokens);
        Assert.Equal(tokens.Length, backend.Replays);
        Assert.Equal(model.Config.UseRope ? 3 : 1, backend.Recordings);
        backend.CaptureEnabled = false;
        var (eagerLogits, eagerState) = CudaGraphTests.Decode(model, tokens);
        Assert.Equal(tokens.Length, backend.Replays);
        Assert.Equal(eagerLogits, graphLogits);
        Assert.Equal(eagerState, graphState);
        // The residual norms ran inside the q and gate/up GEMVs (FusedKernels.NormGemvOutIn, NormGateUpSwiGlu), whose
        // group counter must be back at 0 after every launch and replay for the recorded logits to match. A mixer with
        // token shift reads the norm's output itself (no fused q), and gate/up fuses only where the device's
        // GateUpSwiGlu plan does (not for the fixtures' small MLP on a GPU with many SMs).
        if (!model.Config.UseTokenShift)
        {
            Assert.True(backend.NormGemvLaunches > 0, "no fused norm + GEMV kernel ran");
        }
        CudaModelTests.Report($"{name}: {backend.Recordings} recordings, {backend.Replays} replays on {backend.Description}");
    }

    [Theory]
    [MemberData(nameof(CudaGraphTests.AttentionFixtures), MemberType = typeof(CudaGraphTests))]
    public void RecordedAttentionDecodeEqualsEagerDecodeBitForBitPastACacheGrowth(string name)
    {
        using var backend = Cuda();
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var tokens = CudaGraphTests.PastTheFirstCacheGrowth(name);
        backend.CaptureEnabled = false;
        var (eagerLogits, eagerState) = CudaGraphTests.PrefillThenDecode(model, tokens);
        Assert.Equal(0, backend.Replays);
        backend.CaptureEnabled = true;
        var (graphLogits, graphState) = CudaGraphTests.PrefillThenDecode(model, tokens);
        // 75 decode steps at positions 5 .. 79: recorded at 5 (KV cache of 64 rows; the eager prefill made RoPE tables
        // of 4,096 positions) and again at 64, where the caches grew to 128 rows.
        Assert.Equal(tokens.Length - 5, backend.Replays);
        Assert.Equal(2, backend.Recordings);
        Assert.Equal(eagerLogits, graphLogits);
        Assert.Equal(eagerState, graphState);
        CudaModelTests.Report($"{name}: {backend.Recordings} recordings, {backend.Replays} replays on {backend.Description}");
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void RecordedSampleEqualsEagerSampleAndLogitReplaysSkipIt(string name)
    {
        using var backend = Cuda();
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var prompt = GoldenLogitsTests.Tokens(name)[..4];
        var options = new SamplingOptions { Temperature = 1.2f, TopK = 50, TopP = 0.95f, Seed = 5 };
        backend.CaptureEnabled = false;
        var eager = DeviceSamplingTests.OnDevice(model, prompt, options, 32);
        Assert.Equal(0, backend.Replays);
        backend.CaptureEnabled = true;
        var recorded = DeviceSamplingTests.OnDevice(model, prompt, options, 32);
        Assert.Equal(31, backend.Replays);
        Assert.Equal(eager, recorded);

        // One state, one recording: replays that return logits (the Sample skipped) between replays that sample, and a
        // vocabulary change that re-records; the tokens and logits equal a run without recording.
        backend.CaptureEnabled = false;
        var (eagerTokens, eagerLogits) = CudaGraphTests.MixedSampledAndLogitReplays(model, prompt, options);
        backend.CaptureEnabled = true;
        long before = backend.Recordings;
        var (graphTokens, graphLogits) = CudaGraphTests.MixedSampledAndLogitReplays(model, prompt, options);
        Assert.Equal(2, backend.Recordings - before);
        Assert.Equal(eagerTokens, graphTokens);
        Assert.Equal(eagerLogits, graphLogits);
        CudaModelTests.Report($"{name} recorded sampled decode on ILGPU: {string.Join(",", recorded)}");
    }

    /// <summary>
    /// The synthetic tiny RAD-RWKV7 and RAD-RWKV6 with every LoRA rank 32, so every branch runs on the two LoraSet kernels
    /// (split K with the last-group reduction and its counters inside the graph): recorded steps equal eager ones bit
    /// for bit.
    /// </summary>
    [Theory]
    [MemberData(nameof(CudaGraphTests.RecurrentArchitectures), MemberType = typeof(CudaGraphTests))]
    public void RecordedDecodeWithEveryLoraBranchOnTheKernelsEqualsEager(Architecture architecture)
    {
        using var backend = Cuda();
        var config = SyntheticModel.Config("tiny", architecture);
        using var model = SyntheticModel.Create(config, backend, seed: 5);
        int[] tokens = [.. Enumerable.Range(0, 16).Select(i => ((i * 37) + 11) % config.VocabSize)];
        backend.CaptureEnabled = false;
        var (eagerLogits, eagerState) = CudaGraphTests.Decode(model, tokens);
        Assert.Equal(0, backend.Replays);
        Assert.True(backend.LoraKernelBranches > 0, "no LoRA branch took the kernels");
        backend.CaptureEnabled = true;
        var (graphLogits, graphState) = CudaGraphTests.Decode(model, tokens);
        Assert.True(backend.Replays > 0, "no decode step was replayed");
        Assert.Equal(eagerLogits, graphLogits);
        Assert.Equal(eagerState, graphState);
    }

    [Fact]
    public void PrefillThenInterleavedRecordedDecodeMatchesTheReference()
    {
        using var backend = Cuda();
        // Small tables: both sequences' recordings outlive tables the other one grows (kept until no recording reads them).
        backend.RopeTableMinimum = 8;
        const string Name = "rwkv7";
        var (reference, _) = Npy.ReadFloat64(Path.Combine(Fixtures.Directory(Name), "logits.npy"));
        using var model = CausalLM.Load(Fixtures.Directory(Name), backend);
        var tokens = GoldenLogitsTests.Tokens(Name);
        int v = model.Config.VocabSize;
        using var state = model.CreateState();
        var logits = model.Forward(state, tokens[..5], allLogits: true).ToList();
        using var other = model.CreateState();
        model.Forward(other, tokens[..3]);
        for (int i = 5; i < tokens.Length; i++)
        {
            logits.AddRange(model.Forward(state, [tokens[i]]));
            model.Forward(other, [tokens[i]]);
        }

        Assert.Equal(2L * (tokens.Length - 5), backend.Replays);
        Assert.Equal(tokens.Length * v, logits.Count);
        double error = Compare.MaxErrorRelativeToMax(reference, logits.ToArray());
        Assert.True(error <= Tolerances.GoldenLogitsRelativeToMax, $"max error {error:G3} × max |logit|");
    }

    [Fact]
    public void AHostCallWhileRecordingThrowsClearlyAndLeavesTheBackendUsable()
    {
        using var backend = Cuda();
        using var model = CausalLM.Load(Fixtures.Directory("rwkv7"), backend);
        using var scratch = backend.Allocate(4);
        using var logits = backend.Allocate(1, model.Config.VocabSize);
        var host = new float[4];
        Action[] calls =
        [
            () => backend.Download(scratch, host),
            () => backend.Upload(host, scratch),
            backend.Synchronize,
            backend.ReleaseCachedMemory,
            () => backend.Ops.Sample(logits, model.Config.VocabSize, [SampleRow.Greedy], new int[1]),
        ];
        foreach (var call in calls)
        {
            var e = Assert.Throws<InvalidOperationException>(() => backend.Capture([1], 0, call).Dispose());
            Assert.Contains("while a step is being recorded", e.Message, StringComparison.Ordinal);
        }

        // A tensor with its own buffer (not from the block cache) freed inside a recording: refused, and still alive.
        var weight = OwnBuffer(backend);
        var freed = Assert.Throws<InvalidOperationException>(() => backend.Capture([1], 0, weight.Dispose).Dispose());
        Assert.Contains("while a step is being recorded", freed.Message, StringComparison.Ordinal);
        weight.Dispose();

        // Still usable: a recorded decode equals the eager one.
        var tokens = GoldenLogitsTests.Tokens("rwkv7")[..6];
        var (graphLogits, _) = CudaGraphTests.Decode(model, tokens);
        Assert.Equal(tokens.Length, backend.Replays);
        backend.CaptureEnabled = false;
        var (eagerLogits, _) = CudaGraphTests.Decode(model, tokens);
        Assert.Equal(eagerLogits, graphLogits);
    }

    /// <summary>A tensor with its own device buffer (a weight), whose free needs a stream wait.</summary>
    private static unsafe Tensor OwnBuffer(IlgpuBackend backend)
    {
        var values = new float[2];
        fixed (float* p = values)
        {
            return backend.LoadWeight(new Radlads.Checkpoints.TensorData("w", Radlads.Checkpoints.DType.F32, [2], (byte*)p, 8));
        }
    }

    [Fact]
    public void DisposingARecordedStateGivesItsScratchBack()
    {
        using var backend = Cuda();
        using var model = CausalLM.Load(Fixtures.Directory("rwkv7"), backend);
        var state = model.CreateState();
        model.Forward(state, [1]);
        model.Forward(state, [2]);
        Assert.Equal(2, backend.Replays);
        long before = backend.CachedBytes;
        state.Dispose();
        Assert.True(backend.CachedBytes > before, $"cache {before} -> {backend.CachedBytes} bytes after disposing a recorded state");
    }

    [Fact]
    public void RadladsIlgpuGraphsZeroGivesTheEagerPath()
    {
        Assert.SkipWhen(IlgpuAvailability.Unavailable(IlgpuDeviceKind.Cuda) is not null, IlgpuAvailability.Unavailable(IlgpuDeviceKind.Cuda) ?? "");
        string? saved = Environment.GetEnvironmentVariable("RADLADS_ILGPU_GRAPHS");
        IlgpuBackend backend;
        try
        {
            Environment.SetEnvironmentVariable("RADLADS_ILGPU_GRAPHS", "0");
            backend = new IlgpuBackend(IlgpuDeviceKind.Cuda);
        }
        finally
        {
            Environment.SetEnvironmentVariable("RADLADS_ILGPU_GRAPHS", saved);
        }

        using (backend)
        {
            Assert.False(backend.CaptureEnabled);
            Assert.Contains("decode graphs off (RADLADS_ILGPU_GRAPHS=0)", backend.Description, StringComparison.Ordinal);
            using var model = CausalLM.Load(Fixtures.Directory("rwkv7"), backend);
            var tokens = GoldenLogitsTests.Tokens("rwkv7")[..6];
            var (eagerLogits, _) = CudaGraphTests.Decode(model, tokens);
            Assert.Equal(0, backend.Replays);
            Assert.Equal(0, backend.Recordings);
            backend.CaptureEnabled = true;
            var (graphLogits, _) = CudaGraphTests.Decode(model, tokens);
            Assert.Equal(tokens.Length, backend.Replays);
            Assert.Equal(eagerLogits, graphLogits);
        }
    }

    [Fact]
    public void TheCpuSimulatorDoesNotRecord()
    {
        using var backend = IlgpuAvailability.Backend(IlgpuDeviceKind.Cpu);
        Assert.False(backend.CaptureEnabled);
        Assert.Contains("CUDA accelerator", backend.CaptureUnsupported, StringComparison.Ordinal);
        var on = Assert.Throws<InvalidOperationException>(() => backend.CaptureEnabled = true);
        Assert.Contains("CUDA accelerator", on.Message, StringComparison.Ordinal);
        var capture = Assert.Throws<InvalidOperationException>(() => backend.Capture([1], 0, () => { }));
        Assert.Contains("CUDA accelerator", capture.Message, StringComparison.Ordinal);
        using var model = CausalLM.Load(Fixtures.Directory("rwkv7"), backend);
        var tokens = GoldenLogitsTests.Tokens("rwkv7")[..3];
        var (logits, _) = CudaGraphTests.Decode(model, tokens);
        Assert.Equal(tokens.Length * model.Config.VocabSize, logits.Length);
        Assert.All(logits, l => Assert.True(float.IsFinite(l)));
        Assert.Equal(0, backend.Replays);
        Assert.Equal(0, backend.Recordings);
    }
}
