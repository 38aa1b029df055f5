namespace Radlads.Generation;

/// <summary>
/// Releases streamed text only once it cannot be the start of a stop string, so a stop string split across
/// tokens is never printed in part.
/// </summary>
internal sealed class StopStringMatcher(IReadOnlyList<string> stops)
{
    private string pending = "";

    public bool Stopped { get; private set; }

    /// <summary>Adds text; returns what is safe to emit now.</summary>
    public string Push(string text)
    {
        if (Stopped)
        {
            return "";
        }

        pending += text;
        int cut = -1;
        foreach (var stop in stops)
        {
            int at = pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut))
            {
                cut = at;
            }
        }

        if (cut >= 0)
        {
            Stopped = true;
            var before = pending[..cut];
            pending = "";
            return before;
        }

        // Hold back the longest suffix that is a proper prefix of some stop string.
        int hold = 0;
        foreach (var stop in stops)
        {
            for (int len = Math.Min(stop.Length - 1, pending.Length); len > hold; len--)
            {
                if (pending.AsSpan(pending.Length - len).SequenceEqual(stop.AsSpan(0, len)))
                {
                    hold = len;
                    break;
                }
            }
        }

        var ready = pending[..^hold];
        pending = pending[^hold..];
        return ready;
    }

    /// <summary>The end of the stream: held-back text was not a stop string after all.</summary>
    public string Flush()
    {
        var rest = Stopped ? "" : pending;
        pending = "";
        return rest;
    }
}
