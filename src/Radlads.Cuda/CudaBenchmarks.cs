using Radlads.Native;

namespace Radlads.Cuda;

/// <summary>Timings on the GPU for the benchmarks: CUDA events around work queued on a backend's stream.</summary>
public static class CudaBenchmarks
{
    /// <summary>
    /// A device-to-device copy of <paramref name="bytes"/> (cuMemcpyDtoDAsync between two buffers of non-zero
    /// values), timed <paramref name="repeats"/> times after two warm-ups: the median time and the bandwidth
    /// counted as bytes read plus bytes written per second.
    /// </summary>
    public static (double BytesPerSecond, double Milliseconds) CopyBandwidth(CudaBackend backend, long bytes, int repeats)
    {
        ArgumentNullException.ThrowIfNull(backend);
        bytes = bytes / 4 * 4;
        backend.Synchronize();
        using var source = new DeviceMemory(backend.Device, bytes);
        using var destination = new DeviceMemory(backend.Device, bytes);
        var driver = backend.Device.Driver;
        driver.SetAsync(source.Pointer, 0x3F9E0419u, bytes / 4, backend.Stream);
        driver.SetAsync(destination.Pointer, 0x40490FDBu, bytes / 4, backend.Stream);
        double ms = Time(backend, () => driver.CopyDeviceToDeviceAsync(destination.Pointer, source.Pointer, bytes, backend.Stream), 2, repeats);
        backend.Synchronize();
        return (2.0 * bytes / (ms / 1000), ms);
    }

    /// <summary>
    /// The bf16 GEMM rate of the device through cuBLASLt: y [T, M] (fp32) = x [T, K] (bf16) · Wᵀ (W [M, K] bf16), fp32
    /// accumulation, the call the prefill MatMuls make (without the fp32 → bf16 conversion of x), on random values,
    /// timed <paramref name="repeats"/> times after three warm-ups: the median and 2·T·K·M FLOPs over it. Null when the
    /// backend has no cuBLASLt or cuBLASLt has no kernel for the shape.
    /// </summary>
    public static unsafe (double FlopsPerSecond, double Milliseconds)? Bf16Gemm(CudaBackend backend, int t, int k, int m, int repeats)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (backend.Gemm is not { } gemm)
        {
            return null;
        }

        backend.Synchronize();
        using var x = RandomBf16(backend, (long)t * k, 11);
        using var w = RandomBf16(backend, (long)m * k, 12);
        using var y = new DeviceMemory(backend.Device, (long)t * m * sizeof(float));
        if (!gemm.Supports(w.Pointer, true, 0, y.Pointer, t, k, m))
        {
            return null;
        }

        double ms = Time(backend, () => gemm.MatMul(x.Pointer, w.Pointer, true, 0, y.Pointer, t, k, m, backend.Stream), 3, repeats);
        backend.Synchronize();
        return (2.0 * t * k * m / (ms / 1000), ms);
    }

    /// <summary><paramref name="count"/> bf16 values in [−0.5, 0.5): a random block of 1 Mi values, repeated.</summary>
    private static unsafe DeviceMemory RandomBf16(CudaBackend backend, long count, int seed)
    {
        var random = new Random(seed);
        var block = new ushort[Math.Min(count, 1L << 20)];
        for (int i = 0; i < block.Length; i++)
        {
            block[i] = Radlads.Checkpoints.Bf16.FromSingle(random.NextSingle() - 0.5f);
        }

        var memory = new DeviceMemory(backend.Device, count * 2);
        var driver = backend.Device.Driver;
        fixed (ushort* p = block)
        {
            driver.CopyHostToDeviceAsync(memory.Pointer, p, block.Length * 2L, backend.Stream);
            backend.Synchronize();
        }

        // Doubling copies fill the rest from what is already there.
        for (long done = block.Length; done < count; done *= 2)
        {
            long n = Math.Min(done, count - done);
            driver.CopyDeviceToDeviceAsync(memory.Pointer + (ulong)(done * 2), memory.Pointer, n * 2, backend.Stream);
        }

        return memory;
    }

    /// <summary>The median milliseconds of <paramref name="work"/> (which queues work on the backend's stream), by events.</summary>
    public static double Time(CudaBackend backend, Action work, int warmups, int repeats)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(work);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        backend.Device.MakeCurrent();
        using var start = new CudaEvent(backend.Device);
        using var end = new CudaEvent(backend.Device);
        for (int i = 0; i < warmups; i++)
        {
            work();
        }

        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            start.Record(backend.StreamObject);
            work();
            end.Record(backend.StreamObject);
            end.Synchronize();
            times[i] = end.MillisecondsSince(start);
        }

        Array.Sort(times);
        return times[repeats / 2];
    }
}
