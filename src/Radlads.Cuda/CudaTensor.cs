using Radlads.Checkpoints;
using Radlads.Native;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// Device memory with a shape: an allocation it owns, or a view (<see cref="Rows"/>) of another tensor's memory.
/// Disposing an owner of a block from the backend's cache gives the block back to the cache (no wait: later work
/// on the same stream runs after the work that used it); disposing the owner of its own allocation (weights) waits
/// for the backend's stream and frees the memory at once; disposing a view does nothing.
/// </summary>
public sealed class CudaTensor : Tensor
{
    private readonly DeviceMemory memory;
    private readonly long byteOffset;
    private readonly bool owner;
    private readonly bool cached;
    private bool disposed;

    internal CudaTensor(CudaBackend backend, DeviceMemory memory, long byteOffset, DType dtype, int[] shape, bool owner, bool cached = false)
        : base(dtype, shape)
    {
        Backend = backend;
        this.memory = memory;
        this.byteOffset = byteOffset;
        this.owner = owner;
        this.cached = cached;
    }

    public CudaBackend Backend { get; }

    /// <summary>The CUdeviceptr of the first element.</summary>
    public ulong Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed || memory.IsClosed, this);
            return memory.Pointer + (ulong)byteOffset;
        }
    }

    public long ByteLength => ElementCount * DType.Size();

    /// <summary>Device addresses are unique within the backend's context.</summary>
    protected override (object Space, long Start, long End) Extent
    {
        get
        {
            long start = (long)Pointer;
            return (Backend, start, start + ByteLength);
        }
    }

    public override Tensor Rows(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > RowCount)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) of {ShapeText}");
        }

        if (Shape.Length == 0)
        {
            throw new InvalidOperationException("a 0-rank tensor has no rows");
        }

        var shape = (int[])Shape.Clone();
        shape[0] = count;
        return new CudaTensor(Backend, memory, byteOffset + ((long)start * RowLength * DType.Size()), DType, shape, owner: false);
    }

    protected override void Dispose(bool disposing)
    {
        if (!disposing || !owner || disposed || memory.IsClosed)
        {
            return;
        }

        disposed = true;
        if (cached)
        {
            Backend.Return(memory);
        }
        else
        {
            // Work queued on the stream may still read or write this memory.
            Backend.SynchronizeBeforeFree();
            memory.Dispose();
        }
    }
}
