using System.Diagnostics;
using System.Globalization;

namespace Radlads.Cli.Bench;

/// <summary>
/// A progress bar on standard error: redrawn in place on a terminal, one line per step otherwise (logs, tests).
/// </summary>
internal sealed class Progress(TextWriter error, bool interactive, int total)
{
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private int done;

    public int Total { get; set; } = Math.Max(1, total);

    /// <summary>Marks one unit of work finished; <paramref name="what"/> says which.</summary>
    public void Step(string what)
    {
        done = Math.Min(done + 1, Total);
        Show(what);
    }

    /// <summary>Shows <paramref name="what"/> as the work in progress without counting a unit.</summary>
    public void Show(string what)
    {
        const int width = 30;
        int filled = (int)((long)width * done / Total);
        string bar = new string('#', filled) + new string('.', width - filled);
        var elapsed = clock.Elapsed;
        string line = string.Create(CultureInfo.InvariantCulture, $"[{bar}] {done}/{Total} {elapsed:m\\:ss} {what}");
        if (interactive)
        {
            error.Write("\r" + (line.Length > 118 ? line[..118] : line.PadRight(118)));
        }
        else
        {
            error.WriteLine(line);
        }
    }

    /// <summary>Ends the bar's line on a terminal.</summary>
    public void Finish()
    {
        if (interactive)
        {
            error.WriteLine();
        }
    }
}
