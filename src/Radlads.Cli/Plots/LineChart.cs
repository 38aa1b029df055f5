namespace Radlads.Cli.Plots;

/// <summary>One line of a chart: a legend label and its points (x ascending; a NaN y leaves a gap).</summary>
public sealed record PlotSeries(string Label, IReadOnlyList<(double X, double Y)> Points);

/// <summary>
/// What a line chart shows, independent of how it is drawn: the bench tool builds these and an
/// <see cref="IPlotWriter"/> renders them. Logarithmic axes use base 2 (context lengths and batch sizes).
/// </summary>
public sealed record LineChart(string Title, string XLabel, string YLabel, IReadOnlyList<PlotSeries> Series)
{
    public bool LogX { get; init; }

    public bool LogY { get; init; }

    /// <summary>A dot at every point (benchmark sweeps of a few points); off for long curves such as a loss per step.</summary>
    public bool Markers { get; init; } = true;
}

/// <summary>Renders charts to files: SVG (<see cref="SvgPlotWriter"/>) for the bench tool and the trainer's loss curve; another format can implement this.</summary>
public interface IPlotWriter
{
    /// <summary>The file extension this writer produces, without the dot ("svg").</summary>
    string Extension { get; }

    /// <summary>Writes <paramref name="chart"/> to <paramref name="path"/> (replacing it).</summary>
    void Write(LineChart chart, string path);
}
