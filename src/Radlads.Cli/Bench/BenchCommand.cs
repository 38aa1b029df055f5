using System.CommandLine;
using System.Globalization;
using Radlads.Cli.Plots;
using Radlads.Models;

namespace Radlads.Cli.Bench;

/// <summary>
/// `radlads bench`: decode, batched decode, prefill, memory and the appendix-E serving scenario for Qwen2 and the
/// RAD-RWKV6/7 students, on random bf16 weights at real shapes (--shape) or real checkpoints (--model); a progress
/// bar, a summary table, and CSV + Markdown + plots in a results folder named after the card.
/// </summary>
internal static class BenchCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create(CliContext io)
    {
        var shape = new Option<string?>("--shape")
        {
            Description = "Synthetic models with random bf16 weights at real shapes, comma-separated: qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b, qwen2.5-32b (the qwen2.5- prefix may be left out), or tiny (for tests). Each shape runs as Qwen2 and as its RAD-RWKV6/7 students (see --arch).",
        };
        var model = new Option<string[]>("--model", "-m")
        {
            Description = "A checkpoint folder to measure instead of (or beside) --shape; repeat for several (e.g. a Qwen2 teacher and its student).",
            AllowMultipleArgumentsPerToken = false,
        };
        var backend = new Option<string>("--backend", "-b") { Description = "cuda, ilgpu or cpu; auto uses CUDA when it can and says why not otherwise.", DefaultValueFactory = _ => "auto" };
        backend.AcceptOnlyFromAmong("auto", "cuda", "ilgpu", "cpu");
        var ilgpuDevice = CommonOptions.IlgpuDevice();
        var arch = new Option<string>("--arch") { Description = "Architectures to run, comma-separated: qwen2, rwkv6, rwkv7.", DefaultValueFactory = _ => "qwen2,rwkv6,rwkv7" };
        var contexts = new Option<string?>("--contexts")
        {
            Description = "Context lengths of batch-1 decode, comma-separated (k = ×1024). Default 1k,4k,16k,32k,64k,128k; with --quick 1k,32k.",
        };
        var batches = new Option<string?>("--batches") { Description = "Batch sizes of batched decode, comma-separated. Default 1,8,32,64; with --quick 1,32." };
        var batchContext = new Option<string?>("--batch-context") { Description = "Context every sequence of batched decode is at. Default 4k; with --quick 1k." };
        var prefill = new Option<int?>("--prefill-tokens") { Description = "Prompt length of the prefill and time-to-first-token measurement. Default 2048; with --quick 512." };
        var decodeTokens = new Option<int?>("--decode-tokens") { Description = "Timed decode steps per configuration. Default 32; with --quick 8." };
        var warmup = new Option<int?>("--warmup") { Description = "Untimed decode steps before the timed ones (the first records the CUDA graph). Default 4; with --quick 2." };
        var serving = new Option<bool>("--serving") { Description = "Also run the serving scenario of RADLADS appendix E (32 requests; 8k/7k/6k in, 256/1k/2k out) with continuous batching, and report wall time and the RAD-RWKV speed-up." };
        var servingScale = new Option<double?>("--serving-scale") { Description = "Multiply the serving scenario's request lengths by this (0 < x ≤ 1) for a shorter run; the tables say so. Default 1; with --quick 0.125." };
        var servingRows = new Option<string?>("--serving-rows")
        {
            Description = "Which rows of the paper's serving table to run, comma-separated: 1 = 8k in / 256 out, 2 = 7k / 1k, 3 = 6k / 2k. Default all three.",
        };
        var servingRequests = new Option<int>("--serving-requests") { Description = "Concurrent requests of the serving scenario.", DefaultValueFactory = _ => 32 };
        var output = new Option<string?>("--output", "-o") { Description = "Results folder. Default bench/results/<card>/<date>/ (a suffix is added if it exists)." };
        var quick = new Option<bool>("--quick") { Description = "A short run: fewer contexts and batches, a shorter prompt, fewer timed steps, the serving scenario at 1/8 length." };
        var memoryLimit = new Option<double?>("--memory-limit") { Description = "Plan as if the device had at most this many GiB (what would fit on a smaller card)." };
        var report = new Option<string?>("--report") { Description = "Measure nothing: rebuild results.md and the plots of a results folder from its results.csv and peers*.csv (the PyTorch peers' output)." };
        var seed = new Option<int>("--seed") { Description = "Seed of the random weights, tokens and request lengths.", DefaultValueFactory = _ => 1 };
        var command = new Command("bench", "Benchmark decode, batched decode, prefill, memory and serving of Qwen2 vs RAD-RWKV6/7 (random weights at real shapes, or --model), with CSV, Markdown and plots.")
        {
            shape, model, backend, ilgpuDevice, arch, contexts, batches, batchContext, prefill, decodeTokens, warmup, serving, servingScale,
            servingRequests, servingRows, output, quick, memoryLimit, report, seed,
        };
        command.SetAction(parse =>
        {
            if (parse.GetValue(report) is string folder)
            {
                return Report(io, folder);
            }

            bool q = parse.GetValue(quick);
            var options = new BenchOptions
            {
                Shapes = parse.GetValue(shape) is string s ? Split(s, "--shape").Select(SyntheticModel.Normalize).Distinct().ToArray() : [],
                Models = parse.GetValue(model) ?? [],
                Architectures = Split(parse.GetValue(arch)!, "--arch").Select(ParseArch).Distinct().ToArray(),
                Contexts = Lengths(parse.GetValue(contexts) ?? (q ? "1k,32k" : "1k,4k,16k,32k,64k,128k"), "--contexts"),
                Batches = Lengths(parse.GetValue(batches) ?? (q ? "1,32" : "1,8,32,64"), "--batches"),
                BatchContext = Lengths(parse.GetValue(batchContext) ?? (q ? "1k" : "4k"), "--batch-context").Single(),
                PrefillTokens = Positive(parse.GetValue(prefill) ?? (q ? 512 : 2048), "--prefill-tokens"),
                DecodeTokens = Positive(parse.GetValue(decodeTokens) ?? (q ? 8 : 32), "--decode-tokens"),
                Warmup = NonNegative(parse.GetValue(warmup) ?? (q ? 2 : 4), "--warmup"),
                Serving = parse.GetValue(serving),
                ServingScale = parse.GetValue(servingScale) ?? (q ? 0.125 : 1),
                ServingRequests = Positive(parse.GetValue(servingRequests), "--serving-requests"),
                ServingRows = parse.GetValue(servingRows) is string rowList ? ServingRowNumbers(rowList) : [1, 2, 3],
                MemoryLimit = parse.GetValue(memoryLimit) is double gib
                    ? (gib > 0 && double.IsFinite(gib) ? (long)(gib * BenchRunner.GiB) : throw new RadladsException($"--memory-limit must be a positive number of GiB, got {gib.ToString(Inv)}"))
                    : null,
                Quick = q,
                Seed = parse.GetValue(seed),
            };
            if (options.ServingScale is <= 0 or > 1 || !double.IsFinite(options.ServingScale))
            {
                throw new RadladsException($"--serving-scale must be in (0, 1], got {options.ServingScale.ToString(Inv)}");
            }

            if (options.Shapes.Count == 0 && options.Models.Count == 0)
            {
                throw new RadladsException("bench: give --shape (e.g. --shape qwen2.5-7b, random weights at that shape) or --model DIR (a checkpoint folder)");
            }

            var specs = Plan(options);
            using var device = CommonOptions.CreateBackend(parse.GetValue(backend)!, io.Error, parse.GetValue(ilgpuDevice)!);
            return Run(io, device, options, specs, parse.GetValue(output), parse.Tokens.Skip(1).Select(t => t.Value));
        });
        return command;
    }

    private static int Run(CliContext io, Ops.IBackend device, BenchOptions options, List<BenchRunner.ModelSpec> specs, string? outputOption, IEnumerable<string> args)
    {
        var card = CardInfo.Of(device);
        string folder = outputOption ?? DefaultFolder(card);
        Directory.CreateDirectory(folder);
        bool interactive = ReferenceEquals(io.Error, Console.Error) && !Console.IsErrorRedirected;
        var progress = new Progress(io.Error, interactive, BenchRunner.Units(options, specs.Count));
        io.Error.WriteLine($"bench: {card.Name} ({card.Driver}), backend {device.Name}; results in {folder}");
        var header = Header(card, device.Description, args, options);
        File.WriteAllLines(Path.Combine(folder, "run.txt"), header);
        string csv = Path.Combine(folder, BenchReport.ResultsFile);
        var runner = new BenchRunner(device, options, card, progress, io.Error) { RowAdded = rows => BenchCsv.Write(csv, rows) };
        var rows = runner.Run(specs);
        progress.Finish();
        BenchCsv.Write(csv, rows);
        string markdown = BenchReport.Write(folder, BenchReport.ReadFolder(folder), header, new SvgPlotWriter());
        io.Output.Write(markdown);
        io.Error.WriteLine($"bench: wrote {BenchReport.ResultsFile}, {BenchReport.MarkdownFile} and 3 plots to {folder}");
        return 0;
    }

    private static int Report(CliContext io, string folder)
    {
        var runFile = Path.Combine(folder, "run.txt");
        var header = File.Exists(runFile) ? File.ReadAllLines(runFile) : ["# radlads bench"];
        string markdown = BenchReport.Write(folder, BenchReport.ReadFolder(folder), header, new SvgPlotWriter());
        io.Output.Write(markdown);
        io.Error.WriteLine($"bench: rebuilt {BenchReport.MarkdownFile} and the plots in {folder}");
        return 0;
    }

    private static string[] Header(CardInfo card, string description, IEnumerable<string> args, BenchOptions o)
    {
        var now = DateTime.UtcNow;
        return
        [
            $"# radlads bench — {card.Name}",
            "",
            $"- date: {now.ToString("yyyy-MM-dd HH:mm", Inv)} UTC",
            $"- card: {card.Name}; {card.Driver}",
            $"- backend: {description}",
            $"- commit: {card.Commit}",
            $"- command: `radlads bench {string.Join(' ', args)}`",
            string.Create(Inv, $"- decode: {o.Warmup} untimed + {o.DecodeTokens} timed steps per row (ms/step = the median step; batch-1 contexts timed in interleaved rounds when they fit together), each step's greedy token picked on the device (only ids cross the bus); contexts above the few real tokens are fast-forwarded (KV caches filled with random rows)"),
            "- weights: random bf16 at the named shape (--shape) or the checkpoint (--model); activations, state and KV cache fp32",
        ];
    }

    private static string DefaultFolder(CardInfo card)
    {
        string root = Path.Combine("bench", "results", card.Slug);
        string date = DateTime.UtcNow.ToString("yyyy-MM-dd", Inv);
        string folder = Path.Combine(root, date);
        for (int n = 2; Directory.Exists(folder); n++)
        {
            folder = Path.Combine(root, $"{date}-{n}");
        }

        return folder;
    }

    /// <summary>The models to measure: every shape × architecture, then the checkpoint folders (their own architecture).</summary>
    private static List<BenchRunner.ModelSpec> Plan(BenchOptions o)
    {
        var specs = new List<BenchRunner.ModelSpec>();
        foreach (var s in o.Shapes)
        {
            foreach (var a in o.Architectures)
            {
                var config = SyntheticModel.Config(s, a);
                specs.Add(new BenchRunner.ModelSpec(s, config, null, SyntheticModel.WeightBytes(config)));
            }
        }

        foreach (var dir in o.Models)
        {
            if (!Directory.Exists(dir))
            {
                throw new RadladsException($"--model {dir}: folder not found");
            }

            var config = ModelConfig.Load(dir);
            if (!o.Architectures.Contains(config.Architecture))
            {
                throw new RadladsException($"--model {dir} is {config.ModelType}, which --arch leaves out");
            }

            // Device bytes of the weights: the checkpoint's tensor bytes (vectors become fp32 on load: a small error).
            long bytes = Directory.GetFiles(dir, "*.safetensors").Sum(f => new FileInfo(f).Length);
            specs.Add(new BenchRunner.ModelSpec(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))), config, dir, bytes));
        }

        return specs;
    }

    private static string[] Split(string list, string option)
    {
        var items = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return items.Length > 0 ? items : throw new RadladsException($"{option}: give at least one value");
    }

    private static Architecture ParseArch(string name) => name.ToLowerInvariant() switch
    {
        "qwen2" => Architecture.Qwen2,
        "rwkv6" or "rad-rwkv6" or "rwkv6qwen2" => Architecture.Rwkv6Qwen2,
        "rwkv7" or "rad-rwkv7" or "rwkv7qwen2" => Architecture.Rwkv7Qwen2,
        _ => throw new RadladsException($"--arch: unknown architecture '{name}' (use qwen2, rwkv6, rwkv7)"),
    };

    /// <summary>Positive integers, comma-separated, k = ×1024 (1k = 1024, 128k = 131072).</summary>
    internal static int[] Lengths(string list, string option) => Split(list, option).Select(item =>
    {
        string digits = item.EndsWith('k') || item.EndsWith('K') ? item[..^1] : item;
        int scale = digits.Length < item.Length ? 1024 : 1;
        return int.TryParse(digits, NumberStyles.None, Inv, out int v) && v > 0 && (long)v * scale <= 1 << 24
            ? v * scale
            : throw new RadladsException($"{option}: '{item}' is not a positive whole number of tokens (e.g. 4096 or 4k, at most 16384k)");
    }).Distinct().Order().ToArray();

    /// <summary>--serving-rows: 1-based rows of the paper's serving table.</summary>
    internal static int[] ServingRowNumbers(string list) => Split(list, "--serving-rows").Select(item =>
        int.TryParse(item, NumberStyles.None, Inv, out int row) && row >= 1 && row <= ServingScenario.Paper.Count
            ? row
            : throw new RadladsException($"--serving-rows: '{item}' is not a row of the paper's serving table (1 = 8k in / 256 out, 2 = 7k / 1k, 3 = 6k / 2k)")).Distinct().Order().ToArray();

    private static int Positive(int value, string option) =>
        value > 0 ? value : throw new RadladsException($"{option} must be at least 1, got {value}");

    private static int NonNegative(int value, string option) =>
        value >= 0 ? value : throw new RadladsException($"{option} must be at least 0, got {value}");
}
