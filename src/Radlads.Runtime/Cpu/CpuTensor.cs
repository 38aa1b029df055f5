using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Cpu;

/// <summary>
/// CPU memory: either a managed fp32 array (activations, state) or a pointer into memory the tensor does not
/// own (a memory-mapped checkpoint), of any supported dtype.
/// </summary>
public sealed unsafe class CpuTensor : Tensor
{
    private readonly float[]? array;
    private readonly long arrayOffset;
    private readonly byte* pointer;

    internal CpuTensor(float[] array, long offset, int[] shape)
        : base(DType.F32, shape)
    {
        this.array = array;
        arrayOffset = offset;
    }

    internal CpuTensor(byte* pointer, DType dtype, int[] shape)
        : base(dtype, shape)
    {
        this.pointer = pointer;
    }

    /// <summary>The fp32 elements. Throws for bf16/f16 weights, which are read through <see cref="ReadRange"/>.</summary>
    public Span<float> Floats
    {
        get
        {
            if (DType != DType.F32)
            {
                throw new InvalidOperationException($"tensor is {DType}, not F32");
            }

            return array is not null
                ? array.AsSpan(checked((int)arrayOffset), checked((int)ElementCount))
                : new Span<float>(pointer, checked((int)ElementCount));
        }
    }

    /// <summary>Row <paramref name="row"/> as fp32, converting on the fly (bf16 is kept as ushort bits).</summary>
    public void ReadRow(int row, Span<float> destination) => ReadRange((long)row * RowLength, destination);

    /// <summary>Elements [start, start + destination.Length) as fp32.</summary>
    public void ReadRange(long start, Span<float> destination)
    {
        // A pointer-backed tensor (a weight viewed in place) has no span to catch a read past its end: refuse it here,
        // so that a bad index is an exception naming the range rather than an access violation (NOTES: a rare one was
        // seen in this method and not explained).
        if (start < 0 || start + destination.Length > ElementCount)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"elements [{start}, {start + destination.Length}) of a {ShapeText} {DType} tensor");
        }

        if (array is not null)
        {
            array.AsSpan(checked((int)(arrayOffset + start)), destination.Length).CopyTo(destination);
            return;
        }

        switch (DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>((float*)pointer + start, destination.Length).CopyTo(destination);
                break;
            case DType.BF16:
                Bf16.ToSingle(new ReadOnlySpan<ushort>((ushort*)pointer + start, destination.Length), destination);
                break;
            case DType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(
                    new ReadOnlySpan<Half>((Half*)pointer + start, destination.Length), destination);
                break;
            default:
                throw new InvalidOperationException($"unsupported dtype {DType}");
        }
    }

    /// <summary>True when the elements can be used directly as fp32 without a conversion.</summary>
    public bool IsFloat32 => DType == DType.F32;

    /// <summary>Elements [start, start + count) of an fp32 tensor, without copying.</summary>
    public ReadOnlySpan<float> Float32Range(long start, int count) =>
        array is not null
            ? array.AsSpan(checked((int)(arrayOffset + start)), count)
            : new ReadOnlySpan<float>((float*)pointer + start, count);

    /// <summary>Managed arrays are their own space; memory behind a pointer shares one (the process's addresses).</summary>
    protected override (object Space, long Start, long End) Extent
    {
        get
        {
            long bytes = ElementCount * DType.Size();
            if (array is not null)
            {
                return (array, arrayOffset * sizeof(float), (arrayOffset * sizeof(float)) + bytes);
            }

            return (NativeSpace, (long)pointer, (long)pointer + bytes);
        }
    }

    private static readonly object NativeSpace = new();

    public override Tensor Rows(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > RowCount)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) of {ShapeText}");
        }

        var shape = (int[])Shape.Clone();
        if (shape.Length == 0)
        {
            throw new InvalidOperationException("a 0-rank tensor has no rows");
        }

        shape[0] = count;
        long elementOffset = (long)start * RowLength;
        return array is not null
            ? new CpuTensor(array, arrayOffset + elementOffset, shape)
            : new CpuTensor(pointer + (elementOffset * DType.Size()), DType, shape);
    }
}
