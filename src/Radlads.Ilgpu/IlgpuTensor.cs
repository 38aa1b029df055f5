using ILGPU;
using ILGPU.Runtime;
using Radlads.Checkpoints;
using Radlads.Ilgpu.Kernels;
using Radlads.Ops;

namespace Radlads.Ilgpu;

/// <summary>
/// Accelerator memory with a shape: an ILGPU byte buffer it owns, or a view (<see cref="Rows"/>) of another tensor's
/// buffer. Kernels see it as fp32 (<see cref="Floats"/>) or, for bf16/f16 weights, as 16-bit words.
/// Disposing the owner returns a cached block to the backend (no wait) or waits for the backend's stream and frees its own
/// buffer; disposing a view does nothing.
/// </summary>
public sealed class IlgpuTensor : Tensor
{
    private readonly MemoryBuffer1D<byte, Stride1D.Dense> buffer;
    private readonly ArrayView<byte> bytes;
    private readonly bool owner;
    private readonly bool cached;
    private readonly long offset;
    private bool disposed;

    internal IlgpuTensor(IlgpuBackend backend, MemoryBuffer1D<byte, Stride1D.Dense> buffer, ArrayView<byte> bytes, DType dtype, int[] shape, bool owner,
        bool cached = false, long offset = 0)
        : base(dtype, shape)
    {
        this.offset = offset;
        Backend = backend;
        this.buffer = buffer;
        this.bytes = bytes;
        this.owner = owner;
        this.cached = cached;
    }

    public IlgpuBackend Backend { get; }

    public long ByteLength => ElementCount * DType.Size();

    /// <summary>Views of one buffer share its space; separate buffers never overlap.</summary>
    protected override (object Space, long Start, long End) Extent => (buffer, offset, offset + ByteLength);

    /// <summary>The tensor's bytes on the accelerator.</summary>
    public ArrayView<byte> Bytes
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed || buffer.IsDisposed, this);
            return bytes;
        }
    }

    /// <summary>The address of the first byte (device or host, per accelerator), for alignment checks.</summary>
    internal long Address => buffer.NativePtr.ToInt64() + offset;

    /// <summary>The elements of an fp32 tensor.</summary>
    public ArrayView<float> Floats
    {
        get
        {
            if (DType != DType.F32)
            {
                throw new InvalidOperationException($"tensor {ShapeText} is {DType}, not F32");
            }

            return Bytes.Cast<float>();
        }
    }

    /// <summary>The tensor as a kernel parameter of its stored dtype.</summary>
    internal WeightView Weight(IlgpuDevice device) => DType == DType.F32
        ? new WeightView { F = Floats, H = device.DummyHalves.View, DType = (int)DType }
        : new WeightView { F = device.DummyFloats.View, H = Bytes.Cast<ushort>(), DType = (int)DType };

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
        long size = (long)RowLength * DType.Size();
        return new IlgpuTensor(Backend, buffer, Bytes.SubView(start * size, count * size), DType, shape, owner: false, offset: offset + (start * size));
    }

    protected override void Dispose(bool disposing)
    {
        if (!disposing || !owner || disposed)
        {
            return;
        }

        if (cached)
        {
            // Back to the backend's cache: its next user is queued on the same stream, after every use of this one.
            disposed = true;
            Backend.Return(buffer);
            return;
        }

        if (!buffer.IsDisposed)
        {
            // Work queued on the stream may still read or write this memory (throws while a step is being recorded,
            // leaving the tensor alive).
            Backend.SynchronizeBeforeFree();
            buffer.Dispose();
        }

        disposed = true;
    }
}
