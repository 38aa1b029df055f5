using System.Runtime.InteropServices;
using Radlads.Checkpoints;
using Radlads.Cuda;
using Radlads.IO;
using Radlads.Models;
using Radlads.Tests.Ops;

namespace Radlads.Tests.Models;

/// <summary>Whether this machine can run the CUDA backend, decided once per test run.</summary>
public static class CudaAvailability
{
    private static readonly Lazy<string?> Reason = new(() =>
    {
        try
        {
            new CudaBackend().Dispose();
            return null;
        }
        catch (RadladsException e)
        {
            return e.Message;
        }
    });

    /// <summary>Null when a CUDA backend can be created, else why not (the backend's own message).</summary>
    public static string? Unavailable => Reason.Value;

    /// <summary>A new CUDA backend, or a skip of the running test with the reason there is none.</summary>
    public static CudaBackend Backend()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        return new CudaBackend();
    }

    /// <summary>
    /// A backend whose MatMuls with bf16 weights all run on cuBLASLt from two rows (<paramref name="gemmLibrary"/>;
    /// skips when it is absent) and whose prefill attention takes the tensor cores (bf16 operands) where it can, or
    /// one that runs both on the built-in fp32 kernels: the bf16 prefill path and the fp32 one, each held to its bound.
    /// </summary>
    public static CudaBackend Backend(bool gemmLibrary)
    {
        var backend = Backend();
        if (gemmLibrary && !backend.HasGemmLibrary)
        {
            string status = backend.GemmStatus;
            backend.Dispose();
            Assert.Skip(status);
        }

        backend.GemmMinRows = gemmLibrary ? 2 : int.MaxValue;
        backend.AttentionTensorCores = gemmLibrary && backend.Device.ComputeMajor >= 8;
        return backend;
    }
}

/// <summary>The golden fixtures × the two prefill GEMM paths (built-in fp32 kernels, cuBLASLt with bf16 activations).</summary>
public static class GemmPaths
{
    public static TheoryData<string, bool> All
    {
        get
        {
            var data = new TheoryData<string, bool>();
            foreach (var name in Fixtures.Names)
            {
                data.Add(name, false);
                data.Add(name, true);
            }

            return data;
        }
    }

    /// <summary>The logits bound of a path against an fp32 reference: bf16 activations widen it.</summary>
    public static double Bound(bool gemmLibrary, double fp32) => gemmLibrary ? Tolerances.Bf16GemmLogitsRelativeToMax : fp32;
}

/// <summary>
/// The six golden fixtures through the CUDA backend: logits within the same bound as the CPU against the
/// references nobody here wrote, and prefill equal to token-by-token decode (which runs other kernels: the
/// T = 1 GEMV instead of the tiled matmul). Prefill runs on both GEMM paths: the built-in fp32 kernels keep the
/// fp32 bounds; cuBLASLt rounds the activations to bf16, so its prefill is held to
/// <see cref="Tolerances.Bf16GemmLogitsRelativeToMax"/> against the references, decode and the CPU alike.
/// </summary>
public sealed class CudaModelTests
{
    /// <summary>A measured number for the test log (shown with the runner's -showLiveOutput).</summary>
    internal static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

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
    [MemberData(nameof(GemmPaths.All), MemberType = typeof(GemmPaths))]
    public void OnePassMatchesTheReference(string name, bool gemmLibrary)
    {
        using var backend = CudaAvailability.Backend(gemmLibrary);
        var (reference, _) = Npy.ReadFloat64(Path.Combine(Fixtures.Directory(name), "logits.npy"));
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        double error = Compare.MaxErrorRelativeToMax(reference, Prefill(model, GoldenLogitsTests.Tokens(name)));
        double bound = GemmPaths.Bound(gemmLibrary, Tolerances.GoldenLogitsRelativeToMax);
        Report($"{name} one pass ({(gemmLibrary ? "cuBLASLt" : "fp32 kernels")}): max error {error:G3} × max |logit| on {backend.Description}");
        Assert.True(error <= bound, $"{name} on {backend.Device.Name}: max error {error:G3} × max |logit|");
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void TokenByTokenDecodeMatchesTheReference(string name)
    {
        using var backend = CudaAvailability.Backend();
        var (reference, _) = Npy.ReadFloat64(Path.Combine(Fixtures.Directory(name), "logits.npy"));
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        double error = Compare.MaxErrorRelativeToMax(reference, TokenByToken(model, GoldenLogitsTests.Tokens(name)));
        Report($"{name} token by token: max error {error:G3} × max |logit| on {backend.Device.Name}");
        Assert.True(error <= Tolerances.GoldenLogitsRelativeToMax, $"{name} on {backend.Device.Name}: max error {error:G3} × max |logit|");
    }

    [Theory]
    [MemberData(nameof(GemmPaths.All), MemberType = typeof(GemmPaths))]
    public void PrefillEqualsTokenByTokenDecode(string name, bool gemmLibrary)
    {
        using var backend = CudaAvailability.Backend(gemmLibrary);
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var tokens = GoldenLogitsTests.Tokens(name);
        var prefill = Prefill(model, tokens);
        double error = Compare.MaxErrorRelativeToMax(prefill.Select(v => (double)v).ToArray(), TokenByToken(model, tokens));
        Report($"{name} prefill ({(gemmLibrary ? "cuBLASLt" : "fp32 kernels")}) vs token by token: {error:G3} × max |logit| on {backend.Device.Name}");
        Assert.True(error <= GemmPaths.Bound(gemmLibrary, Tolerances.ConsistencyRelativeToMax), $"{name}: max error {error:G3} × max |logit|");
    }

    [Theory]
    [MemberData(nameof(GemmPaths.All), MemberType = typeof(GemmPaths))]
    public void BatchedSequencesAndSnapshotsMatchTheCpu(string name, bool gemmLibrary)
    {
        using var backend = CudaAvailability.Backend(gemmLibrary);
        using var gpu = CausalLM.Load(Fixtures.Directory(name), backend);
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
        var actual = Run(gpu);
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Compare.MaxErrorRelativeToMax(expected[i].Select(v => (double)v).ToArray(), actual[i]);
            Assert.True(error <= GemmPaths.Bound(gemmLibrary, Tolerances.ConsistencyRelativeToMax), $"{name} part {i}: max error {error:G3} × max |logit|");
        }
    }
}

/// <summary>Tests that read the device's free memory: they run alone, after every parallel test.</summary>
[CollectionDefinition(nameof(CudaMemoryCollection), DisableParallelization = true)]
public sealed class CudaMemoryCollection;

[Collection(nameof(CudaMemoryCollection))]
public sealed class CudaMemoryTests
{
    private const long Vocabulary = 131_072;
    private const long MiB = 1 << 20;

    [Fact]
    public void DisposingAModelFreesItsDeviceMemory()
    {
        using var backend = CudaAvailability.Backend();
        // The qwen2 fixture with a 131,072-token vocabulary in f32: embedding and head are 32 MiB each.
        using var copy = new FixtureCopy("qwen2");
        copy.EditConfig(text => text.Replace("\"vocab_size\": 400", $"\"vocab_size\": {Vocabulary}", StringComparison.Ordinal));
        copy.EditTensors(t =>
        {
            if (t.Name is not ("model.embed_tokens.weight" or "lm_head.weight"))
            {
                return t;
            }

            var bits = MemoryMarshal.Cast<byte, ushort>(t.Data);
            var values = new float[Vocabulary * t.Shape[1]];
            Bf16.ToSingle(bits, values.AsSpan(0, bits.Length));
            return t with { DType = DType.F32, Shape = [(int)Vocabulary, t.Shape[1]], Data = MemoryMarshal.AsBytes(values.AsSpan()).ToArray() };
        });

        var device = backend.Device;
        backend.Synchronize();
        long liveBefore = device.LiveBytes;
        var (freeBefore, total) = device.MemoryInfo();
        long weights = 2 * Vocabulary * 64 * sizeof(float);
        using (var model = CausalLM.Load(copy.Directory, backend))
        {
            using var state = model.CreateState();
            var logits = model.Forward(state, GoldenLogitsTests.Tokens("qwen2")[..6]);
            Assert.Equal(Vocabulary, logits.Length);
            var (freeLoaded, _) = device.MemoryInfo();
            CudaModelTests.Report($"loading a model with {weights / MiB} MiB of weights took {(freeBefore - freeLoaded) / MiB} MiB of device memory");
            Assert.True(freeBefore - freeLoaded >= weights, $"loading took {(freeBefore - freeLoaded) / MiB} MiB of {total / MiB} MiB, expected at least {weights / MiB}");
            Assert.True(device.LiveBytes - liveBefore >= weights);
        }

        // Activations and scratch went back to the backend's block cache; give those to the driver too.
        Assert.True(backend.CachedBytes > 0, "the forward pass left no blocks in the cache");
        backend.ReleaseCachedMemory();
        Assert.Equal(0, backend.CachedBytes);
        var (freeAfter, _) = device.MemoryInfo();
        CudaModelTests.Report($"free before load {freeBefore / MiB} MiB, after dispose {freeAfter / MiB} MiB of {total / MiB} MiB; live bytes {liveBefore} -> {device.LiveBytes}");
        Assert.Equal(liveBefore, device.LiveBytes);
        // The driver may keep a little bookkeeping; 64 MiB of weights must come back.
        Assert.True(freeBefore - freeAfter <= 4 * MiB, $"{(freeBefore - freeAfter) / (double)MiB:F1} MiB still in use after dispose");
    }
}

/// <summary>
/// Decode steps recorded as CUDA graphs and replayed: the same kernels on the same inputs, so the logits and
/// the state must equal those of the eager path bit for bit, token after token.
/// </summary>
public sealed class CudaGraphTests
{
    public static TheoryData<string> RecurrentFixtures => new(Fixtures.Names.Where(n => !n.StartsWith("qwen2", StringComparison.Ordinal)));

    /// <summary>The tokens one at a time from a fresh state: every step's logits, and the final state's tensors.</summary>
    internal static (float[] Logits, float[] State) Decode(CausalLM model, int[] tokens)
    {
        using var state = model.CreateState();
        var logits = tokens.SelectMany(t => model.Forward(state, [t])).ToArray();
        return (logits, StateValues(model, state));
    }

    /// <summary>
    /// One state, one recording: replays that return logits (the Sample skipped) between replays that sample, and a
    /// vocabulary change after six steps that records again. Returns the tokens and the logits.
    /// </summary>
    internal static (int[] Tokens, float[] Logits) MixedSampledAndLogitReplays(CausalLM model, int[] prompt, Radlads.Generation.SamplingOptions options)
    {
        var sampler = new Radlads.Generation.Sampler(options);
        using var state = model.CreateState();
        var tokens = new List<int> { model.ForwardSample(state, prompt, sampler.NextRow(), model.Config.VocabSize) };
        var logits = new List<float>();
        for (int i = 0; i < 12; i++)
        {
            logits.AddRange(model.Forward(state, [tokens[^1]]));
            int allowed = i < 6 ? model.Config.VocabSize : model.Config.VocabSize - 3;
            tokens.Add(model.ForwardSample(state, [tokens[^1]], sampler.NextRow(), allowed));
        }

        return ([.. tokens], [.. logits]);
    }

    /// <summary>Every tensor of every layer of <paramref name="state"/>, downloaded, in layer order.</summary>
    internal static float[] StateValues(CausalLM model, SequenceState state) =>
        [.. state.Layers.SelectMany(l => l.Tensors).SelectMany(t =>
        {
            var v = new float[t.ElementCount];
            model.Backend.Download(t, v);
            return v;
        })];

    [Theory]
    [MemberData(nameof(RecurrentFixtures))]
    public void RecordedDecodeEqualsEagerDecodeBitForBit(string name)
    {
        using var backend = CudaAvailability.Backend();
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var tokens = GoldenLogitsTests.Tokens(name);
        backend.CaptureEnabled = false;
        var (eagerLogits, eagerState) = Decode(model, tokens);
        backend.CaptureEnabled = true;
        var (graphLogits, graphState) = Decode(model, tokens);
        Assert.Equal(eagerLogits, graphLogits);
        Assert.Equal(eagerState, graphState);
    }

    public static TheoryData<Radlads.Models.Architecture> RecurrentArchitectures => new(Radlads.Models.Architecture.Rwkv7Qwen2, Radlads.Models.Architecture.Rwkv6Qwen2);

    /// <summary>
    /// The golden fixtures' LoRA ranks are 4–20, so most of their branches take the composed ops on CUDA (only rwkv7's
    /// decay, rank 8, takes kernels/lora.cu). The synthetic "tiny" shape (C = 64, every LoRA rank 32) takes the two-launch
    /// <see cref="Radlads.Ops.IOps.LoraSet"/> for every branch (RAD-RWKV7: decay, in-context rate, value residual and
    /// low-rank gate in one call; RAD-RWKV6: its decay): recorded steps equal eager ones bit for bit, and match the CPU.
    /// </summary>
    [Theory]
    [MemberData(nameof(RecurrentArchitectures))]
    public void RecordedDecodeWithEveryLoraBranchOnTheKernelsEqualsEagerAndMatchesTheCpu(Radlads.Models.Architecture architecture)
    {
        using var backend = CudaAvailability.Backend();
        var config = SyntheticModel.Config("tiny", architecture);
        using var model = SyntheticModel.Create(config, backend, seed: 5);
        int[] tokens = [.. Enumerable.Range(0, 16).Select(i => ((i * 37) + 11) % config.VocabSize)];
        backend.CaptureEnabled = false;
        var (eagerLogits, eagerState) = Decode(model, tokens);
        Assert.Equal(0, backend.Replays);
        backend.CaptureEnabled = true;
        var (graphLogits, graphState) = Decode(model, tokens);
        Assert.True(backend.Replays > 0, "no decode step was replayed");
        Assert.Equal(eagerLogits, graphLogits);
        Assert.Equal(eagerState, graphState);

        using var cpu = SyntheticModel.Create(config, new Radlads.Cpu.CpuBackend(), seed: 5);
        var (cpuLogits, cpuState) = Decode(cpu, tokens);
        double error = Compare.MaxErrorRelativeToMax(cpuLogits.Select(v => (double)v).ToArray(), graphLogits);
        double stateError = Compare.MaxErrorRelativeToMax(cpuState.Select(v => (double)v).ToArray(), graphState);
        CudaModelTests.Report($"tiny {architecture}: CUDA (recorded) vs CPU decode, logits {error:G3}, state {stateError:G3} × max");
        Assert.True(error <= Tolerances.ConsistencyRelativeToMax, $"logits: max error {error:G3} × max |logit|");
        Assert.True(stateError <= Tolerances.ConsistencyRelativeToMax, $"state: max error {stateError:G3} × max |state|");
    }

    /// <summary>
    /// The chunked Wkv7 prefill (the default for prompts of 32 tokens or more at head dims 64 and 128) inside a whole
    /// RAD-RWKV7 model: the synthetic tiny shape widened to two heads of 64 (the golden fixtures' head dim, 16, has no
    /// chunked kernel), an 80-token prompt prefilled once with the chunked kernels and once with the scan. Every
    /// position's logits and the final state agree within <see cref="Tolerances.ConsistencyRelativeToMax"/>, the chunked
    /// kernels ran once a layer, and a decode step from either state gives the same logits within that bound. The
    /// prefill GEMMs run on the fp32 kernels: cuBLASLt's bf16 activations would turn the recurrences' last-bit
    /// differences into whole bf16 steps of single elements (seen: 3e-4 × max |logit| with a state 1.4e-7 apart).
    /// </summary>
    [Fact]
    public void ChunkedWkv7PrefillMatchesTheScanInAModel()
    {
        using var backend = CudaAvailability.Backend();
        var config = SyntheticModel.Config("tiny", Radlads.Models.Architecture.Rwkv7Qwen2) with { HiddenSize = 128, HeadDim = 64 };
        using var model = SyntheticModel.Create(config, backend, seed: 17);
        backend.GemmMinRows = int.MaxValue;
        int[] tokens = [.. Enumerable.Range(0, 80).Select(i => ((i * 53) + 7) % config.VocabSize)];
        (float[] Logits, float[] State) Prefill(bool chunked)
        {
            backend.Wkv7Chunked = chunked;
            using var state = model.CreateState();
            var logits = model.Forward(state, tokens, allLogits: true).ToList();
            logits.AddRange(model.Forward(state, [tokens[0]]));
            return ([.. logits], StateValues(model, state));
        }

        var scan = Prefill(chunked: false);
        long before = backend.Wkv7ChunkedLaunches;
        var chunked = Prefill(chunked: true);
        Assert.Equal(before + config.NumHiddenLayers, backend.Wkv7ChunkedLaunches);
        double error = Compare.MaxErrorRelativeToMax(scan.Logits.Select(v => (double)v).ToArray(), chunked.Logits);
        double stateError = Compare.MaxErrorRelativeToMax(scan.State.Select(v => (double)v).ToArray(), chunked.State);
        CudaModelTests.Report($"tiny rwkv7 (head dim 64), 80-token prefill, chunked vs scan: logits {error:G3}, state {stateError:G3} × max");
        Assert.True(error <= Tolerances.ConsistencyRelativeToMax, $"logits: max error {error:G3} × max |logit|");
        Assert.True(stateError <= Tolerances.ConsistencyRelativeToMax, $"state: max error {stateError:G3} × max |state|");
        Assert.NotEqual(scan.State, chunked.State); // different kernels ran: a comparison of one path with itself would pass
    }

    public static TheoryData<Radlads.Models.Architecture> AllArchitectures =>
        new(Radlads.Models.Architecture.Rwkv7Qwen2, Radlads.Models.Architecture.Rwkv6Qwen2, Radlads.Models.Architecture.Qwen2);

    /// <summary>
    /// The persistent MLP kernels (IOps.AddRmsNormMlp's mlp_decode, CudaBackend.PersistentMlp, and mlp_stream, whose
    /// weights stream through a shared-memory ring by bulk copies, CudaBackend.StreamMlp, sm_90; both off by default) in
    /// whole models and inside recorded decode steps (a cooperative launch in a CUDA graph; its grid barrier's state must
    /// be back at rest after every replay). The golden fixtures are too small for them (gate/up level ≤ 2 needs F ≥
    /// GemvBlocksPerSm · SMs), so the synthetic tiny shape with F widened to that: eager decode without and with the
    /// kernel and recorded decode with it give the same logits and state bit for bit, and the kernel ran.
    /// </summary>
    [Theory]
    [MemberData(nameof(AllArchitectures))]
    public void PersistentMlpChangesNoBitEagerOrRecorded(Radlads.Models.Architecture architecture) =>
        MlpKernelChangesNoBit(architecture, (backend, on) => backend.PersistentMlp = on, backend => backend.PersistentMlpLaunches, "persistent");

    [Theory]
    [MemberData(nameof(AllArchitectures))]
    public void StreamMlpChangesNoBitEagerOrRecorded(Radlads.Models.Architecture architecture) =>
        MlpKernelChangesNoBit(architecture, (backend, on) => backend.StreamMlp = on, backend => backend.StreamMlpLaunches, "streamed", sm90: true);

    private static void MlpKernelChangesNoBit(Radlads.Models.Architecture architecture, Action<CudaBackend, bool> turn, Func<CudaBackend, long> launches,
        string kind, bool sm90 = false)
    {
        using var backend = CudaAvailability.Backend();
        Assert.SkipWhen(sm90 && backend.Device.ComputeMajor < 9, $"the {kind} MLP needs sm_90 (bulk copies); this GPU is sm_{backend.Device.ComputeCapability}");
        int f = ((backend.GemvBlocksPerSm * backend.Device.MultiprocessorCount) + 7) / 8 * 8;
        var config = SyntheticModel.Config("tiny", architecture) with { IntermediateSize = f };
        using var model = SyntheticModel.Create(config, backend, seed: 7);
        int[] tokens = [.. Enumerable.Range(0, 12).Select(i => ((i * 53) + 5) % config.VocabSize)];
        backend.CaptureEnabled = false;
        backend.PersistentMlp = false;
        backend.StreamMlp = false;
        var (plainLogits, plainState) = Decode(model, tokens);
        Assert.Equal(0, launches(backend));
        turn(backend, true);
        EagerAndRecordedEqualPlain(backend, model, tokens, plainLogits, plainState,
            () => Assert.True(launches(backend) >= tokens.Length * config.NumHiddenLayers, $"{launches(backend)} {kind} MLP launches"));
    }

    /// <summary>
    /// With a decode option now on: eager decode (then <paramref name="checkEager"/>: the option's kernels ran) and
    /// recorded decode (replayed) give <paramref name="plainLogits"/> and <paramref name="plainState"/> bit for bit.
    /// </summary>
    private static void EagerAndRecordedEqualPlain(CudaBackend backend, CausalLM model, int[] tokens, float[] plainLogits, float[] plainState,
        Action checkEager)
    {
        backend.CaptureEnabled = false;
        var (eagerLogits, eagerState) = Decode(model, tokens);
        checkEager();
        backend.CaptureEnabled = true;
        long replays = backend.Replays;
        var (graphLogits, graphState) = Decode(model, tokens);
        Assert.True(backend.Replays - replays > 1, $"{backend.Replays - replays} replays for {tokens.Length} tokens");
        Assert.Equal(plainLogits, eagerLogits);
        Assert.Equal(plainState, eagerState);
        Assert.Equal(plainLogits, graphLogits);
        Assert.Equal(plainState, graphState);
    }

    /// <summary>
    /// The decode step's L2 prefetch of each layer's o_proj and MLP weights (IOps.Prefetch; by default only for weights
    /// of many L2s, so set here; behind recurrent mixers only) on its own stream, eager and as a branch of recorded
    /// steps, and RAD-RWKV7's q/k/v + LoRA down projections in one launch
    /// (IOps.AddRmsNormMatMulSharedLoraSet). The synthetic tiny shape with F widened so the MLP weights pass the prefetch's 64 KB
    /// minimum: decode without prefetching, with it eager, and recorded with it give the same logits and state bit for
    /// bit, and the prefetches (and for RAD-RWKV7 the one-launch projections) ran.
    /// </summary>
    [Theory]
    [MemberData(nameof(AllArchitectures))]
    public void PrefetchChangesNoBitEagerOrRecorded(Radlads.Models.Architecture architecture)
    {
        using var backend = CudaAvailability.Backend();
        Assert.SkipWhen(backend.Device.ComputeMajor < 9, "L2 bulk prefetch needs sm_90 or later");
        var config = SyntheticModel.Config("tiny", architecture) with { IntermediateSize = 1024 };
        using var model = SyntheticModel.Create(config, backend, seed: 11);
        int[] tokens = [.. Enumerable.Range(0, 12).Select(i => ((i * 37) + 3) % config.VocabSize)];
        backend.CaptureEnabled = false;
        var (plainLogits, plainState) = Decode(model, tokens);
        Assert.Equal(0, backend.PrefetchLaunches);
        int steps = tokens.Length * config.NumHiddenLayers;
        bool lora = architecture == Radlads.Models.Architecture.Rwkv7Qwen2;
        Assert.True(lora ? backend.GroupLoraLaunches >= steps : backend.GroupLoraLaunches == 0, $"{backend.GroupLoraLaunches} q/k/v + LoRA down launches");
        backend.PrefetchL2Fraction = 0.75;
        // Attention reads its KV cache between the projections and o_proj: Qwen2 asks for no prefetch (IMixer.LeavesBandwidthIdle).
        bool prefetches = architecture != Radlads.Models.Architecture.Qwen2;
        EagerAndRecordedEqualPlain(backend, model, tokens, plainLogits, plainState,
            () => Assert.True(prefetches ? backend.PrefetchLaunches >= steps : backend.PrefetchLaunches == 0,
                $"{backend.PrefetchLaunches} prefetch launches for {steps} layer steps"));
    }

    /// <summary>
    /// RAD-RWKV7's one-token RoPE, keys, residual, recurrence, scale and gate in one launch (IOps.Rwkv7RopeKeysWkv7Rows,
    /// on by default) in a whole model: the synthetic tiny shape with head dims 32, 64 (0.5B) and 128 (7B), one kernel
    /// variant each, decoded with the two-launch path, then with the one launch eager and recorded, give the same logits
    /// and state bit for bit, and the one launch ran for every layer step.
    /// </summary>
    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(128)]
    public void RopeKeysWkv7ChangesNoBitEagerOrRecorded(int headDim)
    {
        using var backend = CudaAvailability.Backend();
        var config = SyntheticModel.Config("tiny", Radlads.Models.Architecture.Rwkv7Qwen2);
        config = config with { HeadDim = headDim, HiddenSize = config.NumAttentionHeads * headDim };
        using var model = SyntheticModel.Create(config, backend, seed: 13);
        int[] tokens = [.. Enumerable.Range(0, 12).Select(i => ((i * 41) + 5) % config.VocabSize)];
        backend.CaptureEnabled = false;
        backend.FuseRopeKeysWkv7 = false;
        var (plainLogits, plainState) = Decode(model, tokens);
        Assert.Equal(0, backend.RopeKeysWkv7Launches);
        backend.FuseRopeKeysWkv7 = true;
        int steps = tokens.Length * config.NumHiddenLayers;
        EagerAndRecordedEqualPlain(backend, model, tokens, plainLogits, plainState,
            () => Assert.True(backend.RopeKeysWkv7Launches >= steps, $"{backend.RopeKeysWkv7Launches} one-launch recurrences for {steps} layer steps"));
    }

    public static TheoryData<string> AttentionFixtures => new(Fixtures.Names.Where(n => n.StartsWith("qwen2", StringComparison.Ordinal)));

    /// <summary>
    /// Enough tokens of the fixture's prompt, repeated, to cross a KV cache's first growth (64 → 128 rows), with a
    /// prefill first so that recorded steps start past position 0.
    /// </summary>
    internal static int[] PastTheFirstCacheGrowth(string name) =>
        [.. Enumerable.Range(0, 80).Select(i => GoldenLogitsTests.Tokens(name)[i % GoldenLogitsTests.Tokens(name).Length])];

    /// <summary>Qwen2 steps (softmax attention over the KV cache) recorded: a prompt of 5, then token by token past the cache's growth.</summary>
    internal static (float[] Logits, float[] State) PrefillThenDecode(CausalLM model, int[] tokens)
    {
        using var state = model.CreateState();
        var logits = model.Forward(state, tokens[..5]).ToList();
        foreach (int t in tokens[5..])
        {
            logits.AddRange(model.Forward(state, [t]));
        }

        return ([.. logits], StateValues(model, state));
    }

    [Theory]
    [MemberData(nameof(AttentionFixtures))]
    public void RecordedAttentionDecodeEqualsEagerDecodeBitForBitPastACacheGrowth(string name)
    {
        using var backend = CudaAvailability.Backend();
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var tokens = PastTheFirstCacheGrowth(name);
        backend.CaptureEnabled = false;
        var (eagerLogits, eagerState) = PrefillThenDecode(model, tokens);
        Assert.Equal(0, backend.Replays);
        backend.CaptureEnabled = true;
        var (graphLogits, graphState) = PrefillThenDecode(model, tokens);
        // 75 decode steps at positions 5 .. 79: recorded at 5 (cache of 64 rows) and again at 64 (grown to 128).
        Assert.Equal(tokens.Length - 5, backend.Replays);
        Assert.Equal(2, backend.Recordings);
        Assert.Equal(eagerLogits, graphLogits);
        Assert.Equal(eagerState, graphState);
        CudaModelTests.Report($"{name}: {backend.Recordings} recordings, {backend.Replays} replays");
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void RecordedSampleEqualsEagerSampleAndLogitReplaysSkipIt(string name)
    {
        using var backend = CudaAvailability.Backend();
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var prompt = GoldenLogitsTests.Tokens(name)[..4];
        var options = new Radlads.Generation.SamplingOptions { Temperature = 1.2f, TopK = 50, TopP = 0.95f, Seed = 5 };
        backend.CaptureEnabled = false;
        var eager = DeviceSamplingTests.OnDevice(model, prompt, options, 32);
        backend.CaptureEnabled = true;
        var recorded = DeviceSamplingTests.OnDevice(model, prompt, options, 32);
        Assert.Equal(eager, recorded);

        // One state, one recording: replays that return logits (the Sample skipped) between replays that sample, and a
        // vocabulary change that re-records; the tokens and logits equal a run without recording.
        backend.CaptureEnabled = false;
        var (eagerTokens, eagerLogits) = MixedSampledAndLogitReplays(model, prompt, options);
        backend.CaptureEnabled = true;
        var (graphTokens, graphLogits) = MixedSampledAndLogitReplays(model, prompt, options);
        Assert.Equal(eagerTokens, graphTokens);
        Assert.Equal(eagerLogits, graphLogits);
        CudaModelTests.Report($"{name} recorded sampled decode: {string.Join(",", recorded)}");
    }

    /// <summary>
    /// The recorded Sample stores its id straight into the pinned step buffer (no copy node): every replay's id is its
    /// own (greedy over logits rewritten between replays, the maximum moved each time), a replay with a NaN or +∞ logit,
    /// or with every logit −∞, throws as IOps.Sample does and the next finite replay returns its id again, and a replay
    /// that skips the sample leaves the next one unaffected.
    /// </summary>
    [Fact]
    public void RecordedSampleReturnsEachReplaysOwnIdAndItsErrors()
    {
        using var backend = CudaAvailability.Backend();
        const int vocabulary = 1000;
        using var logits = backend.Allocate(1, vocabulary);
        using var step = backend.Capture([7], 0, () => { }, logits, vocabulary);
        var greedy = Radlads.Ops.SampleRow.Greedy;
        var values = new float[vocabulary];
        var random = new Random(18);
        foreach (int top in new[] { 3, 997, 0, 512, 999, 41 })
        {
            for (int i = 0; i < vocabulary; i++)
            {
                values[i] = (float)random.NextDouble();
            }

            values[top] = 2f;
            backend.Upload(values, logits);
            Assert.Equal(top, step.ReplaySample([7], 0, greedy));
            step.Replay([7], 0);
        }

        foreach (float bad in new[] { float.NaN, float.PositiveInfinity })
        {
            values[123] = bad;
            backend.Upload(values, logits);
            var e = Assert.Throws<RadladsException>(() => step.ReplaySample([7], 0, greedy));
            Assert.Contains("for token 123", e.Message, StringComparison.Ordinal);
            values[123] = 0.25f;
            values[640] = 3f;
            backend.Upload(values, logits);
            Assert.Equal(640, step.ReplaySample([7], 0, greedy));
            values[640] = 0.5f;
        }

        backend.Upload(Enumerable.Repeat(float.NegativeInfinity, vocabulary).ToArray(), logits);
        var banned = Assert.Throws<RadladsException>(() => step.ReplaySample([7], 0, greedy));
        Assert.Contains($"all {vocabulary} are -Infinity", banned.Message, StringComparison.Ordinal);
        values[77] = 9f;
        backend.Upload(values, logits);
        Assert.Equal(77, step.ReplaySample([7], 0, greedy));
    }

    /// <summary>
    /// The residual norm fused into q/k/v and gate/up (norm_gemv_group, norm_gate_up_swiglu; their block counter must be
    /// back at 0 after every launch and every replay): eager decode with and without the fusion, and recorded decode
    /// replayed token after token with it, give the same logits and state bit for bit, and the fused kernels ran.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void FusedNormGemvChangesNoBitEagerOrReplayed(string name)
    {
        using var backend = CudaAvailability.Backend();
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var tokens = GoldenLogitsTests.Tokens(name);
        backend.CaptureEnabled = false;
        backend.FuseNormGemv = false;
        var (plainLogits, plainState) = Decode(model, tokens);
        Assert.Equal(0, backend.NormGemvLaunches);
        backend.FuseNormGemv = true;
        long replays = backend.Replays;
        EagerAndRecordedEqualPlain(backend, model, tokens, plainLogits, plainState,
            () => Assert.True(backend.NormGemvLaunches > 0, "no fused norm + GEMV kernel ran"));
        CudaModelTests.Report($"{name}: {backend.NormGemvLaunches} fused norm + GEMV launches, {backend.Replays - replays} replays");
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void ProgrammaticLaunchChangesNoBit(string name)
    {
        using var backend = CudaAvailability.Backend();
        using var model = CausalLM.Load(Fixtures.Directory(name), backend);
        var tokens = GoldenLogitsTests.Tokens(name);
        float[] Run(bool programmatic)
        {
            backend.ProgrammaticLaunch = programmatic;
            using var state = model.CreateState();
            var prefill = model.Forward(state, tokens[..7], allLogits: true);
            return [.. prefill, .. tokens[7..].SelectMany(t => model.Forward(state, [t]))];
        }

        bool supported = backend.Device.ComputeMajor >= 9 && backend.Device.Driver.HasLaunchEx;
        var plain = Run(false);
        var programmatic = Run(supported);
        CudaModelTests.Report($"{name}: programmatic dependent launch {(supported ? "on" : "not supported here")}");
        Assert.Equal(plain, programmatic);
    }

    [Fact]
    public void PrefillThenRecordedDecodeMatchesTheReference()
    {
        // fp32 prefill GEMMs: the bound is the fp32 golden one (cuBLASLt's bf16 activations have their own test).
        using var backend = CudaAvailability.Backend(gemmLibrary: false);
        backend.CaptureEnabled = true;
        const string Name = "rwkv7";
        var (reference, _) = Npy.ReadFloat64(Path.Combine(Fixtures.Directory(Name), "logits.npy"));
        using var model = CausalLM.Load(Fixtures.Directory(Name), backend);
        var tokens = GoldenLogitsTests.Tokens(Name);
        int v = model.Config.VocabSize;
        using var state = model.CreateState();
        var logits = model.Forward(state, tokens[..5], allLogits: true).ToList();
        // Two sequences interleaved: each replays its own recording.
        using var other = model.CreateState();
        model.Forward(other, tokens[..3]);
        for (int i = 5; i < tokens.Length; i++)
        {
            logits.AddRange(model.Forward(state, [tokens[i]]));
            model.Forward(other, [tokens[i]]);
        }

        Assert.Equal(tokens.Length * v, logits.Count);
        double error = Compare.MaxErrorRelativeToMax(reference, logits.ToArray());
        Assert.True(error <= Tolerances.GoldenLogitsRelativeToMax, $"max error {error:G3} × max |logit|");
    }

    [Fact]
    public void DisposingARecordedStateGivesItsScratchBack()
    {
        using var backend = CudaAvailability.Backend();
        using var model = CausalLM.Load(Fixtures.Directory("rwkv7"), backend);
        var state = model.CreateState();
        model.Forward(state, [1]);
        model.Forward(state, [2]);
        long before = backend.CachedBytes;
        state.Dispose();
        Assert.True(backend.CachedBytes > before, $"cache {before} -> {backend.CachedBytes} bytes after disposing a recorded state");
    }
}
