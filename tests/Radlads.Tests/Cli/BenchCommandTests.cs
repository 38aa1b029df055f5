using System.Globalization;
using System.Xml.Linq;
using Radlads.Cli.Bench;
using Radlads.Cli.Plots;
using Radlads.Models;

namespace Radlads.Tests.Cli;

/// <summary>`radlads bench` end to end on the CPU with the tiny shape: files, columns, tables, plots, does-not-fit, errors.</summary>
public sealed class BenchCommandTests : IDisposable
{
    private readonly string folder = Path.Combine(Path.GetTempPath(), $"radlads-bench-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static readonly string[] Tiny =
    [
        "bench", "--backend", "cpu", "--shape", "tiny", "--contexts", "16,64", "--batches", "1,3", "--batch-context", "32",
        "--prefill-tokens", "16", "--decode-tokens", "2", "--warmup", "1",
    ];

    [Fact]
    public void ATinyRunWritesTheCsvMarkdownAndPlotsWithEveryFigure()
    {
        var (exit, output, error) = CliRunner.Run([.. Tiny, "--serving", "--serving-scale", "0.005", "--serving-requests", "3", "--output", folder]);
        Assert.True(exit == 0, error);

        string csv = Path.Combine(folder, "results.csv");
        Assert.Equal(string.Join(',', BenchCsv.Columns), File.ReadLines(csv).First());
        var rows = BenchCsv.Read(csv);
        // 2 roofline rows + per architecture: prefill, 2 contexts, 2 batches, 3 serving scenarios.
        Assert.Equal(2 + (3 * (1 + 2 + 2 + 3)), rows.Count);
        Assert.All(rows, r => Assert.Equal("ok", r.Status));
        Assert.All(rows, r => Assert.Equal("cpu", r.Backend));
        Assert.Single(rows, r => r.Measure == "roofline_copy" && r.Roofline > 0);
        Assert.Single(rows, r => r.Measure == "roofline_gemm" && r.Roofline > 0);
        foreach (var arch in new[] { "qwen2", "rwkv6", "rwkv7" })
        {
            var mine = rows.Where(r => r.Arch == arch && r.Shape == "tiny").ToList();
            var prefill = Assert.Single(mine, r => r.Measure == "prefill");
            Assert.Equal(16, prefill.Tokens);
            Assert.True(prefill.TtftMs > 0 && prefill.TokensPerSecond > 0 && prefill.RooflineFraction > 0);
            Assert.Equal(prefill.Tokens!.Value / (prefill.TtftMs!.Value / 1000), prefill.TokensPerSecond!.Value, 1e-4 * prefill.TokensPerSecond!.Value);
            Assert.Equal([16, 64], mine.Where(r => r.Measure == "decode").Select(r => r.Context!.Value).Order());
            Assert.Equal([1, 3], mine.Where(r => r.Measure == "batched_decode").Select(r => r.Batch!.Value).Order());
            foreach (var r in mine.Where(r => r.Measure.EndsWith("decode", StringComparison.Ordinal)))
            {
                Assert.True(r.MsPerToken > 0 && double.IsFinite(r.MsPerToken!.Value));
                Assert.Equal(r.Batch!.Value * 1000 / r.MsPerToken!.Value, r.TokensPerSecond!.Value, 1e-4 * r.TokensPerSecond!.Value);
                Assert.True(r.BytesPerStep > r.WeightsBytes / 2 && r.RooflineFraction > 0 && r.StateBytes > 0);
            }

            // The KV cache grows with the context; a recurrent state does not.
            var d = mine.Where(r => r.Measure == "decode").OrderBy(r => r.Context).ToArray();
            // --decode-tokens 2: two rounds of one step, the two contexts interleaved; batched rows time 2 steps of every sequence.
            Assert.All(d, r => Assert.True(r.Tokens == 2 && r.Note.Contains("2 rounds interleaved", StringComparison.Ordinal), r.Note));
            Assert.All(mine.Where(r => r.Measure == "batched_decode"), r => Assert.Equal(2 * r.Batch, r.Tokens));
            Assert.True(arch == "qwen2" ? d[1].StateBytes > d[0].StateBytes : d[1].StateBytes == d[0].StateBytes, $"{arch}: {d[0].StateBytes} -> {d[1].StateBytes}");
            var serving = mine.Where(r => r.Measure == "serving").ToList();
            Assert.Equal(3, serving.Count);
            Assert.All(serving, r => Assert.True(r.WallSeconds > 0 && r.Batch == 3 && r.Tokens >= 3));
        }

        // The same requests for every architecture, so the wall times compare the same work.
        Assert.Single(rows.Where(r => r.Measure == "serving").GroupBy(r => (r.Note.Split(':')[0], r.Tokens)).GroupBy(g => g.Key.Item1).Select(g => g.Count()).Distinct());

        string md = File.ReadAllText(Path.Combine(folder, "results.md"));
        Assert.Equal(md, output);
        foreach (var section in new[] { "## Batch-1 decode", "## Batched decode", "## Prefill and time to first token", "## Device memory", "## Serving scenario", "## Plots" })
        {
            Assert.Contains(section, md, StringComparison.Ordinal);
        }

        Assert.Contains("| radlads | rwkv7 | tiny |", md, StringComparison.Ordinal);
        Assert.Contains("rwkv7 over qwen2", md, StringComparison.Ordinal);
        Assert.Contains("- commit: ", md, StringComparison.Ordinal);
        Assert.Contains("[", error, StringComparison.Ordinal); // the progress bar

        foreach (var plot in new[] { "decode-latency-vs-context.svg", "throughput-vs-batch.svg", "memory-vs-context.svg" })
        {
            var svg = XDocument.Load(Path.Combine(folder, plot)).Root!;
            Assert.Equal("svg", svg.Name.LocalName);
            // One line per architecture, each through its points.
            Assert.Equal(3, svg.Elements(svg.Name.Namespace + "polyline").Count());
            Assert.Contains(svg.Elements(svg.Name.Namespace + "text"), t => t.Value == "rwkv7 tiny");
        }
    }

    [Fact]
    public void WhatDoesNotFitIsReportedNotCrashed()
    {
        // 2 GiB: the tiny model fits, a 16M-token KV cache (8 GiB) does not; the recurrent state fits at any context.
        var (exit, output, error) = CliRunner.Run("bench", "--backend", "cpu", "--shape", "tiny", "--arch", "qwen2,rwkv7", "--contexts", "16,16384k",
            "--batches", "2", "--batch-context", "16", "--prefill-tokens", "8", "--decode-tokens", "1", "--warmup", "0", "--memory-limit", "2", "--output", folder);
        Assert.True(exit == 0, error);
        var rows = BenchCsv.Read(Path.Combine(folder, "results.csv"));
        var big = Assert.Single(rows, r => r.Arch == "qwen2" && r.Measure == "decode" && r.Context == 16384 * 1024);
        Assert.Equal("does not fit", big.Status);
        Assert.Matches(@"need \d+\.\d GiB, the card has \d+\.\d GiB free of 2\.0 GiB", big.Note);
        Assert.Equal("ok", Assert.Single(rows, r => r.Arch == "qwen2" && r.Measure == "decode" && r.Context == 16).Status);
        Assert.Equal("ok", Assert.Single(rows, r => r.Arch == "rwkv7" && r.Measure == "decode" && r.Context == 16384 * 1024).Status);
        Assert.Contains("## Not measured", output, StringComparison.Ordinal);
        Assert.Contains("does not fit", output, StringComparison.Ordinal);
    }

    [Fact]
    public void AModelLargerThanTheCardIsReportedWithWhatItNeeds()
    {
        var (exit, output, error) = CliRunner.Run("bench", "--backend", "cpu", "--shape", "qwen2.5-32b", "--arch", "rwkv7", "--contexts", "1k",
            "--batches", "1", "--memory-limit", "16", "--output", folder);
        Assert.True(exit == 0, error);
        var rows = BenchCsv.Read(Path.Combine(folder, "results.csv")).Where(r => r.Arch == "rwkv7").ToList();
        Assert.Equal(3, rows.Count); // prefill, one context, one batch
        Assert.All(rows, r => Assert.Equal("does not fit", r.Status));
        double need = (SyntheticModel.WeightBytes(SyntheticModel.Config("32b", Architecture.Rwkv7Qwen2)) + (512L << 20)) / BenchRunner.GiB;
        Assert.All(rows, r => Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"the weights alone need {need:F1} GiB"), r.Note, StringComparison.Ordinal));
        Assert.Contains("does not fit", error, StringComparison.Ordinal);
        Assert.Contains("| radlads | rwkv7 | 32b | does not fit |", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ReportMergesThePeersCsvAndGivesOurSpeedUp()
    {
        var (exit, _, error) = CliRunner.Run([.. Tiny, "--arch", "qwen2", "--output", folder]);
        Assert.True(exit == 0, error);
        var ours = BenchCsv.Read(Path.Combine(folder, "results.csv")).Single(r => r.Measure == "decode" && r.Context == 16);
        var peer = ours with { Source = "torch-eager", MsPerToken = ours.MsPerToken * 4, TokensPerSecond = 250 / ours.MsPerToken, Note = "a \"quoted\", note" };
        BenchCsv.Write(Path.Combine(folder, "peers-test.csv"), [peer]);
        Assert.Equal(peer, Assert.Single(BenchCsv.Read(Path.Combine(folder, "peers-test.csv"))));

        var report = CliRunner.Run("bench", "--report", folder);
        Assert.True(report.Exit == 0, report.Error);
        Assert.Contains("## Peers", report.Output, StringComparison.Ordinal);
        Assert.Matches(@"\| torch-eager \| qwen2 \| tiny \| decode \| 16 \| 1 \| [0-9.]+ \| [0-9.]+ \| 4\.00× \|", report.Output);
        var svg = XDocument.Load(Path.Combine(folder, "decode-latency-vs-context.svg")).Root!;
        Assert.Contains(svg.Elements(svg.Name.Namespace + "text"), t => t.Value == "torch-eager: qwen2 tiny");
    }

    [Theory]
    [InlineData("give --shape", "bench", "--backend", "cpu")]
    [InlineData("unknown model shape 'qwen2.5-3b'", "bench", "--backend", "cpu", "--shape", "qwen2.5-3b")]
    [InlineData("--arch: unknown architecture 'mamba'", "bench", "--backend", "cpu", "--shape", "tiny", "--arch", "mamba")]
    [InlineData("--contexts: '0' is not a positive whole number", "bench", "--backend", "cpu", "--shape", "tiny", "--contexts", "0")]
    [InlineData("--contexts: '4x' is not a positive whole number", "bench", "--backend", "cpu", "--shape", "tiny", "--contexts", "1k,4x")]
    [InlineData("--batches: give at least one value", "bench", "--backend", "cpu", "--shape", "tiny", "--batches", ",")]
    [InlineData("--serving-scale must be in (0, 1]", "bench", "--backend", "cpu", "--shape", "tiny", "--serving-scale", "2")]
    [InlineData("--memory-limit must be a positive number", "bench", "--backend", "cpu", "--shape", "tiny", "--memory-limit", "-1")]
    [InlineData("--decode-tokens must be at least 1", "bench", "--backend", "cpu", "--shape", "tiny", "--decode-tokens", "0")]
    [InlineData("--serving-rows: '4' is not a row of the paper's serving table", "bench", "--backend", "cpu", "--shape", "tiny", "--serving", "--serving-rows", "1,4")]
    [InlineData("no results.csv there", "bench", "--report", "/nonexistent-radlads-folder")]
    [InlineData("--model /nonexistent-radlads-model: folder not found", "bench", "--backend", "cpu", "--model", "/nonexistent-radlads-model")]
    public void BadOptionsGiveOneClearError(string message, params string[] args)
    {
        string line = CliRunner.AssertUserError(CliRunner.Run(args));
        Assert.Contains(message, line, StringComparison.Ordinal);
    }

    [Fact]
    public void ServingRequestsAreThePapersLengthsWithinASixteenthSeededAndScaled()
    {
        var options = new BenchOptions { ServingRequests = 32, Seed = 4 };
        foreach (var scenario in ServingScenario.Paper)
        {
            var requests = ServingScenario.Requests(scenario, options);
            Assert.Equal(32, requests.Length);
            Assert.All(requests, r => Assert.InRange(r.In, scenario.TokensIn * 15 / 16, (scenario.TokensIn * 17 / 16) + 1));
            Assert.All(requests, r => Assert.InRange(r.Out, scenario.TokensOut * 15 / 16, (scenario.TokensOut * 17 / 16) + 1));
            Assert.True(requests.Select(r => r.In).Distinct().Count() > 16, "the lengths vary");
            Assert.Equal(requests, ServingScenario.Requests(scenario, options));
            var half = ServingScenario.Requests(scenario, options with { ServingScale = 0.5 });
            Assert.All(half.Zip(requests), p => Assert.InRange(p.First.In, (p.Second.In / 2) - 1, (p.Second.In / 2) + 1));
        }

        Assert.Equal([1.61, 2.77, 3.41], ServingScenario.Paper.Select(p => p.PaperSpeedup));
        // --serving-rows picks rows of the table, in table order, once each.
        Assert.Equal([1, 3], BenchCommand.ServingRowNumbers("3,1,3"));
        Assert.Equal(["8k in / 256 out", "6k in / 2k out"], ServingScenario.Selected(options with { ServingRows = [3, 1] }).Select(p => p.Name));
    }

    [Fact]
    public void LengthsTakeKAsTimes1024()
    {
        Assert.Equal([1024, 4096, 131072], BenchCommand.Lengths("4k,1K,128k,4096", "--contexts"));
    }

    [Fact]
    public void TheSvgWriterDrawsLogAxesGapsAndEscapesText()
    {
        var chart = new LineChart("a < b & c", "x", "y",
        [
            new PlotSeries("one", [(1024, 1.0), (4096, double.NaN), (16384, 3.0), (65536, 4.0)]),
            new PlotSeries("two \"q\"", [(1024, 2.0)]),
        ])
        { LogX = true };
        var svg = XDocument.Parse(SvgPlotWriter.Render(chart)).Root!;
        var ns = svg.Name.Namespace;
        Assert.Single(svg.Elements(ns + "polyline")); // the NaN splits "one" into a lone point and a line of two
        Assert.Equal(4, svg.Elements(ns + "circle").Count());
        Assert.Contains(svg.Elements(ns + "text"), t => t.Value == "a < b & c");
        Assert.Contains(svg.Elements(ns + "text"), t => t.Value == "16k");
        Assert.Contains("no data", SvgPlotWriter.Render(new LineChart("empty", "x", "y", [])), StringComparison.Ordinal);
    }

    [Fact]
    public void CardSlugsAreFolderNames()
    {
        Assert.Equal("h100-80gb-hbm3", CardInfo.Slugify("NVIDIA H100 80GB HBM3"));
        Assert.Equal("h200", CardInfo.Slugify("NVIDIA H200"));
        Assert.Equal("cpu-amd-epyc", CardInfo.Slugify("cpu-AMD EPYC"));
    }
}
