using Radlads.Checkpoints;

namespace Radlads.Ops;

/// <summary>
/// A block of backend memory with a row-major shape. Activations and recurrent state are fp32;
/// weights keep the dtype they were stored in (bf16, f16 or f32).
/// The first dimension is the row dimension: <see cref="Rows"/> views a contiguous range of it.
/// </summary>
public abstract class Tensor : IDisposable
{
    protected Tensor(DType dtype, int[] shape)
    {
        DType = dtype;
        Shape = shape;
        long count = 1;
        foreach (var d in shape)
        {
            count *= d;
        }

        ElementCount = count;
    }

    public DType DType { get; }

    public int[] Shape { get; }

    public long ElementCount { get; }

    /// <summary>Size of the first dimension.</summary>
    public int RowCount => Shape.Length == 0 ? 1 : Shape[0];

    /// <summary>Elements per row (product of every dimension but the first).</summary>
    public int RowLength => Shape.Length <= 1 ? 1 : checked((int)(ElementCount / Shape[0]));

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    /// <summary>A view of rows [start, start + count) that shares this tensor's memory.</summary>
    public abstract Tensor Rows(int start, int count);

    /// <summary>Whether the two tensors share at least one byte of memory (a tensor and its views, or views that overlap).</summary>
    public bool Overlaps(Tensor other)
    {
        var (space, start, end) = Extent;
        var (otherSpace, otherStart, otherEnd) = other.Extent;
        return ReferenceEquals(space, otherSpace) && start < otherEnd && otherStart < end;
    }

    /// <summary>
    /// Where the elements live, for <see cref="Overlaps"/>: an object naming an address space (an allocation, or a
    /// backend whose addresses are unique) and the byte range [Start, End) in it.
    /// </summary>
    protected abstract (object Space, long Start, long End) Extent { get; }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}
