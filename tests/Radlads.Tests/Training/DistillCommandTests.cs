using Radlads.Cli.Commands;
using Radlads.Tests.Checkpoints;
using Radlads.Tests.Cli;
using Radlads.Tests.Data;
using Radlads.Tests.Ops;
using Radlads.Training;

namespace Radlads.Tests.Training;

/// <summary>
/// `radlads distill` end to end with <see cref="ToyObjective"/> plugged into the step-1 hook (the real objective lives
/// on another branch): summary, progress, checkpoints, CSV, loss plot, the student export call, a NaN stop resumed
/// with only the required options, and the user errors. One class, so the static hook is never shared between
/// tests running in parallel.
/// </summary>
public sealed class DistillCommandTests : IDisposable
{
    private readonly TempDir dir = new();
    private readonly string data;
    private readonly Func<Radlads.Ops.IBackend, string, string, DistillCommand.Step1Model> original = DistillCommand.OpenStep1;
    private int poisonAtCall;

    public DistillCommandTests()
    {
        data = TokenFileTests.Write(dir, "corpus.bin", ToyObjective.Vocabulary, ToyObjective.Vocabulary - 1, new TestData(5).Ints(4000, ToyObjective.Vocabulary - 1));
        Directory.CreateDirectory(dir.File("teacher"));
        Directory.CreateDirectory(dir.File("student"));
    }

    private void UseToy() => DistillCommand.OpenStep1 = (backend, teacher, student) =>
    {
        var toy = new ToyObjective(backend) { PoisonAtCall = poisonAtCall };
        return new DistillCommand.Step1Model(toy, output => File.WriteAllText(Path.Combine(output, "student.txt"), $"{toy.Values(1)[0]:R}"));
    };

    private (int Exit, string Output, string Error) Distill(string output, params string[] extra) => DistillStage("1", output, extra);

    private (int Exit, string Output, string Error) DistillStage(string stage, string output, params string[] extra) => CliRunner.Run(
        [.. new[] { "distill", "--stage", stage, "--teacher", dir.File("teacher"), "--student", dir.File("student"), "--data", data, "--output", dir.File(output), "--backend", "cpu" }, .. extra]);

    private static readonly string[] Small = ["--ctx-len", "8", "--batch", "4", "--tokens", "1920", "--lr-init", "0.05", "--lr-final", "0.005", "--warmup-steps", "5", "--checkpoint-every", "10"];

    [Fact]
    public void HelpNamesEveryOption()
    {
        var (exit, output, _) = CliRunner.Run("distill", "--help");
        Assert.Equal(0, exit);
        foreach (var name in new[] { "--stage", "--teacher", "--student", "--data", "--output", "--ctx-len", "--batch", "--tokens", "--lr-init", "--lr-final",
            "--warmup-steps", "--seed", "--checkpoint-every", "--resume", "--backend", "--log-csv", "--grad-clip", "--profile", "--gemm-tflops" })
        {
            Assert.Contains(name, output, StringComparison.Ordinal);
        }
    }

    /// <summary>--profile prints one op table at the end with the optimiser's backward-side ops and the same losses as a plain run.</summary>
    [Fact]
    public void ProfilePrintsTheOpTable()
    {
        UseToy();
        var (exit, _, error) = Distill("profiled", [.. Small, "--profile"]);
        Assert.True(exit == 0, error);
        Assert.Contains("Op profile", error, StringComparison.Ordinal);
        Assert.Matches(@"AdamW\s+\d+", error);
        Assert.Matches(@"SumsOfSquares\s+\d+", error);
        Assert.Matches(@"training throughput: \d+ tokens/s", error);
        var summary = File.ReadAllLines(dir.File("profiled/" + DistillCommand.SummaryFile));
        Assert.Equal(DistillCommand.SummaryHeader, summary[0]);
        Assert.StartsWith("60,1920,", summary[1], StringComparison.Ordinal);
        Assert.EndsWith(",cpu,1", summary[1], StringComparison.Ordinal);
        Distill("plain", Small);
        Assert.Equal(TrainingLog.Read(dir.File("plain/train-log.csv")).Select(r => r.Loss), TrainingLog.Read(dir.File("profiled/train-log.csv")).Select(r => r.Loss));
    }

    [Fact]
    public void TrainsLogsPlotsAndExports()
    {
        UseToy();
        var (exit, _, error) = Distill("run", Small);
        Assert.True(exit == 0, error);
        Assert.Contains("the run draws 240", error, StringComparison.Ordinal);
        Assert.Contains("checkpoint: step 60", error, StringComparison.Ordinal);
        Assert.Contains("done: 60 steps, 1,920 tokens", error, StringComparison.Ordinal);
        Assert.Equal(60, TrainingLog.Read(dir.File("run/train-log.csv")).Count);
        Assert.True(File.Exists(dir.File("run/" + TrainingCheckpoint.FileName)));
        Assert.True(File.Exists(dir.File("run/student.txt")));
        Assert.DoesNotContain("was not drawn", error, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.File("run/loss.svg.tmp")));
        // One line with a point per logged step (the SVG writer draws each series as a polyline).
        var svg = System.Xml.Linq.XDocument.Load(dir.File("run/loss.svg")).Root!;
        var line = Assert.Single(svg.Descendants(), e => e.Name.LocalName == "polyline");
        Assert.Equal(60, line.Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void NanStopThenResumeWithOnlyTheRequiredOptions()
    {
        UseToy();
        Distill("clean", Small);
        poisonAtCall = 15;
        var stopped = Distill("nan", Small);
        Assert.Equal(1, stopped.Exit); // after the summary and progress lines, one error line and no stack trace
        string message = stopped.Error.TrimEnd().Split('\n')[^1];
        Assert.StartsWith("error: training diverged at step 15", message, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stopped.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.File("nan/student.txt")));

        poisonAtCall = 0;
        var (exit, _, error) = Distill("nan", "--resume"); // ctx, batch, tokens, LR… come from the checkpoint
        Assert.True(exit == 0, error);
        Assert.Contains("resuming", error, StringComparison.Ordinal);
        Assert.Equal(TrainingLog.Read(dir.File("clean/train-log.csv")).Select(r => r.Loss), TrainingLog.Read(dir.File("nan/train-log.csv")).Select(r => r.Loss));
        Assert.Equal(File.ReadAllText(dir.File("clean/student.txt")), File.ReadAllText(dir.File("nan/student.txt")));

        message = CliRunner.AssertUserError(Distill("nan", "--resume", "--batch", "2"));
        Assert.Contains("--batch: checkpoint 4, now 2", message, StringComparison.Ordinal);
        message = CliRunner.AssertUserError(Distill("nan", Small));
        Assert.Contains("--resume", message, StringComparison.Ordinal);
    }

    [Fact]
    public void UserErrors()
    {
        Assert.Contains("not implemented yet", CliRunner.AssertUserError(DistillStage("2", "x")), StringComparison.Ordinal);
        Assert.Contains("--stage must be 1, 2 or 3", CliRunner.AssertUserError(DistillStage("7", "x")), StringComparison.Ordinal);
        // The real step-1 objective opens the teacher folder, which here holds no model: a clear error, no trace.
        Assert.Contains("config.json", CliRunner.AssertUserError(Distill("x", Small)), StringComparison.Ordinal);
        UseToy();
        Assert.Contains("too few", CliRunner.AssertUserError(Distill("x", "--ctx-len", "2000")), StringComparison.Ordinal);
        Assert.Contains("--batch must be at least 1", CliRunner.AssertUserError(Distill("x", "--batch", "0")), StringComparison.Ordinal);
        Assert.Contains("--gemm-tflops must be a positive rate", CliRunner.AssertUserError(Distill("x", "--gemm-tflops", "-3")), StringComparison.Ordinal);
        Assert.Contains("no trainer checkpoint", CliRunner.AssertUserError(Distill("empty", "--resume")), StringComparison.Ordinal);
        Assert.Contains("folder not found", CliRunner.AssertUserError(CliRunner.Run("distill", "--stage", "1", "--teacher", dir.File("nope"),
            "--student", dir.File("student"), "--data", data, "--output", dir.File("x"))), StringComparison.Ordinal);
    }

    public void Dispose()
    {
        DistillCommand.OpenStep1 = original;
        dir.Dispose();
    }
}
