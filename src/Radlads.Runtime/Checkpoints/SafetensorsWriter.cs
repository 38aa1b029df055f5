namespace Radlads.Checkpoints;

/// <summary>One tensor to write: raw little-endian bytes of <see cref="DType"/> in row-major order.</summary>
public sealed record TensorToWrite(string Name, DType DType, int[] Shape, byte[] Data);

/// <summary>Writes safetensors files exactly as the Hugging Face library does (8-byte header length, JSON, data).</summary>
public static class SafetensorsWriter
{
    /// <summary>Writes atomically (temporary file + rename).</summary>
    public static void Write(string path, IEnumerable<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        => throw new NotImplementedException();
}
