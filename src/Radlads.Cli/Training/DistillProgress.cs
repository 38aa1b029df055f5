using System.Diagnostics;
using System.Globalization;
using Radlads.Cli.Plots;
using Radlads.Training;

namespace Radlads.Cli.Training;

/// <summary>
/// What `radlads distill` shows while it trains, on standard error: a progress bar (tokens done/total, tokens/s, loss,
/// LR, ETA) redrawn in place at most 10 times a second on a terminal, or a plain line every 10 seconds (and at each
/// checkpoint) otherwise; a line per checkpoint; and the loss curve, redrawn as a PNG at every checkpoint.
/// </summary>
internal sealed class DistillProgress(TextWriter error, bool terminal, string plotPath, string csvPath) : ITrainingObserver, IDisposable
{
    private const int BarWidth = 24;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _lastDraw = TimeSpan.MinValue;
    private long _total;
    private long _tokensAtStart;
    private TrainingStep? _last;
    private int _open;
    private bool _plotWarned;

    public void Started(TrainingOptions options, TrainingState state, long magicPrime)
    {
        _total = options.TotalSteps * options.TokensPerStep;
        _tokensAtStart = state.TokensSeen;
    }

    public void StepDone(TrainingStep step)
    {
        _last = step;
        var period = terminal ? TimeSpan.FromMilliseconds(100) : TimeSpan.FromSeconds(10);
        if (_lastDraw == TimeSpan.MinValue || _clock.Elapsed - _lastDraw >= period || step.Tokens >= _total)
        {
            Draw();
        }
    }

    public void CheckpointWritten(string path, long bytes, TrainingState state)
    {
        if (!terminal && _last is not null && _clock.Elapsed != _lastDraw)
        {
            Draw();
        }

        EndLine();
        error.WriteLine(string.Create(Inv, $"checkpoint: step {state.Step:N0}, {state.TokensSeen:N0} tokens → {path} ({bytes / 1e6:F1} MB)"));
        WritePlot();
    }

    /// <summary>Draws the loss curve of the CSV log (every step of every resumed run) into <c>plotPath</c>.</summary>
    public void WritePlot()
    {
        if (!File.Exists(csvPath))
        {
            return;
        }

        var rows = TrainingLog.Read(csvPath);
        var chart = new LineChart("Step-1 alignment loss", "tokens", "loss (log scale)",
            [new PlotSeries("loss", rows.Select(r => ((double)r.Tokens, r.Loss)).ToArray())])
        { LogY = true, Markers = false };
        string? failure = null;
        try
        {
            // A temporary file renamed over the old plot, so a viewer never sees half a file.
            string temporary = plotPath + ".tmp";
            new SvgPlotWriter().Write(chart, temporary);
            File.Move(temporary, plotPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            failure = e.Message;
        }

        if (failure is not null && !_plotWarned)
        {
            EndLine();
            error.WriteLine($"note: the loss plot {plotPath} was not drawn ({failure}); the CSV log {csvPath} has the numbers");
            _plotWarned = true;
        }
    }

    private void Draw()
    {
        if (_last is not { } s)
        {
            return;
        }

        _lastDraw = _clock.Elapsed;
        double fraction = _total == 0 ? 1 : Math.Min(1, (double)s.Tokens / _total);
        double rate = (s.Tokens - _tokensAtStart) / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
        string eta = rate > 0 ? Duration(TimeSpan.FromSeconds((_total - s.Tokens) / rate)) : "?";
        string text = string.Create(Inv,
            $"{Count(s.Tokens)}/{Count(_total)} tokens ({fraction * 100:F1} %), {Count((long)rate)} tok/s, step {s.Step:N0}, loss {s.Loss:G5}, lr {s.LearningRate:0.00e+0}, grad norm {s.GradNorm:G3}, ETA {eta}");
        if (terminal)
        {
            int filled = (int)(fraction * BarWidth);
            string line = "\r[" + new string('#', filled) + new string('-', BarWidth - filled) + "] " + text;
            error.Write(line.PadRight(_open));
            _open = line.Length;
        }
        else
        {
            error.WriteLine(text);
        }
    }

    /// <summary>Ends the bar's line so the next message starts on its own line.</summary>
    private void EndLine()
    {
        if (_open > 0)
        {
            error.WriteLine();
            _open = 0;
        }
    }

    public void Dispose() => EndLine();

    private static string Count(long n) => n switch
    {
        >= 1_000_000_000 => string.Create(Inv, $"{n / 1e9:F2}G"),
        >= 1_000_000 => string.Create(Inv, $"{n / 1e6:F2}M"),
        >= 10_000 => string.Create(Inv, $"{n / 1e3:F1}k"),
        _ => n.ToString(Inv),
    };

    internal static string Duration(TimeSpan t) => t.TotalHours >= 1
        ? string.Create(Inv, $"{(int)t.TotalHours}h{t.Minutes:D2}m")
        : string.Create(Inv, $"{t.Minutes}m{t.Seconds:D2}s");
}
