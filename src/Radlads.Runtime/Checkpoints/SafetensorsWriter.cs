using System.Buffers.Binary;

namespace Radlads.Checkpoints;

/// <summary>One tensor to write: raw little-endian bytes of <see cref="DType"/> in row-major order.</summary>
public sealed record TensorToWrite(string Name, DType DType, int[] Shape, byte[] Data);

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
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var ordered = Order(Validate(tensors));
        var header = SafetensorsHeaderWriter.Build(ordered, metadata);

        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"{full} has no parent folder", nameof(path));
        var temporary = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                Span<byte> length = stackalloc byte[sizeof(ulong)];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (var tensor in ordered)
                {
                    stream.Write(tensor.Data);
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

    private static List<TensorToWrite> Validate(IEnumerable<TensorToWrite> tensors)
    {
        var list = new List<TensorToWrite>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            ArgumentNullException.ThrowIfNull(tensor);
            ArgumentNullException.ThrowIfNull(tensor.Name, nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor.Shape, nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor.Data, nameof(tensors));
            if (tensor.Name == "__metadata__")
            {
                throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor", nameof(tensors));
            }

            if (!seen.Add(tensor.Name))
            {
                throw new ArgumentException($"tensor '{tensor.Name}' is given twice", nameof(tensors));
            }

            var count = Shapes.ElementCount(tensor.Shape);
            var shape = Shapes.Format(tensor.Shape);
            if (count is null)
            {
                throw new ArgumentException($"tensor '{tensor.Name}' has invalid shape {shape}", nameof(tensors));
            }

            var expected = count.Value * tensor.DType.Size();
            if (expected != tensor.Data.LongLength)
            {
                throw new ArgumentException(
                    $"tensor '{tensor.Name}' has {tensor.Data.LongLength} bytes, expected {expected} for shape {shape} of {tensor.DType}",
                    nameof(tensors));
            }

            list.Add(tensor);
        }

        return list;
    }

    /// <summary>The Hugging Face order: descending dtype (F32, BF16, F16 in its enum order), then name by UTF-8 bytes.</summary>
    private static List<TensorToWrite> Order(List<TensorToWrite> tensors) =>
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
