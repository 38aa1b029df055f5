using Radlads.Ilgpu;

namespace Radlads.Tests.Ops;

/// <summary>
/// Host ↔ accelerator copies of the ILGPU backend while the GC moves objects. ILGPU's copy overloads that take
/// <c>ref T</c> turn the reference into a raw pointer and then allocate (a wrapper buffer) before copying, so a managed
/// array that is not pinned can move in between: the copy then reads or writes the array's old place and the array keeps
/// its zeros (the all-zero MatMulShared output of one CI run). Every copy must pin its host memory first.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuHostCopyTests
{
    private const int Length = 300;
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(2);

    [Fact]
    public void UploadAndDownloadSurviveCompactingCollections()
    {
        using var backend = new IlgpuBackend(IlgpuDeviceKind.Cpu);
        using var tensor = backend.Allocate(Length);
        var expected = Enumerable.Range(1, Length).Select(i => (float)i).ToArray();
        int rounds = 0, bad = 0;
        string? first = null;
        using var stop = new CancellationTokenSource();
        // A compacting gen-0 collection every millisecond or so: each moves the arrays the test thread just allocated.
        // (Without the pause the collections starve the test thread: a few hundred rounds in 20 s instead of ~10⁶.)
        // Before the fix about one round in 20,000 came back all zeros, the first within ~3,000 rounds.
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect(0, GCCollectionMode.Forced, blocking: true, compacting: true);
                Thread.Sleep(1);
            }
        })
        { IsBackground = true };
        collector.Start();
        try
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            while (watch.Elapsed < Duration)
            {
                rounds++;
                // Garbage before the array, so a collection slides it to a new address.
                _ = new byte[Random.Shared.Next(64, 4096)];
                var source = (float[])expected.Clone();
                backend.Upload(source, tensor);
                _ = new byte[Random.Shared.Next(64, 4096)];
                var read = new float[Length];
                backend.Download(tensor, read);
                if (!read.AsSpan().SequenceEqual(expected))
                {
                    bad++;
                    first ??= $"round {rounds}: read [{string.Join(", ", read.Take(4))}, …]";
                }
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }

        Assert.True(bad == 0, $"{bad} of {rounds} upload/download round trips came back wrong; first: {first}");
    }
}
