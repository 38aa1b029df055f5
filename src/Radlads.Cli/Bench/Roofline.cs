using System.Diagnostics;
using Radlads.Checkpoints;
using Radlads.Cuda;
using Radlads.Ops;

namespace Radlads.Cli.Bench;

/// <summary>
/// The two ceilings every figure is compared with, measured on the same device in the same run: the device-to-device
/// copy bandwidth (bytes read + written per second) and the rate of this runtime's own bf16-weight GEMM op
/// (<see cref="IOps.MatMul"/>, fp32 activations). The GEMM rate is ours, not the card's peak: with no cuBLAS, the
/// PyTorch peers' roofline rows give the vendor-library rate of the same card beside it.
/// </summary>
internal static class Roofline
{
    /// <summary>(bytes per second, bytes copied) of a large copy, median of several.</summary>
    public static (double BytesPerSecond, long Bytes) CopyBandwidth(IBackend backend, bool quick)
    {
        if (backend is CudaBackend cuda)
        {
            long bytes = (quick ? 256L : 1024L) << 20;
            return (CudaBenchmarks.CopyBandwidth(cuda, bytes, 20).BytesPerSecond, bytes);
        }

        int floats = (backend.Name == "cpu" ? 16 : 64) << 20;
        using var source = backend.Allocate(floats);
        using var destination = backend.AllocateUninitialized(floats);
        backend.Copy(source, destination);
        double seconds = Median(5, () =>
        {
            backend.Copy(source, destination);
            Sync(backend, destination);
        });
        return (2.0 * floats * sizeof(float) / seconds, (long)floats * sizeof(float));
    }

    /// <summary>(FLOP per second, m, n, k) of y[m, n] = x[m, k]·W[n, k]ᵀ with bf16 W, median of several.</summary>
    public static unsafe (double FlopsPerSecond, int M, int N, int K) GemmRate(IBackend backend, bool quick)
    {
        (int m, int n, int k) = backend.Name == "cpu" ? (64, 1024, 1024) : quick ? (1024, 4096, 4096) : (2048, 4096, 4096);
        var host = new ushort[(long)n * k];
        var random = new Random(5);
        for (int i = 0; i < host.Length; i++)
        {
            host[i] = Bf16.FromSingle((random.NextSingle() - 0.5f) * 0.1f);
        }

        Tensor weight;
        fixed (ushort* p = host)
        {
            weight = backend.LoadWeight(new TensorData("gemm.weight", DType.BF16, [n, k], (byte*)p, 2L * n * k));
        }

        using (weight)
        {
            var values = new float[(long)m * k];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = (random.NextSingle() * 2) - 1;
            }

            using var x = backend.FromFloats(values, m, k);
            using var y = backend.AllocateUninitialized(m, n);
            double seconds = backend is CudaBackend cuda
                ? CudaBenchmarks.Time(cuda, () => cuda.Ops.MatMul(x, weight, null, y), 2, 10) / 1000
                : Median(5, () =>
                {
                    backend.Ops.MatMul(x, weight, null, y);
                    Sync(backend, y);
                });
            return (2.0 * m * n * k / seconds, m, n, k);
        }
    }

    /// <summary>Waits for queued work by reading one value of <paramref name="tensor"/> back.</summary>
    internal static void Sync(IBackend backend, Tensor tensor)
    {
        using var row = tensor.Rows(0, 1);
        var one = new float[row.ElementCount];
        backend.Download(row, one);
    }

    private static double Median(int repeats, Action work)
    {
        work();
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            work();
            times[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        Array.Sort(times);
        return times[repeats / 2];
    }
}
