using System.Runtime.InteropServices;

namespace Radlads.Native;

/// <summary>
/// An allocation from cuMemAlloc, owned like a file handle: <see cref="SafeHandle.Dispose()"/> frees it at once
/// (cuMemFree), and a finaliser frees it if nobody did. Callers that queued work on a stream synchronise that
/// stream before disposing.
/// </summary>
public sealed class DeviceMemory : SafeHandle
{
    public DeviceMemory(CudaDevice device, long bytes)
        : base(0, ownsHandle: true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Device = device;
        device.MakeCurrent();
        SetHandle((nint)device.Driver.Allocate(bytes));
        Bytes = bytes;
        device.Count(bytes);
    }

    public CudaDevice Device { get; }

    public long Bytes { get; }

    /// <summary>The CUdeviceptr.</summary>
    public ulong Pointer => (ulong)handle;

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        // Runs on the disposing thread or the finaliser thread: bind the context first. Never throws.
        Device.Driver.TrySetCurrentContext(Device.Context);
        int result = Device.Driver.Free((ulong)handle);
        Device.Count(-Bytes);
        return result == 0;
    }
}

/// <summary>A CUDA stream (CU_STREAM_NON_BLOCKING), destroyed on dispose.</summary>
public sealed class CudaStream : SafeHandle
{
    /// <summary><paramref name="highPriority"/>: its blocks are dispatched before the default streams' (CudaDriver.CreateHighPriorityStream).</summary>
    public CudaStream(CudaDevice device, bool highPriority = false)
        : base(0, ownsHandle: true)
    {
        Device = device;
        device.MakeCurrent();
        SetHandle(highPriority ? device.Driver.CreateHighPriorityStream() : device.Driver.CreateStream());
    }

    public CudaDevice Device { get; }

    public nint Handle => handle;

    public override bool IsInvalid => handle == 0;

    public void Synchronize() => Device.Driver.SynchronizeStream(handle);

    protected override bool ReleaseHandle()
    {
        Device.Driver.TrySetCurrentContext(Device.Context);
        return Device.Driver.DestroyStream(handle) == 0;
    }
}

/// <summary>A CUDA event for ordering and timing, destroyed on dispose.</summary>
public sealed class CudaEvent : SafeHandle
{
    /// <summary><paramref name="timing"/> false: an event for ordering only (CU_EVENT_DISABLE_TIMING).</summary>
    public CudaEvent(CudaDevice device, bool timing = true)
        : base(0, ownsHandle: true)
    {
        Device = device;
        device.MakeCurrent();
        SetHandle(device.Driver.CreateEvent(timing));
    }

    public nint Handle => handle;

    public CudaDevice Device { get; }

    public override bool IsInvalid => handle == 0;

    public void Record(CudaStream stream) => Device.Driver.RecordEvent(handle, stream.Handle);

    public void Synchronize() => Device.Driver.SynchronizeEvent(handle);

    /// <summary>Milliseconds from <paramref name="start"/> to this event (both recorded and complete).</summary>
    public float MillisecondsSince(CudaEvent start) => Device.Driver.ElapsedMilliseconds(start.handle, handle);

    protected override bool ReleaseHandle()
    {
        Device.Driver.TrySetCurrentContext(Device.Context);
        return Device.Driver.DestroyEvent(handle) == 0;
    }
}

/// <summary>Page-locked host memory (cuMemAllocHost), freed on dispose.</summary>
public sealed unsafe class PinnedMemory : SafeHandle
{
    public PinnedMemory(CudaDevice device, long bytes)
        : base(0, ownsHandle: true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Device = device;
        device.MakeCurrent();
        SetHandle((nint)device.Driver.AllocateHost(bytes));
        Bytes = bytes;
    }

    public CudaDevice Device { get; }

    public long Bytes { get; }

    public void* Pointer => (void*)handle;

    /// <summary>The address kernels reach this memory at (<see cref="CudaDriver.HostDevicePointer"/>).</summary>
    public ulong DevicePointer => Device.Driver.HostDevicePointer((void*)handle);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        Device.Driver.TrySetCurrentContext(Device.Context);
        return Device.Driver.FreeHost((void*)handle) == 0;
    }
}

/// <summary>An instantiated CUDA graph (CUgraphExec), destroyed on dispose.</summary>
public sealed class CudaGraphExec : SafeHandle
{
    /// <summary>Instantiates <paramref name="graph"/> and destroys it (the executable graph does not need it).</summary>
    public CudaGraphExec(CudaDevice device, nint graph)
        : base(0, ownsHandle: true)
    {
        Device = device;
        device.MakeCurrent();
        try
        {
            SetHandle(device.Driver.InstantiateGraph(graph));
        }
        finally
        {
            device.Driver.DestroyGraph(graph);
        }
    }

    public CudaDevice Device { get; }

    public override bool IsInvalid => handle == 0;

    /// <summary>Queues one replay of the graph on <paramref name="stream"/>.</summary>
    public void Launch(CudaStream stream) => Device.Driver.LaunchGraph(handle, stream.Handle);

    protected override bool ReleaseHandle()
    {
        Device.Driver.TrySetCurrentContext(Device.Context);
        return Device.Driver.DestroyGraphExec(handle) == 0;
    }
}
