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
        2 + (models * (2 + o.Contexts.Count + o.Batches.Count + (o.Serving ? ServingScenario.Selected(o).Count : 0)));

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
            DecodeContexts(model, spec, weights);
            foreach (int batch in options.Batches)
            {
                Measure(spec, "batched_decode", options.BatchContext, batch, () => Decode(model, spec, weights, "batched_decode", options.BatchContext, batch));
            }

            if (options.Serving)
            {
                foreach (var scenario in ServingScenario.Selected(options))
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
            foreach (var scenario in ServingScenario.Selected(options))
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

    /// <summary>
    /// Batch-1 decode at every context. When the states/caches of all contexts fit at once, the contexts are timed in
    /// interleaved rounds (round r times a share of the steps of every context in turn), so a slow drift of the card
    /// (clocks, temperature) over the minutes of a run falls on every context alike instead of reading as a change
    /// with context length; otherwise one context after the other. Returns one row per context.
    /// </summary>
    private void DecodeContexts(CausalLM model, ModelSpec spec, long weights)
    {
        var config = spec.Config;
        int headroom = options.Warmup + options.DecodeTokens + 2;
        long together = options.Contexts.Sum(c => SyntheticModel.StateBytes(config, c + headroom)) + Workspace(config, 1, 1, options.Contexts.Max()) + Margin;
        int rounds = Math.Min(DecodeRounds, options.DecodeTokens);
        if (options.Contexts.Count < 2 || rounds < 2 || together > Available().Available)
        {
            foreach (int context in options.Contexts)
            {
                Measure(spec, "decode", context, 1, () => Decode(model, spec, weights, "decode", context, 1));
            }

            return;
        }

        string what = $"{ArchName(config.Architecture)} {spec.Shape} decode";
        var runs = new List<DecodeRun>();
        try
        {
            foreach (int context in options.Contexts)
            {
                progress.Show($"{what} at {context}: setting up");
                runs.Add(SetUp(model, spec, weights, "decode", context, 1));
            }

            for (int r = 0; r < rounds; r++)
            {
                int steps = (options.DecodeTokens * (r + 1) / rounds) - (options.DecodeTokens * r / rounds);
                foreach (var run in runs)
                {
                    progress.Show(string.Create(Inv, $"{what} at {run.Context}: round {r + 1} of {rounds}"));
                    run.Time(steps);
                }
            }

            foreach (var run in runs)
            {
                var row = run.Row(copyBandwidth, string.Create(Inv, $"timed in {rounds} rounds interleaved with the other contexts"));
                Add(row);
                progress.Step($"{what} at {run.Context}: " + Summary(row));
            }
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            // Planned to fit, but did not: fall back to one context at a time, each reported on its own.
            foreach (var run in runs)
            {
                run.Dispose();
            }

            runs.Clear();
            device.ReleaseCachedMemory();
            log.WriteLine($"{what}: the contexts did not fit together ({FirstLine(e)}); timing one after the other");
            foreach (int context in options.Contexts)
            {
                Measure(spec, "decode", context, 1, () => Decode(model, spec, weights, "decode", context, 1));
            }
        }
        finally
        {
            foreach (var run in runs)
            {
                run.Dispose();
            }

            device.ReleaseCachedMemory();
        }
    }

    /// <summary>Timing rounds of the interleaved batch-1 decode (at most one per timed step).</summary>
    private const int DecodeRounds = 4;

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

        using var run = SetUp(model, spec, weights, measure, context, batch);
        run.Time(options.DecodeTokens);
        return run.Row(copyBandwidth, null);
    }

    /// <summary>
    /// Creates <paramref name="batch"/> states at <paramref name="context"/> (a few real tokens, the rest fast-forwarded)
    /// and runs the untimed warm-up steps (the first records the CUDA graph); measures the memory of this one setup.
    /// </summary>
    private DecodeRun SetUp(CausalLM model, ModelSpec spec, long weights, string measure, int context, int batch)
    {
        var config = spec.Config;
        int headroom = options.Warmup + options.DecodeTokens + 2;
        var random = new Random(options.Seed + context + batch);
        int vocab = config.VocabSize;
        long mem0 = Allocated();
        var run = new DecodeRun(model, Row(spec, measure) with { Context = context, Batch = batch, WeightsBytes = weights }, context);
        try
        {
            for (int i = 0; i < batch; i++)
            {
                run.States.Add(model.CreateState());
            }

            // A few real tokens so that recurrent states are not zero, then the rest of the context fast-forwarded.
            int real = Math.Min(16, context);
            var prompts = run.States.Select(_ => Enumerable.Range(0, real).Select(_ => random.Next(vocab)).ToArray()).ToArray();
            run.Next = model.ForwardSample(run.States, prompts, run.Greedy, vocab);
            foreach (var s in run.States)
            {
                s.FastForward(context, headroom, random);
            }

            device.ReleaseCachedMemory();
            long stateBytes = device.MemoryInfo() is null ? run.States.Sum(s => s.SizeBytes) : Allocated() - mem0;
            device.ResetPeakMemory();
            for (int i = 0; i < options.Warmup; i++)
            {
                run.Step();
            }

            var info = device.MemoryInfo();
            var (weightBytes, perSequence) = SyntheticModel.DecodeBytes(config, context);
            long workspace = info is null ? 0 : Math.Max(0, info.PeakAllocatedBytes - mem0 - stateBytes);
            run.Row0 = run.Row0 with
            {
                BytesPerStep = weightBytes + (batch * perSequence),
                StateBytes = stateBytes,
                // What this setup alone needs on top of what was allocated before it (the weights; in interleaved
                // rounds the other contexts' states are not counted here).
                PeakBytes = info is null ? null : weights + stateBytes + workspace,
                WorkspaceBytes = info is null ? null : workspace,
            };
            return run;
        }
        catch
        {
            run.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sequences being decoded for one row: each step feeds every sequence its greedy token of the previous step, picked
    /// on the device (<see cref="CausalLM.ForwardSample(IReadOnlyList{SequenceState}, IReadOnlyList{int[]}, ReadOnlySpan{SampleRow}, int)"/>),
    /// so only the ids cross the bus, as in generation.
    /// </summary>
    private sealed class DecodeRun(CausalLM model, BenchRow row, int context) : IDisposable
    {
        private readonly List<double> times = [];

        public List<SequenceState> States { get; } = [];

        /// <summary>A greedy row per sequence (made once the states exist, not per step).</summary>
        public SampleRow[] Greedy => greedy ??= [.. States.Select(_ => SampleRow.Greedy)];

        private SampleRow[]? greedy;

        public int[] Next { get; set; } = [];

        public BenchRow Row0 { get; set; } = row;

        public int Context { get; } = context;

        public void Step()
        {
            Next = States.Count == 1
                ? [model.ForwardSample(States[0], [Next[0]], Greedy[0], model.Config.VocabSize)]
                : model.ForwardSample(States, Next.Select(t => new[] { t }).ToArray(), Greedy, model.Config.VocabSize);
        }

        public void Time(int steps)
        {
            for (int i = 0; i < steps; i++)
            {
                long start = Stopwatch.GetTimestamp();
                Step();
                times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }

        /// <summary>The row: ms/step is the median step (robust to a lone pause of the host), the mean in the note.</summary>
        public BenchRow Row(double copyBandwidth, string? how)
        {
            var sorted = times.Order().ToArray();
            double ms = sorted[sorted.Length / 2];
            double mean = times.Average();
            int batch = States.Count;
            return Row0 with
            {
                Tokens = (long)times.Count * batch,
                MsPerToken = ms,
                TokensPerSecond = batch * 1000 / ms,
                RooflineFraction = Row0.BytesPerStep / (ms / 1000) / copyBandwidth,
                Note = string.Create(Inv, $"median of {times.Count} steps (mean {mean:F3}, min {sorted[0]:F3}, max {sorted[^1]:F3} ms)")
                    + (how is null ? "" : "; " + how) + "; greedy token picked on the device, only ids cross the bus",
            };
        }

        public void Dispose()
        {
            foreach (var s in States)
            {
                s.Dispose();
            }

            States.Clear();
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
