namespace Radlads.Checkpoints;

/// <summary>
/// One tensor's raw little-endian bytes inside a memory-mapped safetensors file.
/// Valid only while the <see cref="Checkpoint"/> that produced it is alive.
/// </summary>
public readonly unsafe struct TensorData
{
    public TensorData(string name, DType dtype, int[] shape, byte* pointer, long byteLength)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        Pointer = pointer;
        ByteLength = byteLength;
    }

    public string Name { get; }

    public DType DType { get; }

    /// <summary>Row-major shape as stored, e.g. [out, in] for a Linear weight.</summary>
    public int[] Shape { get; }

    public byte* Pointer { get; }

    public long ByteLength { get; }

    public long ElementCount => ByteLength / DType.Size();

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
