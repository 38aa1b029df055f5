using System.Diagnostics;

namespace Radlads.Tests.Ops;

/// <summary>The timing loop the op benchmarks (RADLADS_BENCH=1, GPU machine) share.</summary>
internal static class BenchTiming
{
    /// <summary>
    /// Mean seconds per call of <paramref name="op"/>: a warm-up call, one synchronised call to size the run, then about
    /// 0.2 s of calls (3 to <paramref name="maxCalls"/>) back to back, synchronised once.
    /// </summary>
    public static double MeanSeconds(Action op, Action synchronize, int maxCalls = 2000)
    {
        op();
        synchronize();
        var once = Stopwatch.StartNew();
        op();
        synchronize();
        int count = (int)Math.Clamp(0.2 / Math.Max(once.Elapsed.TotalSeconds, 1e-6), 3, maxCalls);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            op();
        }

        synchronize();
        return watch.Elapsed.TotalSeconds / count;
    }
}
