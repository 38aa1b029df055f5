using System.Globalization;
using Radlads.Cpu;
using Radlads.Data;
using Radlads.Tests.Checkpoints;
using Radlads.Tests.Data;
using Radlads.Tests.Ops;
using Radlads.Training;

namespace Radlads.Tests.Training;

/// <summary>
/// The training loop on the CPU with <see cref="ToyObjective"/>: it learns, logs, checkpoints, resumes bit for bit
/// (after Ctrl-C and after a crash between checkpoints), stops on NaN/Inf keeping the last good checkpoint, and
/// refuses damaged, foreign or mismatched checkpoints with clear errors.
/// </summary>
public sealed class TrainingLoopTests : IDisposable
{
    private readonly TempDir dir = new();
    private readonly CpuBackend backend = new();
    private readonly TokenFile data;

    public TrainingLoopTests()
    {
        var ids = new TestData(5).Ints(4000, ToyObjective.Vocabulary - 1);
        data = TokenFile.Open(TokenFileTests.Write(dir, "corpus.bin", ToyObjective.Vocabulary, ToyObjective.Vocabulary - 1, ids));
    }

    private static TrainingOptions Options => new()
    {
        CtxLen = 8,
        Batch = 4,
        TokenBudget = 60 * 32,
        LrInit = 0.05,
        LrFinal = 0.005,
        WarmupSteps = 5,
        CheckpointEvery = 10,
        Seed = 3,
    };

    private sealed class Observer(Action<TrainingStep>? onStep = null) : ITrainingObserver
    {
        public List<TrainingStep> Steps { get; } = [];

        public List<long> Checkpoints { get; } = [];

        public void StepDone(TrainingStep step)
        {
            Steps.Add(step);
            onStep?.Invoke(step);
        }

        public void CheckpointWritten(string path, long bytes, TrainingState state)
        {
            Assert.True(File.Exists(path) && new FileInfo(path).Length == bytes);
            Checkpoints.Add(state.Step);
        }
    }

    private (TrainingOutcome Outcome, float[] Weight, float[] Bias, Observer Observer) Train(string output, bool resume = false,
        TrainingOptions? options = null, Action<TrainingStep>? onStep = null, CancellationTokenSource? cancel = null, ToyObjective? objective = null)
    {
        using var toy = objective ?? new ToyObjective(backend);
        var observer = new Observer(onStep);
        using var loop = new TrainingLoop(backend, toy, data, options ?? Options, dir.File(output), observer: observer);
        var outcome = loop.Run(resume, cancel?.Token ?? CancellationToken.None);
        return (outcome, toy.Values(0), toy.Values(1), observer);
    }

    [Fact]
    public void LearnsLogsAndCheckpoints()
    {
        var (outcome, _, _, observer) = Train("run");
        Assert.Equal(TrainingOutcome.Completed, outcome);
        Assert.Equal(60, observer.Steps.Count);
        Assert.Equal([10, 20, 30, 40, 50, 60], observer.Checkpoints);
        Assert.True(observer.Steps[^1].Loss < 0.05 * observer.Steps[0].Loss, $"loss {observer.Steps[0].Loss} → {observer.Steps[^1].Loss}");

        var rows = TrainingLog.Read(dir.File("run/train-log.csv"));
        Assert.Equal(60, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(i + 1, rows[i].Step);
            Assert.Equal((i + 1) * 32L, rows[i].Tokens);
            Assert.Equal(observer.Steps[i].Loss, rows[i].Loss);
            Assert.Equal(observer.Steps[i].GradNorm, rows[i].GradNorm);
            Assert.Equal(LearningRateSchedule.At(i, Options), rows[i].LearningRate);
            Assert.True(rows[i].GradNorm > 0 && rows[i].TokensPerSecond > 0);
        }

        // The per-layer log: one row per step, the objective's parts of that step's loss.
        var layers = File.ReadAllLines(dir.File("run/layer-loss.csv"));
        Assert.Equal("step,tokens,layer_0,layer_1", layers[0]);
        Assert.Equal(61, layers.Length);
        for (int i = 0; i < rows.Count; i++)
        {
            var f = layers[i + 1].Split(',');
            Assert.Equal((rows[i].Step, rows[i].Tokens), (long.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture)));
            Assert.Equal(0.5 * rows[i].Loss, double.Parse(f[2], CultureInfo.InvariantCulture));
            Assert.Equal(1.5 * rows[i].Loss, double.Parse(f[3], CultureInfo.InvariantCulture));
        }

        Assert.Equal(0.05 * 0.01, rows[0].LearningRate, 15);
        Assert.Equal(0.005, LearningRateSchedule.At(60, Options), 1e-15); // reached as the budget ends
        Assert.InRange(rows[^1].LearningRate, 0.005, 0.0065);
        var header = TrainingCheckpoint.ReadHeader(dir.File("run/" + TrainingCheckpoint.FileName));
        Assert.Equal(new TrainingState { Step = 60, TokensSeen = 1920, SamplesDrawn = 240, Seconds = header.State.Seconds, LastLoss = rows[^1].Loss }, header.State);
        Assert.Equal(Options, header.Options);
        Assert.Equal(["toy.weight", "toy.bias"], header.Parameters.Select(p => p.Name));
    }

    [Fact]
    public void ClippingEngagesOnLargeGradients()
    {
        // Targets 50× larger: early gradient norms are far above 1, so the loop must clip (the update is then AdamW's
        // on the scaled gradient; AdamWFixtureTests checks that composition against torch).
        using var big = new ToyObjective(backend, targetScale: 50f);
        var (_, _, _, observer) = Train("clip", objective: big);
        Assert.True(observer.Steps[0].GradNorm > 10);
        Assert.Equal(1f / ((float)observer.Steps[0].GradNorm + 1e-6f), GradientClip.Coefficient(observer.Steps[0].GradNorm, 1.0));
    }

    [Fact]
    public void ResumeAfterInterruptionContinuesBitForBit()
    {
        var reference = Train("straight");
        using var cancel = new CancellationTokenSource();
        var first = Train("split", onStep: s =>
        {
            if (s.Step == 25)
            {
                cancel.Cancel(); // what Ctrl-C does: the step in progress finishes, then the loop saves and returns
            }
        }, cancel: cancel);
        Assert.Equal(TrainingOutcome.Interrupted, first.Outcome);
        Assert.Equal(25, first.Observer.Steps.Count);
        Assert.Equal([10, 20, 25], first.Observer.Checkpoints);

        var second = Train("split", resume: true);
        Assert.Equal(TrainingOutcome.Completed, second.Outcome);
        Assert.Equal(35, second.Observer.Steps.Count);
        AssertSameRun(reference, "straight", second, "split");
    }

    [Fact]
    public void ResumeAfterCrashDropsUnsavedStepsAndContinuesBitForBit()
    {
        var reference = Train("straight");
        Assert.Throws<IOException>(() => Train("crash", onStep: s =>
        {
            if (s.Step == 27)
            {
                throw new IOException("simulated crash after step 27");
            }
        }));
        Assert.Equal(27, TrainingLog.Read(dir.File("crash/train-log.csv")).Count);
        Assert.Equal(20, TrainingCheckpoint.ReadHeader(dir.File("crash/" + TrainingCheckpoint.FileName)).State.Step);

        var resumed = Train("crash", resume: true);
        Assert.Equal(40, resumed.Observer.Steps.Count);
        AssertSameRun(reference, "straight", resumed, "crash");
    }

    private void AssertSameRun((TrainingOutcome, float[] Weight, float[] Bias, Observer) a, string aDir,
        (TrainingOutcome, float[] Weight, float[] Bias, Observer) b, string bDir)
    {
        var ra = TrainingLog.Read(dir.File(aDir + "/train-log.csv"));
        var rb = TrainingLog.Read(dir.File(bDir + "/train-log.csv"));
        Assert.Equal(ra.Count, rb.Count);
        for (int i = 0; i < ra.Count; i++)
        {
            Assert.Equal((ra[i].Step, ra[i].Tokens), (rb[i].Step, rb[i].Tokens));
            Assert.Equal(BitConverter.DoubleToInt64Bits(ra[i].Loss), BitConverter.DoubleToInt64Bits(rb[i].Loss));
            Assert.Equal(BitConverter.DoubleToInt64Bits(ra[i].GradNorm), BitConverter.DoubleToInt64Bits(rb[i].GradNorm));
            Assert.Equal(BitConverter.DoubleToInt64Bits(ra[i].LearningRate), BitConverter.DoubleToInt64Bits(rb[i].LearningRate));
        }

        Assert.Equal(a.Weight, b.Weight);
        Assert.Equal(a.Bias, b.Bias);
        // The per-layer log is cut at the resumed step like the main log, so the two runs wrote the same file.
        Assert.Equal(File.ReadAllText(dir.File(aDir + "/layer-loss.csv")), File.ReadAllText(dir.File(bDir + "/layer-loss.csv")));
    }

    [Theory]
    [InlineData(ToyObjective.Poison.NanLoss, "the loss is NaN")]
    [InlineData(ToyObjective.Poison.InfiniteGradient, "the gradient norm is")]
    public void NanOrInfStopsAndKeepsTheLastGoodCheckpoint(ToyObjective.Poison kind, string expected)
    {
        using var toy = new ToyObjective(backend) { PoisonAtCall = 15, PoisonKind = kind };
        var e = Assert.Throws<TrainingDivergedException>(() => Train("nan", objective: toy));
        Assert.Contains("step 15", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains("--resume", e.Message, StringComparison.Ordinal);
        Assert.Equal(10, TrainingCheckpoint.ReadHeader(dir.File("nan/" + TrainingCheckpoint.FileName)).State.Step);

        // The intact checkpoint resumes (the poison is gone: a fresh objective) and finishes like a clean run.
        var resumed = Train("nan", resume: true);
        Assert.Equal(TrainingOutcome.Completed, resumed.Outcome);
        AssertSameRun(Train("clean"), "clean", resumed, "nan");
    }

    [Fact]
    public void DamagedCheckpointIsAClearError()
    {
        Train("bad", options: Options with { TokenBudget = 10 * 32 });
        string path = dir.File("bad/" + TrainingCheckpoint.FileName);
        var bytes = File.ReadAllBytes(path);
        bytes[^100] ^= 1;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<RadladsException>(() => Train("bad", resume: true, options: Options with { TokenBudget = 10 * 32 }));
        Assert.Contains("SHA-256", e.Message, StringComparison.Ordinal);

        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        Assert.Throws<RadladsException>(() => Train("bad", resume: true, options: Options with { TokenBudget = 10 * 32 }));
        File.WriteAllBytes(path, "not a checkpoint at all"u8.ToArray());
        e = Assert.Throws<RadladsException>(() => Train("bad", resume: true, options: Options with { TokenBudget = 10 * 32 }));
        Assert.Contains("RDLSCKP1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MismatchedCheckpointOrOptionsAreClearErrors()
    {
        Train("m", options: Options with { TokenBudget = 10 * 32 });
        var e = Assert.Throws<RadladsException>(() => Train("m", resume: true, options: Options with { TokenBudget = 10 * 32 }, objective: new ToyObjective(backend, outputs: 4)));
        Assert.Contains("does not belong to this student", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<RadladsException>(() => Train("m", resume: true, options: Options with { TokenBudget = 10 * 32, Batch = 2 }));
        Assert.Contains("--batch: checkpoint 4, now 2", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<RadladsException>(() => Train("m", options: Options with { TokenBudget = 10 * 32 }));
        Assert.Contains("continue it with --resume", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<RadladsException>(() => Train("nothing-here", resume: true));
        Assert.Contains("no trainer checkpoint", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TooSmallDataIsAClearError()
    {
        var e = Assert.Throws<RadladsException>(() => Train("small", options: Options with { CtxLen = 2000 }));
        Assert.Contains("too few", e.Message, StringComparison.Ordinal);
        Assert.Contains("--ctx-len", e.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        data.Dispose();
        backend.Dispose();
        dir.Dispose();
    }
}
