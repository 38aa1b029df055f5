using Radlads.Checkpoints;

namespace Radlads.Ops;

/// <summary>
/// A backend whose ops are timed by <see cref="ProfilingOps"/>; everything else passes through. An asynchronous
/// backend passes its stream wait as <paramref name="synchronize"/> so that each op is timed on the device.
/// </summary>
public sealed class ProfilingBackend(IBackend inner, Action? synchronize = null) : IBackend
{
    public ProfilingOps Profile { get; } = new(inner.Ops, synchronize);

    /// <summary>The backend being timed.</summary>
    public IBackend Inner => inner;

    public string Name => inner.Name;

    public string Description => inner.Description + " (profiled)";

    public IOps Ops => Profile;

    /// <summary>The inner backend's backward ops, timed into the same table (null when it has none).</summary>
    public IBackwardOps? BackwardOps => inner.BackwardOps is { } backward ? Profile.WithBackward(backward) : null;

    public Tensor Allocate(params int[] shape) => inner.Allocate(shape);

    public Tensor AllocateUninitialized(params int[] shape) => inner.AllocateUninitialized(shape);

    public Tensor LoadWeight(TensorData data) => inner.LoadWeight(data);

    public Tensor FromFloats(ReadOnlySpan<float> values, params int[] shape) => inner.FromFloats(values, shape);

    public void Upload(ReadOnlySpan<float> source, Tensor destination) => inner.Upload(source, destination);

    public void Download(Tensor source, Span<float> destination) => inner.Download(source, destination);

    public void Copy(Tensor source, Tensor destination) => inner.Copy(source, destination);

    public DeviceMemoryInfo? MemoryInfo() => inner.MemoryInfo();

    public void ResetPeakMemory() => inner.ResetPeakMemory();

    public void ReleaseCachedMemory() => inner.ReleaseCachedMemory();

    public void Dispose() => inner.Dispose();
}
