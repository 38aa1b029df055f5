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
