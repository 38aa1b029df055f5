using System.Diagnostics;
using System.Globalization;
using Radlads.Models;
using Radlads.Ops;

namespace Radlads.Cli.Bench;

/// <summary>
/// Runs the measurements of `radlads bench` on one backend and returns them as <see cref="BenchRow"/>s: the roofline
/// (copy bandwidth, GEMM rate), then per model prefill / time to first token, batch-1 decode at each context,
/// batched decode at each batch size, and optionally the appendix-E serving scenario. Memory is planned before
/// anything is allocated; what does not fit is reported as a row with status "does not fit".
/// </summary>
internal sealed class BenchRunner
{
    internal const double GiB = 1024.0 * 1024 * 1024;

    /// <summary>Memory left free beyond every estimate (driver, fragmentation, the estimate's own error).</summary>
    private const long Margin = 512L << 20;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private readonly IBackend device;
    private readonly BenchOptions options;
    private readonly Progress progress;
    private readonly TextWriter log;
    private readonly List<BenchRow> rows = [];
    private double copyBandwidth;
    private double gemmRate;

    /// <summary>
    /// On the CPU: the process's working set when the benchmark started, so --memory-limit plans against the memory the
    /// benchmark itself takes, not whatever the process held before (a test host, an embedding application).
    /// </summary>
    private readonly long startWorkingSet = Environment.WorkingSet;

    public BenchRunner(IBackend device, BenchOptions options, CardInfo card, Progress progress, TextWriter log)
    {
        this.device = device;
        this.options = options;
        this.progress = progress;
        this.log = log;
        Card = card;
    }

    public CardInfo Card { get; }

    /// <summary>Units of work <see cref="Run"/> reports to the progress bar.</summary>
    public static int Units(BenchOptions o, int models) =>
        2 + (models * (2 + o.Contexts.Count + o.Batches.Count + (o.Serving ? ServingScenario.Paper.Count : 0)));

    /// <summary>One model to measure: a synthetic shape or a checkpoint folder.</summary>
    internal sealed record ModelSpec(string Shape, ModelConfig Config, string? Directory, long WeightBytes);

    public List<BenchRow> Run(IReadOnlyList<ModelSpec> models)
    {
        ArgumentNullException.ThrowIfNull(models);
        progress.Show("measuring the copy bandwidth");
        var (copy, copied) = Roofline.CopyBandwidth(device, options.Quick);
        copyBandwidth = copy;
        Add(new BenchRow { Measure = "roofline_copy", Roofline = copy / 1e9, Tokens = copied, Note = "device-to-device copy, GB/s (bytes read + written)" });
        progress.Step(string.Create(Inv, $"copy bandwidth {copy / 1e9:F0} GB/s"));
        var (gemm, m, n, k) = Roofline.GemmRate(device, options.Quick);
        gemmRate = gemm;
        Add(new BenchRow { Measure = "roofline_gemm", Roofline = gemm / 1e12, Note = $"radlads MatMul op, bf16 weights, [{m}x{k}]·[{n}x{k}]ᵀ, TFLOP/s" });
        progress.Step(string.Create(Inv, $"GEMM rate {gemm / 1e12:F2} TFLOP/s"));

        foreach (var spec in models)
        {
            RunModel(spec);
        }

        return rows;
    }

    public static string ArchName(Architecture a) => a switch
    {
        Architecture.Qwen2 => "qwen2",
        Architecture.Rwkv6Qwen2 => "rwkv6",
        _ => "rwkv7",
    };

    /// <summary>Called with every row so far after each one is added (the command rewrites results.csv, so a run cut short keeps what it measured).</summary>
    public Action<IReadOnlyList<BenchRow>>? RowAdded { get; init; }

    private void Add(BenchRow row)
    {
        rows.Add(row with { Card = Card.Name, Backend = device.Name });
        RowAdded?.Invoke(rows);
    }

    private BenchRow Row(ModelSpec spec, string measure) => new() { Arch = ArchName(spec.Config.Architecture), Shape = spec.Shape, Measure = measure };

    private void RunModel(ModelSpec spec)
    {
        string what = $"{ArchName(spec.Config.Architecture)} {spec.Shape}";
        var config = spec.Config;
        var (available, total) = Available();
        long weightsNeed = spec.WeightBytes + Margin;
        if (weightsNeed > available)
        {
            string note = FitNote(weightsNeed, available, total, "the weights alone");
            AddNotFit(spec, note);
            progress.Total -= Units(options, 1) - 2 - 1;
            progress.Step($"{what}: does not fit ({note})");
            return;
        }

        progress.Show($"{what}: building the model");
        long before = Allocated();
        var watch = Stopwatch.StartNew();
        CausalLM model;
        try
        {
            model = spec.Directory is null ? SyntheticModel.Create(config, device, options.Seed) : CausalLM.Load(spec.Directory, device);
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            AddNotFit(spec, "ran out of memory loading the weights: " + FirstLine(e));
            progress.Total -= Units(options, 1) - 2 - 1;
            progress.Step($"{what}: does not fit");
            return;
        }

        using (model)
        {
            using (var probe = device.Allocate(1))
            {
                Roofline.Sync(device, probe); // the uploads are done
            }

            long weights = device.MemoryInfo() is null ? spec.WeightBytes : Allocated() - before;
            log.WriteLine(string.Create(Inv, $"{what}: {model.ParameterCount / 1e9:F2} B parameters, {weights / GiB:F2} GiB of weights, built in {watch.Elapsed.TotalSeconds:F1} s"));
            progress.Step($"{what}: built");
            Measure(spec, "prefill", null, 1, () => Prefill(model, spec, weights));
            foreach (int context in options.Contexts)
            {
                Measure(spec, "decode", context, 1, () => Decode(model, spec, weights, "decode", context, 1));
            }

            foreach (int batch in options.Batches)
            {
                Measure(spec, "batched_decode", options.BatchContext, batch, () => Decode(model, spec, weights, "batched_decode", options.BatchContext, batch));
            }

            if (options.Serving)
            {
                foreach (var scenario in ServingScenario.Paper)
                {
                    Measure(spec, "serving", null, options.ServingRequests, () => new ServingScenario(model, scenario, options, this).Run(Row(spec, "serving")));
                }
            }
        }

        device.ReleaseCachedMemory();
    }

    private void Measure(ModelSpec spec, string measure, int? context, int batch, Func<BenchRow> work)
    {
        string what = $"{ArchName(spec.Config.Architecture)} {spec.Shape} {measure}" + (context is int c ? $" at {c}" : "") + (batch > 1 ? $" batch {batch}" : "");
        progress.Show(what);
        BenchRow row;
        try
        {
            row = work();
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            row = Row(spec, measure) with { Context = context, Batch = batch, Status = "does not fit", Note = "ran out of memory: " + FirstLine(e) };
        }

        Add(row);
        device.ReleaseCachedMemory();
        progress.Step(what + ": " + Summary(row));
    }

    private static string Summary(BenchRow r) => !r.Ok ? $"{r.Status} ({r.Note})"
        : r.Measure == "prefill" ? string.Create(Inv, $"TTFT {r.TtftMs:F1} ms, {r.TokensPerSecond:F0} tokens/s")
        : r.Measure == "serving" ? string.Create(Inv, $"{r.WallSeconds:F1} s")
        : string.Create(Inv, $"{r.MsPerToken:F3} ms/step, {r.TokensPerSecond:F1} tokens/s");

    private static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException || (e is RadladsException && e.Message.Contains("out of GPU memory", StringComparison.Ordinal))
        || e.Message.Contains("OUT_OF_MEMORY", StringComparison.Ordinal);

    private static string FirstLine(Exception e) => e.Message.Split('\n')[0].Trim();

    private void AddNotFit(ModelSpec spec, string note)
    {
        var row = Row(spec, "") with { Status = "does not fit", Note = note, WeightsBytes = spec.WeightBytes };
        Add(row with { Measure = "prefill", Tokens = options.PrefillTokens });
        foreach (int context in options.Contexts)
        {
            Add(row with { Measure = "decode", Context = context, Batch = 1 });
        }

        foreach (int batch in options.Batches)
        {
            Add(row with { Measure = "batched_decode", Context = options.BatchContext, Batch = batch });
        }

        if (options.Serving)
        {
            foreach (var scenario in ServingScenario.Paper)
            {
                Add(row with { Measure = "serving", Batch = options.ServingRequests, Note = $"{scenario.Name}: {note}" });
            }
        }
    }

    internal static string FitNote(long need, long available, long total, string what) =>
        string.Create(Inv, $"{what} need {need / GiB:F1} GiB, the card has {available / GiB:F1} GiB free of {total / GiB:F1} GiB");

    /// <summary>Bytes this process holds on the device now (0 where the backend does not account).</summary>
    internal long Allocated() => device.MemoryInfo()?.AllocatedBytes ?? 0;

    /// <summary>
    /// Bytes that may still be allocated, and the device's total: the driver's free memory (cached blocks given back
    /// first), limited by --memory-limit; on the CPU the memory the GC says is available.
    /// </summary>
    internal (long Available, long Total) Available()
    {
        device.ReleaseCachedMemory();
        long free, total, used;
        if (device.MemoryInfo() is { } info)
        {
            (free, total, used) = (info.FreeBytes, info.TotalBytes, info.AllocatedBytes);
        }
        else
        {
            var gc = GC.GetGCMemoryInfo();
            total = gc.TotalAvailableMemoryBytes;
            free = Math.Max(0, total - Environment.WorkingSet);
            used = Math.Max(0, Environment.WorkingSet - startWorkingSet);
        }

        if (options.MemoryLimit is long limit)
        {
            return (Math.Max(0, Math.Min(free, limit - used)), Math.Min(total, limit));
        }

        return (free, total);
    }

    /// <summary>Estimated scratch of a step of <paramref name="rows"/> token rows (activations, logits, attention partials).</summary>
    internal static long Workspace(ModelConfig c, int rows, int sequences, int context)
    {
        long perRow = (6L * c.IntermediateSize) + (24L * c.HiddenSize) + (8L * c.NumAttentionHeads * c.HeadDim);
        long logits = (long)sequences * c.VocabSize;
        long attention = c.Architecture == Architecture.Qwen2 ? (long)sequences * c.NumAttentionHeads * ((context / 256) + 1) * (c.HeadDim + 2) : 0;
        return ((rows * perRow) + logits + attention) * sizeof(float) + (64L << 20);
    }

    private BenchRow Prefill(CausalLM model, ModelSpec spec, long weights)
    {
        var config = spec.Config;
        int tokens = options.PrefillTokens;
        var row = Row(spec, "prefill") with { Tokens = tokens, Context = tokens, Batch = 1, WeightsBytes = weights };
        long need = SyntheticModel.StateBytes(config, tokens) + Workspace(config, tokens, 1, tokens) + Margin;
        var (available, total) = Available();
        if (need > available)
        {
            return row with { Status = "does not fit", Note = FitNote(need, available, total, "state and workspace") };
        }

        var random = new Random(options.Seed);
        var ids = Enumerable.Range(0, tokens).Select(_ => random.Next(config.VocabSize)).ToArray();
        using (var warm = model.CreateState())
        {
            model.Forward(warm, ids);
        }

        device.ReleaseCachedMemory();
        long mem0 = Allocated();
        device.ResetPeakMemory();
        using var state = model.CreateState();
        long start = Stopwatch.GetTimestamp();
        var logits = model.Forward(state, ids);
        int first = ArgMax(logits);
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        GC.KeepAlive(first);
        double flops = PrefillFlops(config, tokens);
        var info = device.MemoryInfo();
        long stateBytes = state.SizeBytes;
        return row with
        {
            TtftMs = ms,
            MsPerToken = ms / tokens,
            TokensPerSecond = tokens / (ms / 1000),
            RooflineFraction = flops / (ms / 1000) / gemmRate,
            StateBytes = stateBytes,
            PeakBytes = info?.PeakAllocatedBytes,
            WorkspaceBytes = info is null ? null : info.PeakAllocatedBytes - mem0 - stateBytes,
            Note = string.Create(Inv, $"{flops / 1e12:F3} TFLOP counted (matmuls, attention/recurrence), fraction of the GEMM rate"),
        };
    }

    /// <summary>Floating-point operations of a prefill of <paramref name="t"/> tokens: 2 per weight per row (head once), attention or recurrence.</summary>
    internal static double PrefillFlops(ModelConfig c, int t)
    {
        double layerWeights = SyntheticModel.Tensors(c).Where(x => x.Name.StartsWith("model.layers.", StringComparison.Ordinal) && x.Shape.Length >= 2)
            .Sum(x => x.Shape.Aggregate(1.0, (p, d) => p * d));
        double flops = (2.0 * layerWeights * t) + (2.0 * c.VocabSize * c.HiddenSize);
        double layers = c.NumHiddenLayers, heads = c.NumAttentionHeads, n = c.HeadDim;
        flops += c.Architecture == Architecture.Qwen2
            ? 2.0 * layers * heads * n * t * (t + 1) // QKᵀ and PV over the causal half
            : 4.0 * layers * heads * n * n * t;      // state update and read-out per token
        return flops;
    }

    /// <summary>Batch-<paramref name="batch"/> decode at <paramref name="context"/>: every sequence with its own state.</summary>
    private BenchRow Decode(CausalLM model, ModelSpec spec, long weights, string measure, int context, int batch)
    {
        var config = spec.Config;
        var row = Row(spec, measure) with { Context = context, Batch = batch, WeightsBytes = weights };
        int headroom = options.Warmup + options.DecodeTokens + 2;
        long need = (batch * SyntheticModel.StateBytes(config, context + headroom)) + Workspace(config, batch, batch, context) + Margin;
        var (available, total) = Available();
        if (need > available)
        {
            return row with { Status = "does not fit", Note = FitNote(need, available, total, "state/KV cache and workspace") };
        }

        var random = new Random(options.Seed + context + batch);
        int vocab = config.VocabSize;
        long mem0 = Allocated();
        var states = new List<SequenceState>(batch);
        try
        {
            for (int i = 0; i < batch; i++)
            {
                states.Add(model.CreateState());
            }

            // A few real tokens so that recurrent states are not zero, then the rest of the context fast-forwarded.
            int real = Math.Min(16, context);
            model.Forward(states, states.Select(_ => Enumerable.Range(0, real).Select(_ => random.Next(vocab)).ToArray()).ToArray());
            foreach (var s in states)
            {
                s.FastForward(context, headroom, random);
            }

            device.ReleaseCachedMemory();
            long stateBytes = device.MemoryInfo() is null ? states.Sum(s => s.SizeBytes) : Allocated() - mem0;
            device.ResetPeakMemory();
            var step = new int[batch][];
            for (int i = 0; i < options.Warmup; i++)
            {
                Step(model, states, step, random);
            }

            var times = new double[options.DecodeTokens];
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < options.DecodeTokens; i++)
            {
                long start = Stopwatch.GetTimestamp();
                Step(model, states, step, random);
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }

            double ms = clock.Elapsed.TotalMilliseconds / options.DecodeTokens;
            Array.Sort(times);
            var (weightBytes, perSequence) = SyntheticModel.DecodeBytes(config, context);
            long bytes = weightBytes + (batch * perSequence);
            var info = device.MemoryInfo();
            return row with
            {
                Tokens = (long)options.DecodeTokens * batch,
                MsPerToken = ms,
                TokensPerSecond = batch * 1000 / ms,
                BytesPerStep = bytes,
                RooflineFraction = bytes / (ms / 1000) / copyBandwidth,
                StateBytes = stateBytes,
                PeakBytes = info?.PeakAllocatedBytes,
                WorkspaceBytes = info is null ? null : info.PeakAllocatedBytes - mem0 - stateBytes,
                Note = string.Create(Inv, $"median {times[times.Length / 2]:F3} ms/step; logits of every sequence copied to the host each step"),
            };
        }
        finally
        {
            foreach (var s in states)
            {
                s.Dispose();
            }
        }
    }

    private static void Step(CausalLM model, List<SequenceState> states, int[][] step, Random random)
    {
        for (int i = 0; i < step.Length; i++)
        {
            step[i] = [random.Next(model.Config.VocabSize)];
        }

        if (states.Count == 1)
        {
            model.Forward(states[0], step[0]);
        }
        else
        {
            model.Forward(states, step);
        }
    }

    internal static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        return best;
    }
}
