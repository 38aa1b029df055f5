using Radlads.Checkpoints;

namespace Radlads.Ops;

/// <summary>
/// A place where tensors live and ops run: the CPU reference, CUDA, ILGPU.
/// Model code allocates through it and calls <see cref="Ops"/>; it never touches device APIs.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>Short name used by --backend ("cpu", "cuda", "ilgpu").</summary>
    string Name { get; }

    /// <summary>One line describing the device, for logs and `radlads info`.</summary>
    string Description { get; }

    IOps Ops { get; }

    /// <summary>
    /// The hand-derived backward and training ops (issue #7), or null where this backend cannot train
    /// (the trainer then says which backends can).
    /// </summary>
    IBackwardOps? BackwardOps => null;

    /// <summary>A zero-filled fp32 tensor.</summary>
    Tensor Allocate(params int[] shape);

    /// <summary>
    /// An fp32 tensor whose contents are undefined: for outputs an op writes in full (scratch activations).
    /// A GPU backend skips the fill; the default zero-fills.
    /// </summary>
    Tensor AllocateUninitialized(params int[] shape) => Allocate(shape);

    /// <summary>A weight tensor with the stored dtype; may alias the checkpoint's memory (CPU) or copy it (GPU).</summary>
    Tensor LoadWeight(TensorData data);

    /// <summary>An fp32 tensor holding <paramref name="values"/> with the given shape.</summary>
    Tensor FromFloats(ReadOnlySpan<float> values, params int[] shape);

    /// <summary>Copies fp32 host values into an fp32 tensor of the same element count.</summary>
    void Upload(ReadOnlySpan<float> source, Tensor destination);

    /// <summary>Copies an fp32 tensor to the host.</summary>
    void Download(Tensor source, Span<float> destination);

    /// <summary>Copies one fp32 tensor into another of the same element count.</summary>
    void Copy(Tensor source, Tensor destination);

    /// <summary>
    /// Device memory as this backend accounts for it (for the benchmarks), or null where it has none to report
    /// (the CPU backend's tensors are ordinary process memory).
    /// </summary>
    DeviceMemoryInfo? MemoryInfo() => null;

    /// <summary>Starts a new high-water mark: <see cref="DeviceMemoryInfo.PeakAllocatedBytes"/> becomes the bytes allocated now.</summary>
    void ResetPeakMemory()
    {
    }

    /// <summary>Waits for queued work and gives cached free blocks back to the device (a no-op without a cache).</summary>
    void ReleaseCachedMemory()
    {
    }
}

/// <summary>
/// Device memory at one moment. <paramref name="AllocatedBytes"/> and <paramref name="PeakAllocatedBytes"/> count what
/// this process holds through its backends on the device (blocks kept in an allocation cache included);
/// <paramref name="FreeBytes"/> and <paramref name="TotalBytes"/> are the driver's figures for the whole device.
/// </summary>
public sealed record DeviceMemoryInfo(long AllocatedBytes, long PeakAllocatedBytes, long FreeBytes, long TotalBytes);
