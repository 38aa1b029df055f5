using System.Diagnostics;
using System.Globalization;

namespace Radlads.Cli.Data;

/// <summary>
/// The progress bar of <c>radlads data tokenize</c> on standard error: documents and tokens done, tokens/s and an
/// ETA from the input bytes consumed. On a terminal it is redrawn in place (\r) at most 10 times a second; otherwise
/// only the final state is printed, as one plain line. <see cref="Add"/> may be called from any thread.
/// </summary>
internal sealed class TokenizeProgress : IDisposable
{
    private const int BarWidth = 24;
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(100);

    private readonly TextWriter _error;
    private readonly bool _terminal;
    private readonly long _totalBytes;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Lock _drawing = new();
    private readonly Timer? _timer;
    private readonly int _width;
    private long _documents;
    private long _tokens;
    private long _bytes;
    private int _lastLength;
    private bool _stopped;

    public TokenizeProgress(TextWriter error, bool terminal, long totalBytes)
    {
        _error = error;
        _terminal = terminal;
        _totalBytes = totalBytes;
        if (terminal)
        {
            _width = TerminalWidth();
            _timer = new Timer(_ => Draw(final: false), null, Period, Period);
        }
    }

    public long Documents => Interlocked.Read(ref _documents);

    public long Tokens => Interlocked.Read(ref _tokens);

    public TimeSpan Elapsed => _clock.Elapsed;

    public void Add(long documents, long tokens, long inputBytes)
    {
        Interlocked.Add(ref _documents, documents);
        Interlocked.Add(ref _tokens, tokens);
        Interlocked.Add(ref _bytes, inputBytes);
    }

    /// <summary>Stops the clock and prints the final state (one line, ending the bar on a terminal).</summary>
    public void Finish()
    {
        _clock.Stop();
        Interlocked.Exchange(ref _bytes, _totalBytes);
        Draw(final: true);
    }

    /// <summary>Stops redrawing; on a terminal, ends an unfinished bar's line so an error message starts on its own.</summary>
    public void Dispose()
    {
        _timer?.Dispose();
        lock (_drawing)
        {
            if (!_stopped && _terminal && _lastLength > 0)
            {
                _error.WriteLine();
            }

            _stopped = true;
        }
    }

    private void Draw(bool final)
    {
        lock (_drawing)
        {
            if (_stopped || (!final && !_terminal))
            {
                return;
            }

            string line = Render(final);
            if (_terminal)
            {
                _error.Write("\r" + line + new string(' ', Math.Max(0, _lastLength - line.Length)));
                _lastLength = line.Length;
            }

            if (final)
            {
                if (!_terminal)
                {
                    _error.Write(line);
                }

                _error.WriteLine();
                _error.Flush();
                _stopped = true;
            }
            else
            {
                _error.Flush();
            }
        }
    }

    private string Render(bool final)
    {
        double seconds = _clock.Elapsed.TotalSeconds;
        long documents = Documents, tokens = Tokens, bytes = Math.Min(Interlocked.Read(ref _bytes), _totalBytes);
        double fraction = _totalBytes > 0 ? (double)bytes / _totalBytes : final ? 1 : 0;
        int filled = (int)Math.Round(fraction * BarWidth);
        double rate = seconds > 0 ? tokens / seconds : 0;
        string tail;
        if (final)
        {
            tail = "done in " + Clock(seconds);
        }
        else if (bytes > 0 && seconds >= 0.5)
        {
            tail = "ETA " + Clock(seconds * (_totalBytes - bytes) / bytes);
        }
        else
        {
            tail = "ETA --:--";
        }

        string line = string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', BarWidth - filled)}] {fraction * 100,5:F1}%  {Compact(documents)} docs  {Compact(tokens)} tokens  {Compact(rate)} tokens/s  {tail}");
        // A line wider than the terminal would wrap, and \r would then redraw only its last row.
        return _width > 20 && line.Length >= _width ? line[..(_width - 1)] : line;
    }

    /// <summary>12,345 → "12.3k", 4,567,890 → "4.57M": the bar stays one line; the summary has exact numbers.</summary>
    private static string Compact(double n) => n switch
    {
        < 1e4 => n.ToString("N0", CultureInfo.InvariantCulture),
        < 1e6 => (n / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "k",
        < 1e9 => (n / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + "M",
        _ => (n / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + "B",
    };

    private static int TerminalWidth()
    {
        try
        {
            return Console.WindowWidth;
        }
        catch (Exception e) when (e is IOException or PlatformNotSupportedException)
        {
            return 0;
        }
    }

    private static string Clock(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Min(seconds, TimeSpan.MaxValue.TotalSeconds / 2));
        return string.Create(CultureInfo.InvariantCulture, $"{(long)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}");
    }
}
