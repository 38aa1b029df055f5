using System.Buffers.Binary;
using Radlads.IO;

namespace Radlads.Checkpoints;

/// <summary>
/// One safetensors file, memory-mapped read-only and validated when opened. The mapping lives until
/// <see cref="Dispose"/>; the <see cref="TensorData"/> pointers it hands out are valid until then.
/// </summary>
internal sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MappedFile mapped;
    private readonly SafetensorsHeader header;
    private byte* data;

    private SafetensorsFile(string path, MappedFile mapped, SafetensorsHeader header, byte* data)
    {
        Path = path;
        this.mapped = mapped;
        this.header = header;
        this.data = data;
    }

    public string Path { get; }

    public IReadOnlyDictionary<string, SafetensorsTensorInfo> Tensors => header.Tensors;

    public IReadOnlyDictionary<string, string> Metadata => header.Metadata;

    /// <summary>Opens, maps and validates <paramref name="path"/>; every problem is a <see cref="RadladsException"/> naming it.</summary>
    public static SafetensorsFile Open(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        var stream = MappedFile.OpenRead(path);
        long fileLength = stream.Length;
        if (fileLength < sizeof(ulong))
        {
            stream.Dispose();
            throw new RadladsException(
                $"{path}: file is {fileLength} bytes, too short for the 8-byte header length (truncated?)");
        }

        var mapped = MappedFile.Map(stream, path);
        try
        {
            byte* start = mapped.Pointer;
            var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(start, sizeof(ulong)));
            if (headerLength > SafetensorsHeader.MaxLength)
            {
                throw new RadladsException(
                    $"{path}: header length {headerLength} bytes is over the {SafetensorsHeader.MaxLength}-byte limit (not a safetensors file?)");
            }

            var dataOffset = sizeof(ulong) + (long)headerLength;
            if (dataOffset > fileLength)
            {
                throw new RadladsException(
                    $"{path}: header length {headerLength} bytes runs past the end of the file ({fileLength} bytes; truncated?)");
            }

            var json = new ReadOnlySpan<byte>(start + sizeof(ulong), (int)headerLength);
            var header = SafetensorsHeader.Parse(path, json, fileLength - dataOffset);
            return new SafetensorsFile(path, mapped, header, start + dataOffset);
        }
        catch
        {
            mapped.Dispose();
            throw;
        }
    }

    /// <summary>The bytes of <paramref name="info"/>, one of this file's <see cref="Tensors"/>, as <paramref name="dtype"/>.</summary>
    public TensorData GetData(SafetensorsTensorInfo info, DType dtype)
    {
        ObjectDisposedException.ThrowIf(data == null, this);
        return new TensorData(info.Name, dtype, (int[])info.Shape.Clone(), data + info.Begin, info.ByteLength);
    }

    public void Dispose()
    {
        if (data == null)
        {
            return;
        }

        data = null;
        mapped.Dispose();
    }
}
