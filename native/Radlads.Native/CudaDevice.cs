using System.Collections.Concurrent;

namespace Radlads.Native;

/// <summary>
/// One GPU and its primary context, retained once per process and kept until the process ends (creating and
/// destroying a context per backend would cost tens of milliseconds each and unload every module).
/// Every thread that calls the driver for this device first calls <see cref="MakeCurrent"/>.
/// </summary>
public sealed class CudaDevice
{
    private static readonly ConcurrentDictionary<int, Lazy<CudaDevice>> Devices = new();

    private long liveBytes;
    private long peakBytes;

    private CudaDevice(int ordinal)
    {
        var driver = CudaDriver.Instance;
        if (driver.DeviceCount == 0)
        {
            throw new CudaUnavailableException($"the CUDA driver ({driver.LibraryName}, CUDA {driver.DriverVersionText}) found no GPU");
        }

        if (ordinal < 0 || ordinal >= driver.DeviceCount)
        {
            throw new CudaUnavailableException($"CUDA device {ordinal} does not exist: the driver sees {driver.DeviceCount} device(s)");
        }

        Driver = driver;
        Ordinal = ordinal;
        Handle = driver.Device(ordinal);
        Name = driver.DeviceName(Handle);
        ComputeMajor = driver.GetAttribute(Handle, DeviceAttribute.ComputeCapabilityMajor);
        ComputeMinor = driver.GetAttribute(Handle, DeviceAttribute.ComputeCapabilityMinor);
        MultiprocessorCount = driver.GetAttribute(Handle, DeviceAttribute.MultiprocessorCount);
        MaxSharedMemoryPerBlockOptin = driver.GetAttribute(Handle, DeviceAttribute.MaxSharedMemoryPerBlockOptin);
        L2CacheBytes = driver.GetAttribute(Handle, DeviceAttribute.L2CacheSize);
        TotalMemory = driver.TotalMemory(Handle);
        Context = driver.PrimaryContextRetain(Handle);
    }

    /// <summary>The device with this ordinal; the same object for the whole process. Failures are cached too.</summary>
    public static CudaDevice Get(int ordinal) =>
        Devices.GetOrAdd(ordinal, o => new Lazy<CudaDevice>(() => new CudaDevice(o), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    public CudaDriver Driver { get; }

    public int Ordinal { get; }

    /// <summary>The CUdevice handle.</summary>
    public int Handle { get; }

    public string Name { get; }

    public int ComputeMajor { get; }

    public int ComputeMinor { get; }

    /// <summary>10·major + minor, e.g. 90 for Hopper.</summary>
    public int ComputeCapability => (10 * ComputeMajor) + ComputeMinor;

    public int MultiprocessorCount { get; }

    /// <summary>Shared memory a block may have after cuFuncSetAttribute raises its dynamic limit.</summary>
    public int MaxSharedMemoryPerBlockOptin { get; }

    public long TotalMemory { get; }

    /// <summary>Bytes of L2 cache (CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE): how much a weight prefetch may bring in ahead of its reader.</summary>
    public int L2CacheBytes { get; }

    /// <summary>The retained primary context (CUcontext).</summary>
    public nint Context { get; }

    /// <summary>Bytes of device memory this process holds through <see cref="DeviceMemory"/> on this device.</summary>
    public long LiveBytes => Interlocked.Read(ref liveBytes);

    /// <summary>Binds the primary context to the calling thread (a cheap thread-local set in the driver).</summary>
    public void MakeCurrent() => Driver.SetCurrentContext(Context);

    /// <summary>Free and total bytes on the device as the driver reports them (cuMemGetInfo).</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        return Driver.MemoryInfo();
    }

    /// <summary>The largest <see cref="LiveBytes"/> since the process started or <see cref="ResetPeakBytes"/>.</summary>
    public long PeakBytes => Interlocked.Read(ref peakBytes);

    /// <summary>Starts a new high-water mark at the bytes held now.</summary>
    public void ResetPeakBytes() => Interlocked.Exchange(ref peakBytes, LiveBytes);

    internal void Count(long bytes)
    {
        long live = Interlocked.Add(ref liveBytes, bytes);
        long peak;
        while (live > (peak = Interlocked.Read(ref peakBytes)) && Interlocked.CompareExchange(ref peakBytes, live, peak) != peak)
        {
        }
    }
}
