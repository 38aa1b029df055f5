using System.Globalization;
using Radlads.Cuda;
using Radlads.Tests.Models;

namespace Radlads.Tests.Ops;

/// <summary>
/// µs per call of the fused CUDA ops against the launches they replace, at the Qwen2.5 0.5B (H 14, KVH 2, N 64, C 896)
/// and 7B (H 28, KVH 4, N 128, C 3584) shapes: RopeExpand (one launch) vs Rope ×2 + RepeatKv ×2 at T = 1 (decode) and
/// T = 2048 (prefill, where the fused kernel does a KV head's G query heads per thread), and ScaleMultiply vs Scale +
/// Multiply at T = 1. Each figure is the median over 20 event-timed batches of 100 back-to-back calls, divided by 100
/// (what an eager stream pays per call). Runs only with RADLADS_BENCH=1 (the GPU machine).
/// </summary>
public sealed class RopeExpandBenchmarks
{
    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Fact]
    public void RopeExpandAndScaleMultiplyMicrosecondsAgainstTheUnfusedOps()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("RADLADS_BENCH") == "1", "a GPU benchmark: set RADLADS_BENCH=1 to run it");
        Assert.SkipWhen(CudaAvailability.Unavailable is not null, CudaAvailability.Unavailable ?? "");
        using var backend = new CudaBackend();
        var ops = backend.Ops;
        var data = new TestData(60);
        Report($"CUDA: {backend.Description}");
        Report("| op | shape | T | fused µs | unfused µs |");
        Report("|---|---|---:|---:|---:|");
        foreach (var (name, h, kvh, n, c) in new[] { ("0.5B", 14, 2, 64, 896), ("7B", 28, 4, 128, 3584) })
        {
            foreach (int t in new[] { 1, 2048 })
            {
                using var r = backend.FromFloats(data.Normal(t * h * n), t, h * n);
                using var k = backend.FromFloats(data.Normal(t * kvh * n), t, kvh * n);
                using var v = backend.FromFloats(data.Normal(t * kvh * n), t, kvh * n);
                using var kh = backend.Allocate(t, h * n);
                using var vh = backend.Allocate(t, h * n);
                // Position 4096 (a rotation keeps the values' size, so repeated calls stay finite).
                double fused = PerCall(backend, () => ops.RopeExpand(r, k, v, h, kvh, n, 4096, 1e6f, kh, vh));
                double unfused = PerCall(backend, () =>
                {
                    ops.Rope(r, h, n, 4096, 1e6f);
                    ops.Rope(k, kvh, n, 4096, 1e6f);
                    ops.RepeatKv(k, kvh, n, h / kvh, kh);
                    ops.RepeatKv(v, kvh, n, h / kvh, vh);
                });
                Report(string.Create(CultureInfo.InvariantCulture, $"| RopeExpand | {name} | {t} | {fused:F2} | {unfused:F2} |"));
            }

            using var o = backend.FromFloats(data.Normal(c), 1, c);
            using var g = backend.FromFloats(data.Normal(c), 1, c);
            using var y = backend.Allocate(1, c);
            double fusedScale = PerCall(backend, () => ops.ScaleMultiply(o, 0.125f, g, y));
            double unfusedScale = PerCall(backend, () =>
            {
                ops.Scale(o, 0.125f, y);
                ops.Multiply(y, g, y);
            });
            Report(string.Create(CultureInfo.InvariantCulture, $"| ScaleMultiply | {name} | 1 | {fusedScale:F2} | {unfusedScale:F2} |"));
        }
    }

    private static double PerCall(CudaBackend backend, Action call)
    {
        const int Calls = 100;
        double ms = CudaBenchmarks.Time(backend, () =>
        {
            for (int i = 0; i < Calls; i++)
            {
                call();
            }
        }, 2, 20);
        Assert.True(ms > 0, "the event timer measured nothing");
        return ms * 1000 / Calls;
    }
}
