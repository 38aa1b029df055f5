using System.CommandLine;
using System.Globalization;
using Radlads.Cli.Training;
using Radlads.Data;
using Radlads.Ops;
using Radlads.Training;

namespace Radlads.Cli.Commands;

/// <summary>
/// `radlads distill`: RADLADS training of a converted student against its teacher. Step 1 (attention alignment) runs
/// the <see cref="TrainingLoop"/>; steps 2 and 3 are not written yet.
/// </summary>
internal static class DistillCommand
{
    /// <summary>Exit code of a run stopped by Ctrl-C after saving (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;

    /// <summary>
    /// The step-1 objective of a teacher/student pair, how to write the trained student as a model folder, and the
    /// estimated FLOPs of one training token at a window length (null: unknown, no FLOP/s is reported).
    /// </summary>
    internal sealed record Step1Model(ITrainingObjective Objective, Action<string> WriteStudent, Func<int, double>? FlopsPerToken = null);

    /// <summary>Builds the step-1 objective (tests put a toy objective here).</summary>
    internal static Func<IBackend, string, string, Step1Model> OpenStep1 { get; set; } = OpenStep1Objective;

    /// <summary>
    /// The step-1 model maths: the frozen teacher with per-layer taps and the trainable student mixers. The student is
    /// written into the run folder beside the trainer's own files, so its model files are replaced in place.
    /// </summary>
    private static Step1Model OpenStep1Objective(IBackend backend, string teacherDir, string studentDir)
    {
        var objective = Step1Objective.Open(backend, teacherDir, studentDir);
        return new(objective, directory => objective.WriteStudent(directory, overwrite: true), objective.FlopsPerToken);
    }

    public static Command Create(CliContext io)
    {
        var stage = new Option<int>("--stage")
        {
            Description = "RADLADS step: 1 = attention alignment (each student mixer learns to reproduce its teacher attention layer's output, " +
                "L2 loss, only the new RWKV parameters train). 2 (knowledge distillation) and 3 (long-context fine-tuning) are not implemented yet.",
            Required = true,
        };
        var teacher = new Option<string>("--teacher", "-t") { Description = "The Qwen2 teacher's folder (the one `radlads convert --teacher` read).", Required = true };
        var student = new Option<string>("--student", "-s") { Description = "The student's folder, as written by `radlads convert` (its weights are the starting point).", Required = true };
        var data = new Option<string>("--data", "-d")
        {
            Description = "Token file of the training text (`radlads data tokenize` output, RDLSTOK1), tokenized with the teacher's tokenizer.",
            Required = true,
        };
        var output = new Option<string>("--output", "-o")
        {
            Description = "Folder for the run: the trainer checkpoint (trainer-state.rdlsckpt), train-log.csv, layer-loss.csv (each layer's part of the loss), loss.svg and, at the end, the trained student. " +
                "Holding a checkpoint already, it needs --resume.",
            Required = true,
        };
        var ctxLen = new Option<int>("--ctx-len") { Description = "Tokens per training window.", DefaultValueFactory = _ => 512 };
        var batch = new Option<int>("--batch") { Description = "Sequences (windows) per optimiser step.", DefaultValueFactory = _ => 32 };
        var tokens = new Option<long>("--tokens")
        {
            Description = "Token budget: training stops once steps × ctx-len × batch reaches it (the LR reaches --lr-final there).",
            DefaultValueFactory = _ => 100_000_000,
        };
        var lrInit = new Option<double>("--lr-init") { Description = "Learning rate after warm-up.", DefaultValueFactory = _ => 1e-3 };
        var lrFinal = new Option<double>("--lr-final") { Description = "Learning rate at the end of the budget (quarter-cosine decay from --lr-init).", DefaultValueFactory = _ => 1e-5 };
        var warmup = new Option<int>("--warmup-steps")
        {
            Description = "Optimiser steps whose LR ramps up as lr × (0.01 + 0.99 · step / warmup).",
            DefaultValueFactory = _ => 50,
        };
        var clip = new Option<double>("--grad-clip") { Description = "Clip the global gradient norm to this (0: no clipping).", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long>("--seed") { Description = "Offset of the window sampler's sample counter: another seed trains on the windows in another order.", DefaultValueFactory = _ => 0 };
        var every = new Option<int>("--checkpoint-every")
        {
            Description = "Optimiser steps between checkpoints (one is also written at the end and on Ctrl-C).",
            DefaultValueFactory = _ => 100,
        };
        var resume = new Option<bool>("--resume")
        {
            Description = "Continue the run saved in --output exactly where it stopped. Training options not given take the checkpoint's values; given ones must match.",
        };
        var logCsv = new Option<string?>("--log-csv") { Description = "The CSV log (step, tokens, loss, lr, grad_norm, tokens_per_s, seconds). Default: OUTPUT/train-log.csv." };
        var backendOption = CommonOptions.Backend();
        var profile = CommonOptions.Profile();
        var gemmTflops = new Option<double>("--gemm-tflops")
        {
            Description = "The card's bf16 GEMM rate in TFLOP/s that the training FLOP/s is reported as a fraction of. Default: measured with cuBLASLt " +
                "(bf16 8192³, as `radlads bench-decode --gemm`) at the end of a CUDA run; not reported on other backends unless given.",
        };
        var command = new Command("distill",
            "Train a converted RAD-RWKV student against its Qwen2 teacher (RADLADS). Step 1: AdamW (β 0.9/0.95, ε 1e-8, no weight decay) on fp32 " +
            "master weights, global-norm clipping, warm-up then quarter-cosine LR, windows drawn by the magic-prime sampler. Progress on standard error; " +
            "Ctrl-C finishes the current step, saves and exits; --resume continues exactly.")
        {
            stage, teacher, student, data, output, ctxLen, batch, tokens, lrInit, lrFinal, warmup, clip, seed, every, resume, logCsv, backendOption, profile, gemmTflops,
        };
        command.SetAction(parse =>
        {
            int step = parse.GetValue(stage);
            if (step is 2 or 3)
            {
                throw new RadladsException($"--stage {step}: not implemented yet; only --stage 1 (attention alignment) exists so far");
            }

            if (step != 1)
            {
                throw new RadladsException($"--stage must be 1, 2 or 3, got {step}");
            }

            string teacherDir = parse.GetValue(teacher)!;
            string studentDir = parse.GetValue(student)!;
            string dataPath = parse.GetValue(data)!;
            string outputDir = Path.GetFullPath(parse.GetValue(output)!);
            RequireDirectory(teacherDir, "--teacher");
            RequireDirectory(studentDir, "--student");
            if (!File.Exists(dataPath))
            {
                throw new RadladsException($"--data {Path.GetFullPath(dataPath)}: file not found; make one with `radlads data tokenize`");
            }

            double givenRate = parse.GetValue(gemmTflops);
            if (givenRate < 0 || !double.IsFinite(givenRate))
            {
                throw new RadladsException($"--gemm-tflops must be a positive rate in TFLOP/s (or left out to measure it), got {givenRate}");
            }

            bool resuming = parse.GetValue(resume);
            var saved = resuming ? TrainingCheckpoint.ReadHeader(TrainingCheckpoint.PathIn(outputDir)).Options : new TrainingOptions();
            T Pick<T>(Option<T> option, T fromCheckpoint) => resuming && parse.GetResult(option) is not { Implicit: false } ? fromCheckpoint : parse.GetValue(option)!;
            var options = saved with
            {
                CtxLen = Pick(ctxLen, saved.CtxLen),
                Batch = Pick(batch, saved.Batch),
                TokenBudget = Pick(tokens, saved.TokenBudget),
                LrInit = Pick(lrInit, saved.LrInit),
                LrFinal = Pick(lrFinal, saved.LrFinal),
                WarmupSteps = Pick(warmup, saved.WarmupSteps),
                ClipNorm = Pick(clip, saved.ClipNorm),
                Seed = Pick(seed, saved.Seed),
                CheckpointEvery = parse.GetValue(every),
            };
            options.Validate();
            TrainingLoop.CheckCanStart(outputDir, options, resuming); // before the model loads

            using var tokenFile = TokenFile.Open(dataPath);
            _ = new WindowSampler(tokenFile, options.CtxLen, options.Seed); // a too-small file fails here, before the model loads
            // --profile: every forward, backward, loss and optimiser op timed (on a GPU with a stream wait around each, so
            // the times are device times and the run is slower), one table at the end.
            using var backend = CommonOptions.CreateBackend(parse.GetValue(backendOption)!, parse.GetValue(profile), io.Error);
            if (backend.BackwardOps is null)
            {
                throw new RadladsException($"--backend {backend.Name} cannot train yet (no backward ops); use --backend cpu");
            }

            var model = OpenStep1(backend, teacherDir, studentDir);
            using var objective = model.Objective;
            string csvPath = Path.GetFullPath(parse.GetValue(logCsv) ?? Path.Combine(outputDir, "train-log.csv"));
            string plotPath = Path.Combine(outputDir, "loss.svg");
            bool terminal = ReferenceEquals(io.Error, Console.Error) && !Console.IsErrorRedirected;
            using var progress = new DistillProgress(io.Error, terminal, plotPath, csvPath);
            using var loop = new TrainingLoop(backend, objective, tokenFile, options, outputDir, csvPath, progress);
            WriteSummary(io.Error, options, objective, tokenFile, loop, backend, resuming);

            using var cancel = new CancellationTokenSource();
            void OnCtrlC(object? sender, ConsoleCancelEventArgs e)
            {
                if (!cancel.IsCancellationRequested)
                {
                    e.Cancel = true; // a second Ctrl-C quits at once (without saving)
                    cancel.Cancel();
                    io.Error.WriteLine();
                    io.Error.WriteLine("Ctrl-C: finishing this step, then saving a checkpoint (Ctrl-C again quits without saving)");
                }
            }

            Console.CancelKeyPress += OnCtrlC;
            TrainingOutcome outcome;
            try
            {
                outcome = loop.Run(resuming, cancel.Token);
                progress.WritePlot();
            }
            finally
            {
                progress.Dispose(); // ends the bar's line, so what follows (or an error) starts on its own
                Console.CancelKeyPress -= OnCtrlC;
            }

            var state = loop.State;
            var inv = CultureInfo.InvariantCulture;
            if (backend is ProfilingBackend)
            {
                io.Error.WriteLine("Op profile (every op of every step, a stream wait around each):");
                CommonOptions.ReportProfile(backend, io.Error);
            }

            if (outcome == TrainingOutcome.Interrupted)
            {
                io.Error.WriteLine(string.Create(inv, $"interrupted after step {state.Step:N0} ({state.TokensSeen:N0} of {options.TotalSteps * options.TokensPerStep:N0} tokens); saved in {loop.CheckpointPath}"));
                io.Error.WriteLine($"continue with: radlads distill --stage 1 --teacher {Quote(teacherDir)} --student {Quote(studentDir)} --data {Quote(dataPath)} --output {Quote(outputDir)} --resume");
                return Interrupted;
            }

            ReportThroughput(io.Error, outputDir, backend, state, options, model.FlopsPerToken, givenRate * 1e12);
            model.WriteStudent(outputDir);
            io.Error.WriteLine(string.Create(inv,
                $"done: {state.Step:N0} steps, {state.TokensSeen:N0} tokens in {DistillProgress.Duration(TimeSpan.FromSeconds(state.Seconds))}, final loss {state.LastLoss:G5}; trained student in {outputDir}"));
            io.Error.WriteLine($"log: {csvPath}; loss curve: {plotPath}");
            return 0;
        });
        return command;
    }

    private static void WriteSummary(TextWriter e, TrainingOptions o, ITrainingObjective objective, TokenFile data, TrainingLoop loop, IBackend backend, bool resuming)
    {
        var inv = CultureInfo.InvariantCulture;
        long parameters = objective.Parameters.Sum(p => p.Value.ElementCount);
        long samples = o.TotalSteps * o.Batch;
        e.WriteLine(string.Create(inv, $"distill:    step 1 on {backend.Description}; {objective.Parameters.Count} trained tensors, {parameters:N0} parameters (fp32 master weights, AdamW m and v)"));
        e.WriteLine(string.Create(inv,
            $"data:       {data.Path}: {data.Count:N0} tokens, {loop.MagicPrime:N0} windows of {o.CtxLen}+1 (magic prime); the run draws {samples:N0} ({(double)samples / loop.MagicPrime:F2} passes), seed {o.Seed}"));
        e.WriteLine(string.Create(inv,
            $"schedule:   {o.TotalSteps:N0} steps × {o.Batch} × {o.CtxLen} tokens = {o.TotalSteps * o.TokensPerStep:N0}; LR {o.LrInit:G3} → {o.LrFinal:G3} (quarter cosine, {o.WarmupSteps} warm-up steps), clip {o.ClipNorm:G3}"));
        e.WriteLine(string.Create(inv, $"output:     {loop.OutputDirectory} (checkpoint every {o.CheckpointEvery} steps){(resuming ? "; resuming" : "")}"));
    }

    /// <summary>The file beside the run's log with one row of this run's throughput (appended on every completed run).</summary>
    internal const string SummaryFile = "train-summary.csv";

    internal const string SummaryHeader = "steps,tokens,seconds,tokens_per_s,flops_per_token,tflop_s,gemm_tflop_s,gemm_fraction,backend,profiled";

    /// <summary>
    /// Prints "training throughput: X tokens/s, Y TFLOP/s = Z % of the measured bf16 GEMM rate" and appends it to
    /// <see cref="SummaryFile"/>. The GEMM rate is <paramref name="givenRate"/> (FLOP/s) when set, else measured on a
    /// CUDA backend with cuBLASLt (bf16 8192³, median of 20), else not reported.
    /// </summary>
    private static void ReportThroughput(TextWriter e, string outputDir, IBackend backend, TrainingState state, TrainingOptions options,
        Func<int, double>? flopsPerToken, double givenRate)
    {
        var inv = CultureInfo.InvariantCulture;
        bool profiled = backend is ProfilingBackend;
        var raw = backend is ProfilingBackend p ? p.Inner : backend;
        double tokensPerSecond = state.Seconds > 0 ? state.TokensSeen / state.Seconds : 0;
        double perToken = flopsPerToken?.Invoke(options.CtxLen) ?? 0;
        double rate = perToken * tokensPerSecond;
        double gemm = givenRate;
        string source = "bf16 GEMM rate given with --gemm-tflops";
        if (gemm <= 0 && raw is Radlads.Cuda.CudaBackend cuda && perToken > 0)
        {
            gemm = Radlads.Cuda.CudaBenchmarks.Bf16Gemm(cuda, 8192, 8192, 8192, 20)?.FlopsPerSecond ?? 0;
            source = gemm > 0 ? "measured bf16 GEMM rate (cuBLASLt 8192³)" : $"GEMM rate not measured: {cuda.GemmStatus}";
        }

        string line = $"training throughput: {tokensPerSecond:F0} tokens/s";
        if (perToken > 0)
        {
            line += string.Create(inv, $", {rate / 1e12:F3} TFLOP/s ({perToken / 1e6:F1} MFLOP per token, estimated)");
            line += gemm > 0 ? string.Create(inv, $" = {rate / gemm:P2} of the {source}, {gemm / 1e12:F0} TFLOP/s") : $"; {source}";
        }

        if (profiled)
        {
            line += " (--profile waits around every op: slower than an unprofiled run)";
        }

        e.WriteLine(line);
        string path = Path.Combine(outputDir, SummaryFile);
        bool exists = File.Exists(path);
        using var writer = new StreamWriter(path, append: true) { NewLine = "\n" };
        if (!exists)
        {
            writer.WriteLine(SummaryHeader);
        }

        writer.WriteLine(string.Create(inv,
            $"{state.Step},{state.TokensSeen},{state.Seconds:F3},{tokensPerSecond:F1},{perToken:F0},{rate / 1e12:F4},{gemm / 1e12:F1},{(gemm > 0 ? rate / gemm : 0):F5},{backend.Name},{(profiled ? 1 : 0)}"));
    }

    private static void RequireDirectory(string path, string option)
    {
        if (!Directory.Exists(path))
        {
            throw new RadladsException($"{option} {Path.GetFullPath(path)}: folder not found");
        }
    }

    private static string Quote(string path) => path.Contains(' ', StringComparison.Ordinal) || path.Contains('\'', StringComparison.Ordinal)
        ? "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'"
        : path;
}
