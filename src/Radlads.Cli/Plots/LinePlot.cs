using System.Runtime.InteropServices;

namespace Radlads.Cli.Plots;

/// <summary>
/// One PNG with a few named lines over a shared x axis (the trainer's loss curve; benchmark tables): a thin wrapper
/// around ScottPlot so callers never see its API. Rendering is headless (SkiaSharp's NoDependencies native build).
/// Plots are a convenience: <see cref="TrySave"/> never throws, it says why it could not draw (e.g. the native Skia
/// library is absent, as in the size-cut GPU test bundle).
/// </summary>
internal sealed class LinePlot(string title, string xLabel, string yLabel)
{
    private readonly List<(string Name, double[] X, double[] Y)> _lines = [];

    /// <summary>A logarithmic y axis (loss curves spanning decades).</summary>
    public bool LogY { get; init; }

    public int Width { get; init; } = 1000;

    public int Height { get; init; } = 600;

    public LinePlot Add(string name, IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count)
        {
            throw new ArgumentException($"line {name}: {x.Count} x values but {y.Count} y values");
        }

        _lines.Add((name, x.ToArray(), y.ToArray()));
        return this;
    }

    /// <summary>Writes the PNG (atomically: a temporary file renamed over the old one); null on success, else why not.</summary>
    public string? TrySave(string path)
    {
        try
        {
            Save(path);
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or IOException or UnauthorizedAccessException
            or EntryPointNotFoundException or BadImageFormatException or MarshalDirectiveException)
        {
            return $"{e.GetType().Name}: {(e.InnerException ?? e).Message.Split('\n')[0]}";
        }
    }

    public void Save(string path)
    {
        var plot = new ScottPlot.Plot();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        foreach (var (name, x, y) in _lines)
        {
            // Log axes in ScottPlot 5 are log-scaled data with log tick labels; non-positive values are dropped.
            var keep = Enumerable.Range(0, x.Length).Where(i => double.IsFinite(y[i]) && (!LogY || y[i] > 0)).ToArray();
            double[] xs = keep.Select(i => x[i]).ToArray();
            double[] ys = keep.Select(i => LogY ? Math.Log10(y[i]) : y[i]).ToArray();
            var line = plot.Add.ScatterLine(xs, ys);
            line.LegendText = name;
        }

        if (LogY)
        {
            var ticks = new ScottPlot.TickGenerators.LogMinorTickGenerator();
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = ticks,
                LabelFormatter = v => Math.Pow(10, v).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
            };
        }

        plot.ShowLegend();
        string temporary = path + ".tmp.png";
        plot.SavePng(temporary, Width, Height);
        File.Move(temporary, path, overwrite: true);
    }
}
