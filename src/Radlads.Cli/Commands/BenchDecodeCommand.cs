using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Radlads.Checkpoints;
using Radlads.Cuda;
using Radlads.Generation;
using Radlads.Ilgpu;
using Radlads.Models;
using Radlads.Ops;
using NativeMemory = System.Runtime.InteropServices.NativeMemory;

namespace Radlads.Cli.Commands;

/// <summary>
/// `radlads bench-decode` (hidden): batch-1 decode of models with random bf16 weights at real Qwen2.5 shapes,
/// built in memory, timed against the bytes a step must move and the device's measured copy bandwidth.
/// A measurement tool, not a test: results go to bench/results/.
/// </summary>
internal static class BenchDecodeCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create(CliContext io)
    {
        var shapes = new Option<string>("--shape") { Description = $"Model shapes, comma-separated: {string.Join(", ", SyntheticModel.Shapes)}.", DefaultValueFactory = _ => "0.5b" };
        var arches = new Option<string>("--arch") { Description = "Architectures, comma-separated: rwkv7, qwen2.", DefaultValueFactory = _ => "rwkv7" };
        var tokens = new Option<int>("--tokens") { Description = "Timed decode steps per configuration.", DefaultValueFactory = _ => 64 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed decode steps first (the first records the CUDA graph).", DefaultValueFactory = _ => 8 };
        var contexts = new Option<string>("--context") { Description = "Context lengths to decode at, comma-separated.", DefaultValueFactory = _ => "1024" };
        var prefill = new Option<int>("--prefill") { Description = "Tokens really run before the timed steps (at most the context); the rest of the context is fast-forwarded (KV caches filled with random rows).", DefaultValueFactory = _ => 64 };
        var backend = new Option<string>("--backend", "-b") { Description = "cuda, ilgpu or cpu.", DefaultValueFactory = _ => "cuda" };
        var prefillBench = new Option<int>("--prefill-bench")
        {
            Description = "Also time prefill: one forward pass of this many tokens from a fresh state (after one untimed pass), per shape and architecture; 0 = off.",
            DefaultValueFactory = _ => 0,
        };
        backend.AcceptOnlyFromAmong("cuda", "ilgpu", "cpu");
        var graphs = new Option<string>("--graphs") { Description = "CUDA graph replay of the decode step (CUDA backend, and ILGPU on its CUDA accelerator): on, off, or both (one row each).", DefaultValueFactory = _ => "on" };
        graphs.AcceptOnlyFromAmong("on", "off", "both");
        var pdl = new Option<string>("--pdl") { Description = "Programmatic dependent launch of the kernels (Hopper and later): on, off, or both.", DefaultValueFactory = _ => "on" };
        pdl.AcceptOnlyFromAmong("on", "off", "both");
        var sample = new Option<string>("--sample")
        {
            Description = "Where each step's token is chosen: host (the logits are downloaded, as before), device (IOps.Sample with Qwen2.5's defaults T 0.7, top-k 20, top-p 0.8: only the id comes back; recorded steps include it), or both.",
            DefaultValueFactory = _ => "host",
        };
        sample.AcceptOnlyFromAmong("host", "device", "both");
        var copyMiB = new Option<int>("--copy-mib") { Description = "Size of the device-to-device copy that measures bandwidth.", DefaultValueFactory = _ => 1024 };
        var gemv = new Option<bool>("--gemv") { Description = "Also time the bf16 GEMVs of the largest shape alone." };
        var gemm = new Option<bool>("--gemm")
        {
            Description = "Also time the built-in matmul against cuBLASLt over T = 2…256 at each shape's matrices (where cuBLASLt starts to win). The cuBLASLt GEMM rate itself is measured whenever --gemm or --prefill-bench is given.",
        };
        var profile = new Option<bool>("--profile")
        {
            Description = "Time every op on the device (a stream wait around each) and print the table at the end: for where prefill spends its time, run with --prefill-bench N --tokens 1 --warmup 0 --prefill 1 (the decode timings then include the waits).",
        };
        var markdown = new Option<FileInfo?>("--markdown") { Description = "Append the results table (markdown) to this file." };
        var seed = new Option<int>("--seed") { Description = "Seed of the random weights and tokens.", DefaultValueFactory = _ => 1 };
        var command = new Command("bench-decode", "Benchmark batch-1 decode on random weights at real Qwen2.5 shapes (ms/token, bytes/token, fraction of the measured copy bandwidth).")
        {
            shapes, arches, tokens, warmup, contexts, prefill, prefillBench, backend, graphs, pdl, sample, copyMiB, gemv, gemm, profile, markdown, seed,
        };
        command.Hidden = true;
        command.SetAction(parse =>
        {
            var options = new Options(
                Split(parse.GetValue(shapes)!),
                Split(parse.GetValue(arches)!).Select(ParseArchitecture).ToArray(),
                Split(parse.GetValue(contexts)!).Select(c => int.Parse(c, Inv)).ToArray(),
                parse.GetValue(tokens),
                parse.GetValue(warmup),
                parse.GetValue(prefill),
                parse.GetValue(graphs)!,
                parse.GetValue(pdl)!,
                parse.GetValue(sample)!,
                parse.GetValue(seed));
            if (options.Tokens < 1 || options.Warmup < 0 || options.Prefill < 1 || options.Contexts.Any(c => c < 1))
            {
                throw new RadladsException("bench-decode: --tokens, --prefill and every --context must be at least 1, --warmup at least 0");
            }

            using var device = CommonOptions.CreateBackend(parse.GetValue(backend)!, parse.GetValue(profile), io.Error);
            if (parse.GetValue(prefillBench) < 0)
            {
                throw new RadladsException("bench-decode: --prefill-bench must be at least 0");
            }

            var lines = Run(io, device, options, parse.GetValue(copyMiB), parse.GetValue(gemv), parse.GetValue(gemm), parse.GetValue(prefillBench));
            if (device is ProfilingBackend profiled)
            {
                lines.Add("");
                lines.Add("Op profile (every op, stream wait around each), all passes above:");
                lines.Add("```");
                lines.Add(profiled.Profile.FormatReport());
                lines.Add("```");
                lines.Add(profiled.Profile.FormatPrefillMixing());
                io.Output.WriteLine(string.Join(Environment.NewLine, lines.TakeLast(6)));
            }

            if (parse.GetValue(markdown) is FileInfo file)
            {
                File.AppendAllLines(file.FullName, lines);
            }

            return 0;
        });
        return command;
    }

    private sealed record Options(string[] Shapes, Architecture[] Architectures, int[] Contexts, int Tokens, int Warmup, int Prefill, string Graphs, string Pdl, string Sample, int Seed);

    /// <summary>--sample as on-device flags: host → [false], device → [true], both → [false, true].</summary>
    private static bool[] SampleSwitch(string value) => Switch(value switch { "both" => "both", "device" => "on", _ => "off" });

    private static bool[] Switch(string value) => value switch { "both" => [false, true], "off" => [false], _ => [true] };

    private static string[] Split(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static Architecture ParseArchitecture(string name) => name switch
    {
        "rwkv7" or "rwkv7qwen2" => Architecture.Rwkv7Qwen2,
        "qwen2" => Architecture.Qwen2,
        _ => throw new RadladsException($"bench-decode: --arch must be rwkv7 or qwen2, got '{name}'"),
    };

    private static List<string> Run(CliContext io, IBackend device, Options options, int copyMiB, bool gemv, bool gemm, int prefillTokens)
    {
        // The models run on `device` (profiled with --profile); device-specific work talks to the backend inside.
        var raw = device is ProfilingBackend p ? p.Inner : device;
        var o = io.Output;
        var lines = new List<string>();
        void Line(string text)
        {
            o.WriteLine(text);
            lines.Add(text);
        }

        Line($"device: {device.Description}");
        double copy = 0;
        double gemmRate = 0;
        if (raw is CudaBackend cuda)
        {
            var (bandwidth, ms) = CudaBenchmarks.CopyBandwidth(cuda, (long)copyMiB << 20, 20);
            copy = bandwidth;
            Line(string.Create(Inv, $"copy bandwidth: {bandwidth / 1e9:F0} GB/s (device-to-device copy of {copyMiB} MiB in {ms:F3} ms, median of 20, bytes read + written)"));
            if (gemv)
            {
                foreach (var shape in options.Shapes)
                {
                    var config = SyntheticModel.Config(shape, Architecture.Qwen2);
                    Gemv(cuda, Line, copy, config.IntermediateSize, config.HiddenSize, $"{shape} mlp up");
                    Gemv(cuda, Line, copy, config.HiddenSize, config.IntermediateSize, $"{shape} mlp down");
                    Gemv(cuda, Line, copy, config.HiddenSize, config.HiddenSize, $"{shape} o_proj");
                    Gemv(cuda, Line, copy, config.NumKeyValueHeads * config.HeadDim, config.HiddenSize, $"{shape} k_proj");
                    Gemv(cuda, Line, copy, config.VocabSize, config.HiddenSize, $"{shape} lm head");
                }
            }

            if (gemm || prefillTokens > 0)
            {
                gemmRate = GemmRate(cuda, Line, options.Shapes, Math.Max(prefillTokens, 2048));
            }

            if (gemm)
            {
                Crossover(cuda, Line, options.Shapes);
            }
        }

        var prefillRows = new List<string>();
        Line("");
        Line("| shape | arch | context | graphs | pdl | sample | ms/token | p50 ms | tokens/s | MB/token (weights + state) | GB/s | of copy BW |");
        Line("|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|");
        var random = new Random(options.Seed);
        foreach (var shape in options.Shapes)
        {
            foreach (var architecture in options.Architectures)
            {
                var config = SyntheticModel.Config(shape, architecture);
                var watch = Stopwatch.StartNew();
                using var model = SyntheticModel.Create(config, device, options.Seed);
                (raw as CudaBackend)?.Synchronize();
                io.Error.WriteLine(string.Create(Inv, $"built {shape} {config.ModelType} with random weights ({model.ParameterCount / 1e9:F2} B parameters) in {watch.Elapsed.TotalSeconds:F1} s"));
                if (prefillTokens > 0)
                {
                    var (ms, calls) = Prefill(model, prefillTokens, random, raw as CudaBackend);
                    if (calls is { } n)
                    {
                        // Where the device may have sat idle: the final logits download is one wait.
                        io.Error.WriteLine(string.Create(Inv,
                            $"prefill {shape} {config.ModelType} T = {prefillTokens}: {ms:F1} ms; during it {n.Waits} host waits, {n.Allocations} cuMemAlloc, {n.Frees} cuMemFree"));
                    }

                    var (gemmFlops, sequenceFlops) = SyntheticModel.PrefillFlops(config, prefillTokens);
                    double rate = (gemmFlops + sequenceFlops) / (ms / 1000);
                    string path = raw is CudaBackend g
                        ? (g.HasGemmLibrary && prefillTokens >= g.GemmMinRows ? "cuBLASLt" : "built-in")
                        : raw.Name;
                    prefillRows.Add(string.Create(Inv,
                        $"| {shape} | {(architecture == Architecture.Qwen2 ? "qwen2" : "rwkv7")} | {prefillTokens} | {path} | {ms:F1} | {prefillTokens / (ms / 1000):F0} | {gemmFlops / 1e9:F1} + {sequenceFlops / 1e9:F1} | {rate / 1e12:F2} | {(gemmRate > 0 ? (rate / gemmRate).ToString("P1", Inv) : "n/a")} | {(gemmRate > 0 ? (gemmFlops / (ms / 1000) / gemmRate).ToString("P1", Inv) : "n/a")} |"));
                }

                foreach (int context in options.Contexts)
                {
                    foreach (bool graph in Switch(options.Graphs))
                    {
                        foreach (bool programmatic in Switch(options.Pdl))
                        {
                            foreach (bool onDevice in SampleSwitch(options.Sample))
                            {
                                string graphText = "n/a", pdlText = "n/a";
                                // Replays before and after say whether the recorded path ran ("on (not used)" if not).
                                Func<long>? replays = null;
                                if (raw is CudaBackend c)
                                {
                                    c.CaptureEnabled = graph;
                                    c.ProgrammaticLaunch = programmatic && c.Device.ComputeMajor >= 9 && c.Device.Driver.HasLaunchEx;
                                    replays = () => c.Replays;
                                    pdlText = c.ProgrammaticLaunch ? "on" : "off";
                                }
                                else if (raw is IlgpuBackend ilgpu && ilgpu.CaptureUnsupported is null)
                                {
                                    ilgpu.CaptureEnabled = graph;
                                    replays = () => ilgpu.Replays;
                                }

                                long replaysBefore = replays?.Invoke() ?? 0;
                                var (mean, p50) = Decode(model, context, options, random, onDevice);
                                if (replays is not null)
                                {
                                    graphText = !graph ? "off" : replays() > replaysBefore ? "on" : "on (not used)";
                                }

                                var (weights, state) = SyntheticModel.DecodeBytes(config, context);
                                double bytes = weights + state;
                                double rate = bytes / (mean / 1000);
                                string fraction = copy > 0 ? string.Create(Inv, $"{rate / copy:P1}") : "n/a";
                                Line(string.Create(Inv,
                                    $"| {shape} | {(architecture == Architecture.Qwen2 ? "qwen2" : "rwkv7")} | {context} | {graphText} | {pdlText} | {(onDevice ? "device" : "host")} | {mean:F3} | {p50:F3} | {1000 / mean:F1} | {weights / 1e6:F1} + {state / 1e6:F1} | {rate / 1e9:F0} | {fraction} |"));
                            }
                        }
                    }
                }
            }
        }

        if (prefillRows.Count > 0)
        {
            Line("");
            Line("Prefill FLOPs (SyntheticModel.PrefillFlops): GEMM = 2·T·(layer matrix elements) + the head's last row; mixing = attention 2·H·N·T(T+1) or wkv7 9·H·N²·T per layer.");
            Line("| shape | arch | prefill tokens | GEMMs | ms | tokens/s | GFLOP (GEMM + mixing) | TFLOP/s | of GEMM rate | GEMM FLOPs alone, of GEMM rate |");
            Line("|---|---|---:|---|---:|---:|---:|---:|---:|---:|");
            prefillRows.ForEach(Line);
        }

        return lines;
    }

    /// <summary>
    /// The cuBLASLt bf16 GEMM rate: 8192³, then each shape's MLP up and down and a C × C projection at
    /// <paramref name="tokens"/> rows. Returns the best rate (the roofline prefill is compared with), 0 without cuBLASLt.
    /// </summary>
    private static double GemmRate(CudaBackend cuda, Action<string> line, string[] shapes, int tokens)
    {
        var problems = new List<(string What, int T, int K, int M)> { ("8192³", 8192, 8192, 8192) };
        foreach (var shape in shapes)
        {
            var config = SyntheticModel.Config(shape, Architecture.Qwen2);
            int c = config.HiddenSize, f = config.IntermediateSize;
            problems.Add(($"{shape} mlp up", tokens, c, f));
            problems.Add(($"{shape} mlp down", tokens, f, c));
            problems.Add(($"{shape} C×C", tokens, c, c));
        }

        double best = 0;
        foreach (var (what, t, k, m) in problems)
        {
            var result = CudaBenchmarks.Bf16Gemm(cuda, t, k, m, 20);
            if (result is not { } r)
            {
                line($"gemm bf16 {what}: not run ({cuda.GemmStatus})");
                continue;
            }

            best = Math.Max(best, r.FlopsPerSecond);
            line(string.Create(Inv, $"gemm bf16 {what} (T {t}, K {k}, M {m}) on cuBLASLt: {r.Milliseconds:F3} ms, {r.FlopsPerSecond / 1e12:F1} TFLOP/s (median of 20, fp32 accumulate, fp32 out)"));
        }

        if (best > 0)
        {
            line(string.Create(Inv, $"GEMM rate: {best / 1e12:F1} TFLOP/s (the best above: the roofline prefill is measured against)"));
        }

        return best;
    }

    /// <summary>
    /// MatMul through the backend (fp32 x, bf16 W, as the model calls it) at T = 2…256 on the built-in kernels and on
    /// cuBLASLt (x's conversion included), for each shape's MLP up/down and k_proj: where cuBLASLt starts to win.
    /// </summary>
    private static unsafe void Crossover(CudaBackend cuda, Action<string> line, string[] shapes)
    {
        if (!cuda.HasGemmLibrary)
        {
            line($"crossover: not run ({cuda.GemmStatus})");
            return;
        }

        int saved = cuda.GemmMinRows;
        line("");
        line("| shape | matrix [M, K] | T | built-in µs | cuBLASLt µs | built-in / cuBLASLt |");
        line("|---|---|---:|---:|---:|---:|");
        int[] rows = [2, 4, 8, 16, 32, 64, 128, 256];
        var wins = new bool[rows.Length];
        Array.Fill(wins, true);
        try
        {
            foreach (var shape in shapes)
            {
                var config = SyntheticModel.Config(shape, Architecture.Qwen2);
                int c = config.HiddenSize, f = config.IntermediateSize, kv = config.NumKeyValueHeads * config.HeadDim;
                foreach (var (what, m, k) in new[] { ("mlp up", f, c), ("mlp down", c, f), ("k_proj", kv, c) })
                {
                    long elements = (long)m * k;
                    var host = (ushort*)NativeMemory.Alloc((nuint)(elements * 2));
                    try
                    {
                        var random = new Random(3);
                        for (long i = 0; i < elements; i++)
                        {
                            host[i] = Bf16.FromSingle((random.NextSingle() - 0.5f) * 0.1f);
                        }

                        using var w = cuda.LoadWeight(new TensorData("w", DType.BF16, [m, k], (byte*)host, elements * 2));
                        for (int i = 0; i < rows.Length; i++)
                        {
                            int t = rows[i];
                            using var x = cuda.FromFloats(Enumerable.Range(0, t * k).Select(j => (float)Math.Sin(j)).ToArray(), t, k);
                            using var y = cuda.AllocateUninitialized(t, m);
                            cuda.GemmMinRows = int.MaxValue;
                            double builtIn = CudaBenchmarks.Time(cuda, () => cuda.Ops.MatMul(x, w, null, y), 3, 20);
                            cuda.GemmMinRows = 2;
                            double library = CudaBenchmarks.Time(cuda, () => cuda.Ops.MatMul(x, w, null, y), 3, 20);
                            wins[i] &= library < builtIn;
                            line(string.Create(Inv, $"| {shape} | {what} [{m}, {k}] | {t} | {builtIn * 1000:F1} | {library * 1000:F1} | {builtIn / library:F2} |"));
                        }
                    }
                    finally
                    {
                        NativeMemory.Free(host);
                    }
                }
            }
        }
        finally
        {
            cuda.GemmMinRows = saved;
        }

        // The smallest T from which cuBLASLt wins at every larger T too.
        int from = -1;
        for (int i = rows.Length - 1; i >= 0 && wins[i]; i--)
        {
            from = rows[i];
        }

        line(from > 0
            ? $"crossover: cuBLASLt is faster for every matrix above from T = {from} (the backend's threshold is {saved}; RADLADS_CUBLASLT_MIN_ROWS sets it)"
            : $"crossover: cuBLASLt is not faster for every matrix at any one T from there on (threshold {saved})");
    }

    /// <summary>
    /// One timed forward pass of <paramref name="count"/> random tokens from a fresh state (after an untimed one): wall
    /// milliseconds and, on CUDA, the host waits / cuMemAlloc / cuMemFree calls the timed pass made.
    /// </summary>
    private static (double Ms, (long Waits, long Allocations, long Frees)? Calls) Prefill(CausalLM model, int count, Random random,
        CudaBackend? cuda)
    {
        var ids = Enumerable.Range(0, count).Select(_ => random.Next(model.Config.VocabSize)).ToArray();
        using (var warm = model.CreateState())
        {
            model.Forward(warm, ids);
        }

        using var state = model.CreateState();
        cuda?.Synchronize();
        var before = cuda?.Device.Driver.HostCalls;
        var watch = Stopwatch.StartNew();
        model.Forward(state, ids);
        double ms = watch.Elapsed.TotalMilliseconds;
        if (before is not { } b)
        {
            return (ms, null);
        }

        var after = cuda!.Device.Driver.HostCalls;
        return (ms, (after.Waits - b.Waits, after.Allocations - b.Allocations, after.Frees - b.Frees));
    }

    /// <summary>
    /// Decode steps at <paramref name="context"/>: mean and median wall milliseconds per step, with the logits downloaded
    /// (the step's input token is random) or the token sampled on the device and fed back.
    /// </summary>
    private static (double Mean, double P50) Decode(CausalLM model, int context, Options options, Random random, bool onDevice)
    {
        int vocab = model.Config.VocabSize;
        using var state = model.CreateState();
        int real = Math.Min(options.Prefill, context);
        for (int done = 0; done < real; done += 512)
        {
            var chunk = Enumerable.Range(0, Math.Min(512, real - done)).Select(_ => random.Next(vocab)).ToArray();
            model.Forward(state, chunk);
        }

        state.FastForward(context, options.Warmup + options.Tokens + 1, random);
        for (int i = 0; i < options.Warmup; i++)
        {
            model.Forward(state, [random.Next(vocab)]);
        }

        var times = new double[options.Tokens];
        var ids = Enumerable.Range(0, options.Tokens).Select(_ => random.Next(vocab)).ToArray();
        var sampler = new Sampler(new SamplingOptions { Temperature = 0.7f, TopK = 20, TopP = 0.8f, Seed = (ulong)options.Seed });
        int token = ids[0];
        if (onDevice)
        {
            token = model.ForwardSample(state, [token], sampler.NextRow(), vocab); // records the step with its Sample
        }

        var total = Stopwatch.StartNew();
        for (int i = 0; i < options.Tokens; i++)
        {
            long start = Stopwatch.GetTimestamp();
            if (onDevice)
            {
                token = model.ForwardSample(state, [token], sampler.NextRow(), vocab);
            }
            else
            {
                model.Forward(state, [ids[i]]);
            }

            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        double mean = total.Elapsed.TotalMilliseconds / options.Tokens;
        Array.Sort(times);
        return (mean, times[times.Length / 2]);
    }

    /// <summary>One bf16 GEMV [M, K] alone (T = 1), several weights in turn so that none stays in L2.</summary>
    private static unsafe void Gemv(CudaBackend cuda, Action<string> line, double copy, int m, int k, string what)
    {
        long bytes = 2L * m * k;
        int copies = (int)Math.Clamp((512L << 20) / bytes, 1, 8);
        var host = (ushort*)NativeMemory.Alloc((nuint)bytes);
        var weights = new List<Tensor>();
        try
        {
            // A block of random values repeated over the matrix: the GPU only has to read non-zero data.
            var random = new Random(7);
            var block = new ushort[1 << 20];
            for (int i = 0; i < block.Length; i++)
            {
                block[i] = Bf16.FromSingle((random.NextSingle() - 0.5f) * 0.1f);
            }

            for (long i = 0; i < bytes / 2; i += block.Length)
            {
                block.AsSpan(0, (int)Math.Min(block.Length, (bytes / 2) - i)).CopyTo(new Span<ushort>(host + i, (int)Math.Min(block.Length, (bytes / 2) - i)));
            }

            for (int i = 0; i < copies; i++)
            {
                weights.Add(cuda.LoadWeight(new TensorData("w", DType.BF16, [m, k], (byte*)host, bytes)));
            }

            using var x = cuda.FromFloats(Enumerable.Range(0, k).Select(i => (float)Math.Sin(i)).ToArray(), 1, k);
            using var y = cuda.AllocateUninitialized(1, m);
            int next = 0;
            double ms = CudaBenchmarks.Time(cuda, () => cuda.Ops.MatMul(x, weights[next++ % copies], null, y), 3, 30);
            double rate = bytes / (ms / 1000);
            line(string.Create(Inv, $"gemv bf16 {what} [{m}, {k}]: {ms * 1000:F1} µs, {rate / 1e9:F0} GB/s = {rate / copy:P1} of copy bandwidth"));
        }
        finally
        {
            foreach (var w in weights)
            {
                w.Dispose();
            }

            NativeMemory.Free(host);
        }
    }
}
