using System.Globalization;
using System.Security;
using System.Text;

namespace Radlads.Cli.Plots;

/// <summary>
/// Line charts as standalone SVG 1.1 (no dependencies, a few kilobytes each): axes with ticks, a grid, one coloured
/// polyline with markers per series and a legend. Written by hand because a plotting package with a native
/// rasteriser (ScottPlot + SkiaSharp) would add megabytes to the GPU machine's upload, and SVG needs none.
/// </summary>
public sealed class SvgPlotWriter : IPlotWriter
{
    private const int Width = 760, Height = 440, Left = 80, Right = 230, Top = 40, Bottom = 60;

    private static readonly string[] Colours =
        ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public string Extension => "svg";

    public void Write(LineChart chart, string path)
    {
        ArgumentNullException.ThrowIfNull(chart);
        File.WriteAllText(path, Render(chart), new UTF8Encoding(false));
    }

    /// <summary>The SVG text of <paramref name="chart"/>.</summary>
    public static string Render(LineChart chart)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var points = chart.Series.SelectMany(s => s.Points)
            .Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!chart.LogX || p.X > 0) && (!chart.LogY || p.Y > 0)).ToArray();
        var svg = new StringBuilder();
        svg.Append(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append(Inv, $"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>\n");
        svg.Append(Inv, $"<text x=\"{(Left + Width - Right) / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Escape(chart.Title)}</text>\n");
        int plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        if (points.Length == 0)
        {
            svg.Append(Inv, $"<text x=\"{Left + (plotW / 2)}\" y=\"{Top + (plotH / 2)}\" text-anchor=\"middle\">no data</text>\n</svg>\n");
            return svg.ToString();
        }

        var x = new Axis(points.Min(p => p.X), points.Max(p => p.X), chart.LogX, false);
        var y = new Axis(points.Min(p => p.Y), points.Max(p => p.Y), chart.LogY, !chart.LogY);
        double Px(double v) => Left + (x.Fraction(v) * plotW);
        double Py(double v) => Top + plotH - (y.Fraction(v) * plotH);

        svg.Append(Inv, $"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW}\" height=\"{plotH}\" fill=\"none\" stroke=\"#333\"/>\n");
        foreach (double t in x.Ticks())
        {
            double px = Px(t);
            svg.Append(Inv, $"<line x1=\"{px:F1}\" y1=\"{Top}\" x2=\"{px:F1}\" y2=\"{Top + plotH}\" stroke=\"#ddd\"/>\n");
            svg.Append(Inv, $"<text x=\"{px:F1}\" y=\"{Top + plotH + 16}\" text-anchor=\"middle\">{Escape(chart.LogX ? BinaryLabel(t) : Label(t))}</text>\n");
        }

        foreach (double t in y.Ticks())
        {
            double py = Py(t);
            svg.Append(Inv, $"<line x1=\"{Left}\" y1=\"{py:F1}\" x2=\"{Left + plotW}\" y2=\"{py:F1}\" stroke=\"#ddd\"/>\n");
            svg.Append(Inv, $"<text x=\"{Left - 6}\" y=\"{py + 4:F1}\" text-anchor=\"end\">{Escape(chart.LogY ? BinaryLabel(t) : Label(t))}</text>\n");
        }

        svg.Append(Inv, $"<text x=\"{Left + (plotW / 2)}\" y=\"{Height - 18}\" text-anchor=\"middle\">{Escape(chart.XLabel)}</text>\n");
        svg.Append(Inv, $"<text transform=\"translate(18,{Top + (plotH / 2)}) rotate(-90)\" text-anchor=\"middle\">{Escape(chart.YLabel)}</text>\n");
        for (int i = 0; i < chart.Series.Count; i++)
        {
            var series = chart.Series[i];
            string colour = Colours[i % Colours.Length];
            var segment = new List<string>();
            void Flush()
            {
                if (segment.Count > 1)
                {
                    svg.Append(Inv, $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{string.Join(' ', segment)}\"/>\n");
                }

                segment.Clear();
            }

            foreach (var (px, py) in series.Points)
            {
                if (!double.IsFinite(px) || !double.IsFinite(py) || (chart.LogX && px <= 0) || (chart.LogY && py <= 0))
                {
                    Flush();
                    continue;
                }

                segment.Add(string.Create(Inv, $"{Px(px):F1},{Py(py):F1}"));
                if (chart.Markers)
                {
                    svg.Append(Inv, $"<circle cx=\"{Px(px):F1}\" cy=\"{Py(py):F1}\" r=\"3\" fill=\"{colour}\"/>\n");
                }
            }

            Flush();
            int ly = Top + 10 + (i * 18);
            svg.Append(Inv, $"<line x1=\"{Width - Right + 12}\" y1=\"{ly}\" x2=\"{Width - Right + 32}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/>\n");
            svg.Append(Inv, $"<text x=\"{Width - Right + 38}\" y=\"{ly + 4}\">{Escape(series.Label)}</text>\n");
        }

        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static string Escape(string text) => SecurityElement.Escape(text) ?? "";

    /// <summary>Powers of two as token counts are written: 1024 = 1k, 131072 = 128k, 2^20 = 1M.</summary>
    private static string BinaryLabel(double v) =>
        v >= 1 << 20 ? string.Create(Inv, $"{v / (1 << 20):0.##}M") : v >= 1024 ? string.Create(Inv, $"{v / 1024:0.##}k") : Label(v);

    private static string Label(double v)
    {
        double a = Math.Abs(v);
        return a >= 1e9 ? string.Create(Inv, $"{v / 1e9:0.##}G")
            : a >= 1e6 ? string.Create(Inv, $"{v / 1e6:0.##}M")
            : a >= 1e4 ? string.Create(Inv, $"{v / 1e3:0.##}k")
            : a >= 100 || a == 0 ? string.Create(Inv, $"{v:0}")
            : a >= 0.01 ? string.Create(Inv, $"{v:0.###}")
            : v.ToString("G2", Inv);
    }

    /// <summary>An axis range: linear (optionally from zero) or log2 with whole-power ticks.</summary>
    private sealed class Axis
    {
        private readonly bool log;
        private readonly double low, high;

        public Axis(double min, double max, bool log, bool fromZero)
        {
            this.log = log;
            if (log)
            {
                low = Math.Floor(Math.Log2(min));
                high = Math.Ceiling(Math.Log2(max));
                high = high <= low ? low + 1 : high;
                return;
            }

            low = fromZero ? Math.Min(0, min) : min;
            high = max;
            if (high <= low)
            {
                high = low + (Math.Abs(low) > 0 ? Math.Abs(low) : 1);
            }

            double step = Step(high - low);
            low = Math.Floor(low / step) * step;
            high = Math.Ceiling(high / step) * step;
        }

        public double Fraction(double v) => log ? (Math.Log2(v) - low) / (high - low) : (v - low) / (high - low);

        public IEnumerable<double> Ticks()
        {
            if (log)
            {
                int every = Math.Max(1, (int)Math.Ceiling((high - low) / 10));
                for (double e = low; e <= high + 1e-9; e += every)
                {
                    yield return Math.Pow(2, e);
                }

                yield break;
            }

            double step = Step(high - low);
            for (double t = low; t <= high + (step * 1e-6); t += step)
            {
                yield return Math.Abs(t) < step * 1e-9 ? 0 : t;
            }
        }

        /// <summary>A 1-2-5 step giving 4 to 10 ticks over <paramref name="range"/>.</summary>
        private static double Step(double range)
        {
            double raw = range / 6;
            double power = Math.Pow(10, Math.Floor(Math.Log10(raw)));
            double m = raw / power;
            return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * power;
        }
    }
}
