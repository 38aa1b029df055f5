using System.Buffers.Binary;

namespace Radlads.Checkpoints;

/// <summary>One tensor to write: raw little-endian bytes of <see cref="DType"/> in row-major order.</summary>
public sealed record TensorToWrite(string Name, DType DType, int[] Shape, byte[] Data);

/// <summary>
/// One tensor whose bytes a callback writes while the file is being written, so that a checkpoint larger than
/// memory can be written: <paramref name="WriteData"/> must write exactly <see cref="ByteLength"/> bytes
/// (raw little-endian <paramref name="DType"/>, row-major) to the stream it is given.
/// </summary>
public sealed record TensorSource(string Name, DType DType, int[] Shape, Action<Stream> WriteData)
{
    /// <summary>Element count × dtype size; −1 when the shape is invalid (the writer rejects it).</summary>
    public long ByteLength => Shapes.ElementCount(Shape) is long count && count <= long.MaxValue / DType.Size() ? count * DType.Size() : -1;
}

/// <summary>Writes safetensors files exactly as the Hugging Face library does (8-byte header length, JSON, data).</summary>
public static class SafetensorsWriter
{
    /// <summary>
    /// Writes atomically (temporary file + rename). As the Hugging Face library does, tensors are laid out by
    /// descending dtype width then by name, <c>__metadata__</c> comes first, the JSON is compact and padded
    /// with spaces to a multiple of 8 bytes. Metadata keys are written in ordinal order.
    /// </summary>
    public static void Write(string path, IEnumerable<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var sources = new List<TensorSource>();
        foreach (var tensor in tensors)
        {
            ArgumentNullException.ThrowIfNull(tensor);
            ArgumentNullException.ThrowIfNull(tensor.Name, nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor.Shape, nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor.Data, nameof(tensors));
            var source = new TensorSource(tensor.Name, tensor.DType, tensor.Shape, stream => stream.Write(tensor.Data));
            if (source.ByteLength >= 0 && source.ByteLength != tensor.Data.LongLength)
            {
                throw new ArgumentException(
                    $"tensor '{tensor.Name}' has {tensor.Data.LongLength} bytes, expected {source.ByteLength} for shape {Shapes.Format(tensor.Shape)} of {tensor.DType}",
                    nameof(tensors));
            }

            sources.Add(source);
        }

        Write(path, sources, metadata);
    }

    /// <summary>
    /// Writes atomically, in the layout of <see cref="Write(string, IEnumerable{TensorToWrite}, IReadOnlyDictionary{string, string}?)"/>,
    /// asking each tensor for its bytes in file order (which is not the order given). <paramref name="written"/>, when
    /// given, is called after each tensor with the number written so far. If a callback throws or writes the wrong number
    /// of bytes, the temporary file is deleted and nothing replaces <paramref name="path"/>.
    /// </summary>
    public static void Write(
        string path, IEnumerable<TensorSource> tensors, IReadOnlyDictionary<string, string>? metadata, Action<int>? written = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var ordered = Order(Validate(tensors));
        var header = SafetensorsHeaderWriter.Build(ordered, metadata);

        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"{full} has no parent folder", nameof(path));
        var temporary = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[sizeof(ulong)];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                for (var i = 0; i < ordered.Count; i++)
                {
                    var tensor = ordered[i];
                    var start = stream.Position;
                    tensor.WriteData(stream);
                    var count = stream.Position - start;
                    if (count != tensor.ByteLength)
                    {
                        throw new InvalidOperationException(
                            $"the data callback of tensor '{tensor.Name}' wrote {count} bytes, expected {tensor.ByteLength}");
                    }

                    written?.Invoke(i + 1);
                }

                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original error matters more than a leftover temporary file.
        }
    }

    private static List<TensorSource> Validate(IEnumerable<TensorSource> tensors)
    {
        var list = new List<TensorSource>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            ArgumentNullException.ThrowIfNull(tensor);
            ArgumentNullException.ThrowIfNull(tensor.Name, nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor.Shape, nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor.WriteData, nameof(tensors));
            if (tensor.Name == "__metadata__")
            {
                throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor", nameof(tensors));
            }

            if (!seen.Add(tensor.Name))
            {
                throw new ArgumentException($"tensor '{tensor.Name}' is given twice", nameof(tensors));
            }

            if (tensor.ByteLength < 0)
            {
                throw new ArgumentException($"tensor '{tensor.Name}' has invalid shape {Shapes.Format(tensor.Shape)}", nameof(tensors));
            }

            list.Add(tensor);
        }

        return list;
    }

    /// <summary>The Hugging Face order: descending dtype (F32, BF16, F16 in its enum order), then name by UTF-8 bytes.</summary>
    private static List<TensorSource> Order(List<TensorSource> tensors) =>
        [.. tensors
            .Select(tensor => (Tensor: tensor, Utf8Name: SafetensorsHeaderWriter.Utf8.GetBytes(tensor.Name)))
            .OrderByDescending(pair => Rank(pair.Tensor.DType))
            .ThenBy(pair => pair.Utf8Name, Utf8Order.Instance)
            .Select(pair => pair.Tensor)];

    /// <summary>Position in the Hugging Face dtype enum, which is ordered by alignment.</summary>
    private static int Rank(DType dtype) => dtype switch
    {
        DType.F16 => 0,
        DType.BF16 => 1,
        DType.F32 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };
}
