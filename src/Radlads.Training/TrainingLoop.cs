using System.Diagnostics;
using System.Globalization;
using Radlads.Data;
using Radlads.Ops;

namespace Radlads.Training;

/// <summary>
/// The optimiser loop around an <see cref="ITrainingObjective"/> (rad-rwkv-spec §7.3–7.5): per step it zeroes the
/// gradients, draws ctx × batch tokens from the <see cref="WindowSampler"/>, runs the objective's forward and backward,
/// takes the global gradient norm (SumOfSquares over every parameter), stops on a NaN/Inf loss or norm, clips, and
/// applies AdamW with the scheduled LR to the fp32 master weights (m and v live on the backend beside them). It writes
/// the CSV log every step and an atomic checkpoint every <see cref="TrainingOptions.CheckpointEvery"/> steps, at the
/// end, and when <see cref="Run"/>'s token is cancelled (after the step in progress). Deterministic: the same inputs
/// give the same losses bit for bit, and a resumed run continues the uninterrupted one exactly (on the CPU backend).
/// </summary>
public sealed class TrainingLoop : IDisposable
{
    private readonly IBackend _backend;
    private readonly IBackwardOps _ops;
    private readonly ITrainingObjective _objective;
    private readonly TrainingOptions _options;
    private readonly WindowSampler _sampler;
    private readonly ITrainingObserver _observer;
    private readonly List<Tensor> _m = [];
    private readonly List<Tensor> _v = [];

    public TrainingLoop(IBackend backend, ITrainingObjective objective, TokenFile data, TrainingOptions options,
        string outputDirectory, string? logCsvPath = null, ITrainingObserver? observer = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(objective);
        options.Validate();
        if (options.TotalSteps > int.MaxValue - 1)
        {
            throw new RadladsException($"--tokens {options.TokenBudget} needs {options.TotalSteps} steps, more than AdamW's step counter holds; raise --batch or lower --tokens");
        }

        _backend = backend;
        _ops = backend.BackwardOps ?? throw new RadladsException($"--backend {backend.Name} cannot train (it has no backward ops); use --backend cpu or cuda");
        _objective = objective;
        _options = options;
        _observer = observer ?? new NoObserver();
        _sampler = new WindowSampler(data, options.CtxLen, options.Seed);
        OutputDirectory = Path.GetFullPath(outputDirectory);
        CheckpointPath = TrainingCheckpoint.PathIn(OutputDirectory);
        LogPath = logCsvPath ?? Path.Combine(OutputDirectory, "train-log.csv");
        LayerLogPath = Path.Combine(OutputDirectory, "layer-loss.csv");
        foreach (var p in objective.Parameters)
        {
            if (p.Value.DType != Checkpoints.DType.F32 || p.Grad.DType != Checkpoints.DType.F32 || p.Grad.ElementCount != p.Value.ElementCount)
            {
                throw new ArgumentException($"parameter {p.Name}: value and gradient must be fp32 tensors of the same size");
            }

            _m.Add(backend.Allocate(p.Value.Shape));
            _v.Add(backend.Allocate(p.Value.Shape));
        }
    }

    public string OutputDirectory { get; }

    public string CheckpointPath { get; }

    public string LogPath { get; }

    /// <summary>OUTPUT/layer-loss.csv: each layer's part of the loss per step, when the objective has layers (step 1).</summary>
    public string LayerLogPath { get; }

    public long MagicPrime => _sampler.MagicPrime;

    public TrainingState State { get; private set; } = new();

    /// <summary>
    /// Trains until the token budget is reached or <paramref name="cancel"/> is signalled. With
    /// <paramref name="resume"/> it first loads <see cref="CheckpointPath"/> (options must match); without it an
    /// existing checkpoint there is an error, so a finished or interrupted run is never overwritten by accident.
    /// </summary>
    public TrainingOutcome Run(bool resume, CancellationToken cancel = default)
    {
        Directory.CreateDirectory(OutputDirectory);
        long? savedStep = null;
        CheckCanStart(OutputDirectory, _options, resume);
        if (resume)
        {
            State = TrainingCheckpoint.Load(CheckpointPath, _backend, _objective.Parameters, _m, _v).State;
            savedStep = State.Step;
        }

        using var log = TrainingLog.Open(LogPath, resume ? State.Step : null);
        int layers = _objective.LayerLosses.Count;
        using var layerLog = layers > 0 ? TrainingLog.OpenLayers(LayerLogPath, resume ? State.Step : null, layers) : null;
        _observer.Started(_options, State, _sampler.MagicPrime);
        long total = _options.TotalSteps;
        var tokens = new int[_options.Batch * _options.CtxLen];
        var parameters = _objective.Parameters;
        var gradients = parameters.Select(p => p.Grad).ToArray();
        var squares = new double[gradients.Length];
        while (State.Step < total)
        {
            if (cancel.IsCancellationRequested)
            {
                if (savedStep != State.Step)
                {
                    Save();
                }

                return TrainingOutcome.Interrupted;
            }

            long start = Stopwatch.GetTimestamp();
            foreach (var p in parameters)
            {
                _ops.Fill(p.Grad, 0f);
            }

            _sampler.Fill(State.SamplesDrawn, _options.Batch, tokens);
            double loss = _objective.ForwardBackward(tokens, _options.Batch, _options.CtxLen);
            // The global norm's parts, read back at once (one GPU synchronisation), added in parameter order.
            _ops.SumsOfSquares(gradients, squares);
            double sumOfSquares = 0;
            foreach (double s in squares)
            {
                sumOfSquares += s;
            }

            double norm = Math.Sqrt(sumOfSquares);
            if (!double.IsFinite(loss) || !double.IsFinite(norm))
            {
                throw Diverged(loss, norm, savedStep);
            }

            float clip = GradientClip.Coefficient(norm, _options.ClipNorm);
            double lr = LearningRateSchedule.At(State.Step, _options);
            int adamStep = checked((int)(State.Step + 1));
            for (int i = 0; i < parameters.Count; i++)
            {
                _ops.AdamW(parameters[i].Value, parameters[i].Grad, _m[i], _v[i], (float)lr, _options.Beta1, _options.Beta2,
                    _options.Eps, _options.WeightDecay, clip, adamStep);
            }

            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            State = State with
            {
                Step = State.Step + 1,
                TokensSeen = State.TokensSeen + _options.TokensPerStep,
                SamplesDrawn = State.SamplesDrawn + _options.Batch,
                Seconds = State.Seconds + seconds,
                LastLoss = loss,
            };
            var row = new TrainingStep(State.Step, State.TokensSeen, loss, lr, norm, _options.TokensPerStep / Math.Max(seconds, 1e-9), State.Seconds);
            log.Write(row);
            layerLog?.WriteLayers(row, _objective.LayerLosses);
            _observer.StepDone(row);
            if (State.Step % _options.CheckpointEvery == 0 || State.Step == total)
            {
                Save();
                savedStep = State.Step;
            }
        }

        return TrainingOutcome.Completed;
    }

    /// <summary>
    /// The checks <see cref="Run"/> makes before touching anything, for a host to make before it loads a model: with
    /// <paramref name="resume"/> the checkpoint in <paramref name="outputDirectory"/> must exist, be readable and have
    /// the same options; without it there must be none (a run is never overwritten by accident).
    /// </summary>
    public static void CheckCanStart(string outputDirectory, TrainingOptions options, bool resume)
    {
        string path = TrainingCheckpoint.PathIn(Path.GetFullPath(outputDirectory));
        if (resume)
        {
            var differences = TrainingCheckpoint.ReadHeader(path).Options.Differences(options);
            if (differences.Count > 0)
            {
                throw new RadladsException($"--resume: the options differ from the checkpoint's ({string.Join("; ", differences)}); resume with the options the run started with");
            }
        }
        else if (File.Exists(path))
        {
            var header = TrainingCheckpoint.ReadHeader(path);
            throw new RadladsException(string.Create(CultureInfo.InvariantCulture,
                $"{Path.GetDirectoryName(path)} already holds a trainer checkpoint (step {header.State.Step}, {header.State.TokensSeen:N0} tokens): continue it with --resume, or give another --output"));
        }
    }

    private void Save()
    {
        long bytes = TrainingCheckpoint.Save(CheckpointPath, _backend, _options, State, _objective.Parameters, _m, _v);
        _observer.CheckpointWritten(CheckpointPath, bytes, State);
    }

    private TrainingDivergedException Diverged(double loss, double norm, long? savedStep)
    {
        string what = double.IsFinite(loss) ? $"the gradient norm is {norm}" : $"the loss is {loss}";
        string last = savedStep is long s
            ? $"the last good checkpoint ({CheckpointPath}, step {s}) is intact: continue from it with --resume and a lower --lr-init, or check the data and the student"
            : "no checkpoint was written yet in this run; check the data and the student, or lower --lr-init";
        return new TrainingDivergedException(string.Create(CultureInfo.InvariantCulture,
            $"training diverged at step {State.Step + 1}: {what} (not finite); the step was not applied and nothing was saved. {last}"));
    }

    public void Dispose()
    {
        foreach (var t in _m.Concat(_v))
        {
            t.Dispose();
        }
    }

    private sealed class NoObserver : ITrainingObserver;
}
