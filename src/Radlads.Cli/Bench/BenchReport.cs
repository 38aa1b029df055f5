using System.Globalization;
using System.Text;
using Radlads.Cli.Plots;

namespace Radlads.Cli.Bench;

/// <summary>
/// Turns bench rows (ours and the peers') into the Markdown summary and the plots. Used after a run and by
/// `radlads bench --report DIR`, which re-reads the CSV files of a results folder (peers included).
/// </summary>
internal static class BenchReport
{
    public const string ResultsFile = "results.csv";
    public const string MarkdownFile = "results.md";
    public const string LatencyPlot = "decode-latency-vs-context";
    public const string ThroughputPlot = "throughput-vs-batch";
    public const string MemoryPlot = "memory-vs-context";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Every row of the bench CSV files in <paramref name="folder"/>: results.csv first, then peers*.csv.</summary>
    public static List<BenchRow> ReadFolder(string folder)
    {
        string ours = Path.Combine(folder, ResultsFile);
        if (!File.Exists(ours))
        {
            throw new RadladsException($"--report {folder}: no {ResultsFile} there; give a folder that `radlads bench` wrote");
        }

        var rows = BenchCsv.Read(ours);
        foreach (var peer in Directory.GetFiles(folder, "peers*.csv").Order(StringComparer.Ordinal))
        {
            rows.AddRange(BenchCsv.Read(peer));
        }

        return rows;
    }

    /// <summary>Writes results.md and the plots; returns the Markdown text.</summary>
    public static string Write(string folder, IReadOnlyList<BenchRow> rows, IReadOnlyList<string> header, IPlotWriter plots)
    {
        ArgumentNullException.ThrowIfNull(plots);
        var names = new[] { LatencyPlot, ThroughputPlot, MemoryPlot };
        plots.Write(LatencyChart(rows), Path.Combine(folder, $"{LatencyPlot}.{plots.Extension}"));
        plots.Write(ThroughputChart(rows), Path.Combine(folder, $"{ThroughputPlot}.{plots.Extension}"));
        plots.Write(MemoryChart(rows), Path.Combine(folder, $"{MemoryPlot}.{plots.Extension}"));
        string markdown = Markdown(rows, header, names.Select(n => $"{n}.{plots.Extension}").ToArray());
        File.WriteAllText(Path.Combine(folder, MarkdownFile), markdown, new UTF8Encoding(false));
        return markdown;
    }

    private static string Series(BenchRow r) => r.Source == "radlads" ? $"{r.Arch} {r.Shape}" : $"{r.Source}: {r.Arch} {r.Shape}";

    public static LineChart LatencyChart(IReadOnlyList<BenchRow> rows) =>
        new("Batch-1 decode latency vs context", "context (tokens)", "ms per token", Group(rows.Where(r => r.Ok && r.Measure == "decode"), r => r.Context!.Value, r => r.MsPerToken!.Value))
        { LogX = true };

    public static LineChart ThroughputChart(IReadOnlyList<BenchRow> rows) =>
        new("Batched decode throughput vs batch", "batch (sequences)", "tokens per second", Group(rows.Where(r => r.Ok && r.Measure == "batched_decode"), r => r.Batch!.Value, r => r.TokensPerSecond!.Value))
        { LogX = true };

    /// <summary>Peak device memory of batch-1 decode (weights + state/KV + workspace); weights + state where no peak is known.</summary>
    public static LineChart MemoryChart(IReadOnlyList<BenchRow> rows) =>
        new("Memory vs context (batch-1 decode)", "context (tokens)", "GiB", Group(rows.Where(r => r.Ok && r.Measure == "decode"), r => r.Context!.Value,
            r => (r.PeakBytes ?? ((r.WeightsBytes ?? 0) + (r.StateBytes ?? 0))) / BenchRunner.GiB))
        { LogX = true };

    private static List<PlotSeries> Group(IEnumerable<BenchRow> rows, Func<BenchRow, double> x, Func<BenchRow, double> y) =>
        rows.Where(r => r.Context is not null && r.Batch is not null && (r.MsPerToken is not null || r.TokensPerSecond is not null))
            .GroupBy(Series)
            .Select(g => new PlotSeries(g.Key, g.Select(r => (x(r), y(r))).OrderBy(p => p.Item1).ToArray()))
            .ToList();

    public static string Markdown(IReadOnlyList<BenchRow> rows, IReadOnlyList<string> header, IReadOnlyList<string> plotFiles)
    {
        var md = new StringBuilder();
        void L(string line = "") => md.Append(line).Append('\n');
        foreach (var line in header)
        {
            L(line);
        }

        L("");
        foreach (var r in rows.Where(r => r.Measure.StartsWith("roofline", StringComparison.Ordinal)))
        {
            L(string.Create(Inv, $"- roofline ({r.Source}): {(r.Measure == "roofline_copy" ? "copy bandwidth" : "GEMM rate")} **{r.Roofline:G4}** {(r.Measure == "roofline_copy" ? "GB/s" : "TFLOP/s")} — {r.Note}"));
        }

        var decode = rows.Where(r => r.Measure == "decode").ToList();
        if (decode.Count > 0)
        {
            var contexts = decode.Select(r => r.Context!.Value).Distinct().Order().ToArray();
            L("");
            L("## Batch-1 decode: ms/token (tokens/s, fraction of the copy bandwidth)");
            L("");
            L("| source | arch | shape | " + string.Join(" | ", contexts.Select(Ctx)) + " |");
            L("|---|---|---|" + string.Concat(contexts.Select(_ => "---:|")));
            foreach (var g in decode.GroupBy(r => (r.Source, r.Arch, r.Shape)))
            {
                L($"| {g.Key.Source} | {g.Key.Arch} | {g.Key.Shape} | " + string.Join(" | ", contexts.Select(c => Cell(g.FirstOrDefault(r => r.Context == c)))) + " |");
            }

            Flatness(decode, L);
            Speedups(decode, contexts, L);
        }

        var batched = rows.Where(r => r.Measure == "batched_decode").ToList();
        if (batched.Count > 0)
        {
            var batches = batched.Select(r => r.Batch!.Value).Distinct().Order().ToArray();
            L("");
            L($"## Batched decode at context {Ctx(batched[0].Context ?? 0)}: tokens/s over all sequences (ms per step, fraction of the copy bandwidth)");
            L("");
            L("| source | arch | shape | " + string.Join(" | ", batches.Select(b => $"batch {b}")) + " |");
            L("|---|---|---|" + string.Concat(batches.Select(_ => "---:|")));
            foreach (var g in batched.GroupBy(r => (r.Source, r.Arch, r.Shape)))
            {
                L($"| {g.Key.Source} | {g.Key.Arch} | {g.Key.Shape} | " + string.Join(" | ", batches.Select(b => BatchCell(g.FirstOrDefault(r => r.Batch == b)))) + " |");
            }
        }

        var prefill = rows.Where(r => r.Measure == "prefill").ToList();
        if (prefill.Count > 0)
        {
            L("");
            L("## Prefill and time to first token");
            L("");
            L("| source | arch | shape | prompt tokens | TTFT ms | tokens/s | of GEMM rate | peak GiB |");
            L("|---|---|---|---:|---:|---:|---:|---:|");
            foreach (var r in prefill)
            {
                L(r.Ok
                    ? string.Create(Inv, $"| {r.Source} | {r.Arch} | {r.Shape} | {r.Tokens} | {r.TtftMs:F1} | {r.TokensPerSecond:F0} | {Percent(r.RooflineFraction)} | {GiBText(r.PeakBytes)} |")
                    : $"| {r.Source} | {r.Arch} | {r.Shape} | {r.Tokens} | {r.Status} | | | |");
            }
        }

        var memory = decode.Concat(batched).Where(r => r.Ok && r.Source == "radlads").ToList();
        if (memory.Count > 0)
        {
            L("");
            L("## Device memory (GiB): weights, state or KV cache, workspace (peak − weights − state), peak");
            L("");
            L("| arch | shape | measure | context | batch | weights | state/KV | workspace | peak |");
            L("|---|---|---|---:|---:|---:|---:|---:|---:|");
            foreach (var r in memory)
            {
                L($"| {r.Arch} | {r.Shape} | {r.Measure} | {Ctx(r.Context ?? 0)} | {r.Batch} | {GiBText(r.WeightsBytes)} | {GiBText(r.StateBytes)} | {GiBText(r.WorkspaceBytes)} | {GiBText(r.PeakBytes)} |");
            }
        }

        Serving(rows, L);
        Peers(rows, L);
        NotFit(rows, L);
        if (plotFiles.Count > 0)
        {
            L("");
            L("## Plots");
            L("");
            foreach (var file in plotFiles)
            {
                L($"![{Path.GetFileNameWithoutExtension(file)}]({file})");
            }
        }

        return md.ToString();
    }

    private static void Flatness(List<BenchRow> decode, Action<string> L)
    {
        var lines = new List<string>();
        foreach (var g in decode.Where(r => r.Ok && r.Arch != "qwen2").GroupBy(r => (r.Source, r.Arch, r.Shape)))
        {
            var ms = g.Select(r => r.MsPerToken!.Value).ToArray();
            if (ms.Length >= 2)
            {
                double spread = (ms.Max() / ms.Min()) - 1;
                int lo = g.Min(r => r.Context!.Value), hi = g.Max(r => r.Context!.Value);
                string target = g.Key.Arch == "rwkv7" && g.Key.Shape == "7b" && g.Key.Source == "radlads" && lo <= 1024 && hi >= 131072
                    ? (spread <= 0.05 ? " — target (within 5 % from 1k to 128k): **met**" : " — target (within 5 % from 1k to 128k): **not met**") : "";
                lines.Add(string.Create(Inv, $"- {g.Key.Source} {g.Key.Arch} {g.Key.Shape}: slowest/fastest − 1 = {spread:P1} over {Ctx(lo)}–{Ctx(hi)}{target}"));
            }
        }

        if (lines.Count > 0)
        {
            L("");
            L("Flatness of the recurrent models' decode over context:");
            L("");
            lines.ForEach(L);
        }
    }

    private static void Speedups(List<BenchRow> decode, int[] contexts, Action<string> L)
    {
        var ours = decode.Where(r => r.Ok && r.Source == "radlads").ToList();
        var lines = new List<string>();
        foreach (var shape in ours.Select(r => r.Shape).Distinct())
        {
            foreach (var arch in new[] { "rwkv7", "rwkv6" })
            {
                var cells = contexts.Select(c =>
                {
                    var q = ours.FirstOrDefault(r => r.Shape == shape && r.Arch == "qwen2" && r.Context == c);
                    var s = ours.FirstOrDefault(r => r.Shape == shape && r.Arch == arch && r.Context == c);
                    return q is null || s is null ? "—" : string.Create(Inv, $"{q.MsPerToken!.Value / s.MsPerToken!.Value:F2}×");
                }).ToArray();
                if (cells.Any(c => c != "—"))
                {
                    lines.Add($"| {arch} over qwen2 | {shape} | " + string.Join(" | ", cells) + " |");
                }
            }
        }

        if (lines.Count == 0)
        {
            return;
        }

        L("");
        L("Speed-up of batch-1 decode over Qwen2 with its KV cache (same shape, same run; targets for 7B: ≥ 1.3× at 32k, ≥ 1.8× at 128k):");
        L("");
        L("| | shape | " + string.Join(" | ", contexts.Select(Ctx)) + " |");
        L("|---|---|" + string.Concat(contexts.Select(_ => "---:|")));
        lines.ForEach(L);
        foreach (var (context, target) in new[] { (32768, 1.3), (131072, 1.8) })
        {
            var q = ours.FirstOrDefault(r => r.Shape == "7b" && r.Arch == "qwen2" && r.Context == context);
            var s = ours.FirstOrDefault(r => r.Shape == "7b" && r.Arch == "rwkv7" && r.Context == context);
            if (q is not null && s is not null)
            {
                double x = q.MsPerToken!.Value / s.MsPerToken!.Value;
                L("");
                L(string.Create(Inv, $"- target: RAD-RWKV7-7B ≥ {target:F1}× Qwen2-7B decode at {Ctx(context)}: {x:F2}× — **{(x >= target ? "met" : "not met")}**"));
            }
        }
    }

    private static void Serving(IReadOnlyList<BenchRow> rows, Action<string> L)
    {
        var serving = rows.Where(r => r.Measure == "serving").ToList();
        if (serving.Count == 0)
        {
            return;
        }

        L("");
        L("## Serving scenario (RADLADS appendix E): wall time, and the speed-up over Qwen2 with its KV cache");
        L("");
        L("| source | shape | scenario | qwen2 s | rwkv6 s | rwkv7 s | rwkv7 speed-up | paper (vLLM) | beats the paper |");
        L("|---|---|---|---:|---:|---:|---:|---:|---|");
        foreach (var g in serving.GroupBy(r => (r.Source, r.Shape, Scenario: r.Note.Split(':')[0])))
        {
            string Wall(string arch) => g.FirstOrDefault(r => r.Arch == arch) is { } r ? (r.Ok ? string.Create(Inv, $"{r.WallSeconds:F1}") : r.Status) : "—";
            var q = g.FirstOrDefault(r => r.Arch == "qwen2" && r.Ok);
            var s = g.FirstOrDefault(r => r.Arch == "rwkv7" && r.Ok);
            var paper = ServingScenario.Paper.FirstOrDefault(p => g.Key.Scenario.StartsWith(p.Name, StringComparison.Ordinal));
            string speedup = q is null || s is null ? "—" : string.Create(Inv, $"{q.WallSeconds!.Value / s.WallSeconds!.Value:F2}×");
            string beats = q is null || s is null || paper is null ? "—"
                : q.WallSeconds!.Value / s.WallSeconds!.Value > paper.PaperSpeedup ? "yes" : "no";
            L(string.Create(Inv, $"| {g.Key.Source} | {g.Key.Shape} | {g.Key.Scenario} | {Wall("qwen2")} | {Wall("rwkv6")} | {Wall("rwkv7")} | {speedup} | {(paper is null ? "—" : $"{paper.PaperSpeedup:F2}×")} | {beats} |"));
        }
    }

    /// <summary>Our speed-up over each peer on the same (arch, shape, measure, context, batch).</summary>
    private static void Peers(IReadOnlyList<BenchRow> rows, Action<string> L)
    {
        var peers = rows.Where(r => r.Source != "radlads" && r.Ok && r.MsPerToken is not null && r.Measure is "decode" or "batched_decode" or "prefill").ToList();
        if (peers.Count == 0)
        {
            return;
        }

        L("");
        L("## Peers (same card, same call): our speed-up = peer ms / our ms");
        L("");
        L("| peer | arch | shape | measure | context | batch | peer ms | radlads ms | speed-up |");
        L("|---|---|---|---|---:|---:|---:|---:|---:|");
        foreach (var p in peers)
        {
            var ours = rows.FirstOrDefault(r => r.Source == "radlads" && r.Ok && r.Arch == p.Arch && r.Shape == p.Shape && r.Measure == p.Measure
                && r.Context == p.Context && r.Batch == p.Batch && (p.Measure != "prefill" || r.Tokens == p.Tokens));
            string ms = p.Measure == "prefill" ? string.Create(Inv, $"{p.TtftMs:F1}") : string.Create(Inv, $"{p.MsPerToken:F3}");
            string our = ours is null ? "—" : p.Measure == "prefill" ? string.Create(Inv, $"{ours.TtftMs:F1}") : string.Create(Inv, $"{ours.MsPerToken:F3}");
            string speed = ours is null ? "—" : p.Measure == "prefill"
                ? string.Create(Inv, $"{p.TtftMs!.Value / ours.TtftMs!.Value:F2}×")
                : string.Create(Inv, $"{p.MsPerToken!.Value / ours.MsPerToken!.Value:F2}×");
            L($"| {p.Source} | {p.Arch} | {p.Shape} | {p.Measure} | {(p.Context is int c ? Ctx(c) : "")} | {p.Batch} | {ms} | {our} | {speed} |");
        }
    }

    private static void NotFit(IReadOnlyList<BenchRow> rows, Action<string> L)
    {
        var missing = rows.Where(r => !r.Ok).ToList();
        if (missing.Count == 0)
        {
            return;
        }

        L("");
        L("## Not measured");
        L("");
        foreach (var r in missing)
        {
            L($"- {r.Source} {r.Arch} {r.Shape} {r.Measure}" + (r.Context is int c ? $" at {Ctx(c)}" : "") + (r.Batch is int b && b > 1 ? $" batch {b}" : "") + $": {r.Status} — {r.Note}");
        }
    }

    private static string Cell(BenchRow? r) => r is null ? "—" : !r.Ok ? r.Status
        : string.Create(Inv, $"{r.MsPerToken:F3} ({r.TokensPerSecond:F0}/s, {Percent(r.RooflineFraction)})");

    private static string BatchCell(BenchRow? r) => r is null ? "—" : !r.Ok ? r.Status
        : string.Create(Inv, $"{r.TokensPerSecond:F0} ({r.MsPerToken:F2} ms, {Percent(r.RooflineFraction)})");

    private static string Percent(double? f) => f is double v ? string.Create(Inv, $"{v * 100:F1} %") : "n/a";

    private static string GiBText(long? bytes) =>
        bytes is not long b ? "n/a" : (b / BenchRunner.GiB).ToString(b >= BenchRunner.GiB / 10 ? "F2" : "G3", Inv);

    internal static string Ctx(int c) => c >= 1024 && c % 1024 == 0 ? string.Create(Inv, $"{c / 1024}k") : c.ToString(Inv);
}
