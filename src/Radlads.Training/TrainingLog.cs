using System.Globalization;

namespace Radlads.Training;

/// <summary>
/// The CSV log: <c>step,tokens,loss,lr,grad_norm,tokens_per_s,seconds</c>, one row per optimiser step, flushed as it
/// is written (a crash loses nothing logged). Loss, LR and grad norm are written round-trip exact. On a resume, rows
/// after the checkpoint's step (steps the crashed run did but did not save) are dropped, so the file again reads as
/// one continuous run.
/// </summary>
public sealed class TrainingLog : IDisposable
{
    public const string Header = "step,tokens,loss,lr,grad_norm,tokens_per_s,seconds";

    private readonly StreamWriter _writer;

    private TrainingLog(string path, StreamWriter writer)
    {
        Path = path;
        _writer = writer;
    }

    public string Path { get; }

    /// <summary>A new log (replacing any file there), or with <paramref name="resumeStep"/> the existing one cut after that step.</summary>
    public static TrainingLog Open(string path, long? resumeStep) => Open(path, resumeStep, Header, "--log-csv ");

    /// <summary>
    /// The per-layer loss log (step, tokens, layer_0 … layer_{L−1}), opened as <see cref="Open(string, long?)"/>: cut
    /// after <paramref name="resumeStep"/> on a resume.
    /// </summary>
    public static TrainingLog OpenLayers(string path, long? resumeStep, int layers) =>
        Open(path, resumeStep, "step,tokens," + string.Join(',', Enumerable.Range(0, layers).Select(l => $"layer_{l}")), "");

    private static TrainingLog Open(string path, long? resumeStep, string header, string option)
    {
        var kept = new List<string>();
        if (resumeStep is long step && File.Exists(path))
        {
            var lines = File.ReadAllLines(path);
            if (lines.Length == 0 || lines[0] != header)
            {
                throw new RadladsException($"{option}{path}: not the radlads training log this run writes (first line is not '{header}'); move it away{(option.Length > 0 ? " or give another " + option.Trim() : "")}");
            }

            kept.AddRange(lines.Skip(1).Where(l => l.Length > 0 && long.TryParse(l.AsSpan(0, Math.Max(0, l.IndexOf(','))), NumberStyles.None,
                CultureInfo.InvariantCulture, out long s) && s <= step));
        }

        string? directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        var writer = new StreamWriter(path, append: false) { AutoFlush = false, NewLine = "\n" };
        writer.WriteLine(header);
        foreach (var line in kept)
        {
            writer.WriteLine(line);
        }

        writer.Flush();
        return new TrainingLog(path, writer);
    }

    public void Write(TrainingStep s)
    {
        _writer.WriteLine(Format(s));
        _writer.Flush();
    }

    /// <summary>One row of the per-layer log.</summary>
    public void WriteLayers(TrainingStep s, IReadOnlyList<double> losses)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(losses);
        _writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{s.Step},{s.Tokens},") + string.Join(',', losses.Select(l => l.ToString("R", CultureInfo.InvariantCulture))));
        _writer.Flush();
    }

    public static string Format(TrainingStep s) => string.Create(CultureInfo.InvariantCulture,
        $"{s.Step},{s.Tokens},{s.Loss:R},{s.LearningRate:R},{s.GradNorm:R},{s.TokensPerSecond:F1},{s.Seconds:F3}");

    /// <summary>Reads (step, loss) pairs back (for plots and tests).</summary>
    public static IReadOnlyList<TrainingStep> Read(string path) =>
        File.ReadLines(path).Skip(1).Where(l => l.Length > 0).Select(l =>
        {
            var f = l.Split(',');
            var inv = CultureInfo.InvariantCulture;
            return new TrainingStep(long.Parse(f[0], inv), long.Parse(f[1], inv), double.Parse(f[2], inv), double.Parse(f[3], inv),
                double.Parse(f[4], inv), double.Parse(f[5], inv), double.Parse(f[6], inv));
        }).ToList();

    public void Dispose() => _writer.Dispose();
}
