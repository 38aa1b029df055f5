using System.Buffers.Binary;
using System.Text;

namespace Radlads.Data;

/// <summary>
/// The 64-byte header of a token file (format v1, little-endian); see <see cref="TokenFile"/> for the layout.
/// </summary>
internal readonly record struct TokenFileHeader(int BytesPerToken, long Count, int VocabularySize, int SeparatorId, long DocumentCount)
{
    /// <summary>Header size in bytes; the tokens start here.</summary>
    public const int Size = 64;

    /// <summary>The only version this build reads and writes.</summary>
    public const uint Version = 1;

    /// <summary>"RDLSTOK1" in ASCII.</summary>
    public static ReadOnlySpan<byte> Magic => "RDLSTOK1"u8;

    /// <summary>2 (uint16) when every id fits, i.e. vocabulary ≤ 65536; else 4 (uint32).</summary>
    public static int BytesPerTokenFor(int vocabularySize) => vocabularySize <= 65536 ? 2 : 4;

    public void WriteTo(Span<byte> destination)
    {
        destination[..Size].Clear();
        Magic.CopyTo(destination);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], (uint)BytesPerToken);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], (ulong)Count);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[24..], (uint)VocabularySize);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[28..], (uint)SeparatorId);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[32..], (ulong)DocumentCount);
    }

    /// <summary>Reads and checks a header against the length of the file it came from; every problem names <paramref name="path"/>.</summary>
    public static TokenFileHeader Parse(string path, ReadOnlySpan<byte> bytes, long fileLength)
    {
        if (fileLength < Size || bytes.Length < Size)
        {
            throw new RadladsException(
                $"{path}: file is {fileLength} bytes, shorter than the {Size}-byte token-file header (truncated, or not a token file)");
        }

        if (!bytes[..8].SequenceEqual(Magic))
        {
            throw new RadladsException($"{path}: not a Radlads token file (starts with {Describe(bytes[..8])}, expected \"RDLSTOK1\")");
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
        if (version != Version)
        {
            throw new RadladsException($"{path}: token-file version {version} is not supported (this build reads version {Version})");
        }

        uint bytesPerToken = BinaryPrimitives.ReadUInt32LittleEndian(bytes[12..]);
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]);
        uint vocabulary = BinaryPrimitives.ReadUInt32LittleEndian(bytes[24..]);
        uint separator = BinaryPrimitives.ReadUInt32LittleEndian(bytes[28..]);
        ulong documents = BinaryPrimitives.ReadUInt64LittleEndian(bytes[32..]);

        if (bytesPerToken is not (2 or 4))
        {
            throw new RadladsException($"{path}: {bytesPerToken} bytes per token is not supported (expected 2 or 4)");
        }

        if (vocabulary == 0 || vocabulary > int.MaxValue)
        {
            throw new RadladsException($"{path}: vocabulary size {vocabulary} is out of range (expected 1 to {int.MaxValue})");
        }

        if (bytesPerToken == 2 && vocabulary > 65536)
        {
            throw new RadladsException($"{path}: vocabulary size {vocabulary} does not fit 2-byte tokens (ids must be below 65536)");
        }

        if (separator >= vocabulary)
        {
            throw new RadladsException($"{path}: separator id {separator} is not below the vocabulary size {vocabulary}");
        }

        ulong available = (ulong)(fileLength - Size);
        if (count > available / bytesPerToken)
        {
            throw new RadladsException(
                $"{path}: header says {count} tokens ({bytesPerToken} bytes each) but the file holds {available} bytes after the header (truncated?)");
        }

        ulong extra = available - count * bytesPerToken;
        if (extra != 0)
        {
            throw new RadladsException($"{path}: {extra} bytes follow the {count} tokens the header announces (corrupt header?)");
        }

        if (documents > count)
        {
            throw new RadladsException($"{path}: header says {documents} documents but only {count} tokens (each document ends with a separator)");
        }

        return new TokenFileHeader((int)bytesPerToken, (long)count, (int)vocabulary, (int)separator, (long)documents);
    }

    private static string Describe(ReadOnlySpan<byte> magic)
    {
        foreach (byte b in magic)
        {
            if (b is < 0x20 or > 0x7E)
            {
                return "bytes " + Convert.ToHexString(magic);
            }
        }

        return $"\"{Encoding.ASCII.GetString(magic)}\"";
    }
}
