namespace Radlads.Checkpoints;

/// <summary>
/// One validated header entry: <paramref name="Begin"/> and <paramref name="End"/> are byte offsets into the
/// data buffer (the bytes after the header), already checked to lie inside it and to match shape and dtype.
/// </summary>
internal sealed record SafetensorsTensorInfo(string Name, string DTypeName, int[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;

    public string ShapeText => Shapes.Format(Shape);

    public string OffsetsText => $"[{Begin}, {End}]";
}
