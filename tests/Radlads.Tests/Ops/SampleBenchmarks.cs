using System.Globalization;
using Radlads.Cuda;
using Radlads.Ops;
using Radlads.Tests.Models;

namespace Radlads.Tests.Ops;

/// <summary>
/// µs per CUDA Sample at Qwen2.5's vocabulary (V = 151,936, one row): the multi-block path (sample_scan_f32 +
/// sample_finish_f32) against the single-block sample_f32, for greedy, Qwen2.5's defaults (T 0.7, top-k 20, top-p 0.8)
/// and top-p only. "kernels" = the queued launches alone, back to back (what a decode graph pays); "call" = the whole
/// IOps.Sample (parameter upload, launches, id download, synchronise). Runs only with RADLADS_BENCH=1 (the GPU machine).
/// Checks that both paths pick the same ids while it is at it.
/// </summary>
public sealed class SampleBenchmarks
{
    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Fact]
    public void SampleMicrosecondsAtQwenVocabulary()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("RADLADS_BENCH") == "1", "a GPU benchmark: set RADLADS_BENCH=1 to run it");
        Assert.SkipWhen(CudaAvailability.Unavailable is not null, CudaAvailability.Unavailable ?? "");
        const int v = 151936;
        using var backend = new CudaBackend();
        var ops = (CudaOps)backend.Ops;
        var data = new TestData(5);
        using var logits = backend.FromFloats(data.Normal(v, 3f), 1, v);
        Report($"CUDA: {backend.Description}");
        Report("| options | path | kernels µs | call µs | id |");
        Report("|---|---|---:|---:|---:|");
        (string Name, SampleRow Row)[] cases =
        [
            ("greedy", SampleRow.Greedy),
            ("T 0.7, top-k 20, top-p 0.8", new SampleRow(0.7f, 20, 0.8f, 0f, 0.37)),
            ("T 1, top-k 1024, top-p 0.95", new SampleRow(1f, 1024, 0.95f, 0f, 0.37)),
            ("T 0.7, top-p 0.8 (no top-k)", new SampleRow(0.7f, 0, 0.8f, 0f, 0.37)),
        ];
        bool saved = CudaOps.SingleBlockSample;
        try
        {
            foreach (var (name, row) in cases)
            {
                var picked = new List<int>();
                foreach (bool single in new[] { false, true })
                {
                    CudaOps.SingleBlockSample = single;
                    var ids = new int[1];
                    double call = Time(() => ops.Sample(logits, v, [row], ids), backend.Synchronize);
                    picked.Add(ids[0]);
                    // The parameters the last call uploaded stay in the sample buffer: queue the launches alone.
                    ulong buffer = backend.SampleBuffer(1);
                    double kernels = Time(() => ops.QueueSample(logits, v, 1, buffer, buffer + 24), backend.Synchronize);
                    Report(string.Create(CultureInfo.InvariantCulture,
                        $"| {name} | {(single ? "single block (old)" : "multi-block")} | {kernels * 1e6:F1} | {call * 1e6:F1} | {ids[0]} |"));
                }

                Assert.Equal(picked[0], picked[1]);
            }
        }
        finally
        {
            CudaOps.SingleBlockSample = saved;
        }
    }

    private static double Time(Action op, Action synchronize) => BenchTiming.MeanSeconds(op, synchronize);
}
