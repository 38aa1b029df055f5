using System.Runtime.InteropServices;
using Radlads.IO;

namespace Radlads.Data;

/// <summary>
/// A token file, memory-mapped read-only: the tokenized training corpus that the trainer and the PyTorch teacher
/// script read (written by <see cref="TokenFileWriter"/>, e.g. through <c>radlads data tokenize</c>).
/// </summary>
/// <remarks>
/// <para>Format v1, every integer little-endian (also described in docs/token-file.md):</para>
/// <code>
/// offset  size  field
///      0     8  magic, ASCII "RDLSTOK1"
///      8     4  u32 version = 1
///     12     4  u32 bytes per token: 2 (uint16) when the vocabulary size ≤ 65536, else 4 (uint32)
///     16     8  u64 token count
///     24     4  u32 vocabulary size: every id is below it
///     28     4  u32 document separator id (&lt;|endoftext|&gt;), written after every document
///     32     8  u64 document count
///     40    24  zero padding (readers ignore it)
///     64     …  the tokens, count × bytes per token, nothing after them
/// </code>
/// <para><see cref="Open"/> checks the header and that the file length is exactly 64 + count × bytes per token.
/// Ids are checked as they are read by <see cref="CopyTo"/> and the indexer; the raw span accessors do not check,
/// and <see cref="Validate"/> scans the whole file. Every problem is a <see cref="RadladsException"/> naming the file.</para>
/// <para>The mapping lives until <see cref="Dispose"/>; reading from several threads at once is safe.</para>
/// </remarks>
public sealed unsafe class TokenFile : IDisposable
{
    private readonly MappedFile? _mapped;
    private readonly TokenFileHeader _header;
    private byte* _tokens;
    private bool _disposed;

    private TokenFile(string path, TokenFileHeader header, MappedFile? mapped, byte* tokens)
    {
        Path = path;
        _header = header;
        _mapped = mapped;
        _tokens = tokens;
    }

    /// <summary>Full path of the file.</summary>
    public string Path { get; }

    /// <summary>Number of tokens, separators included.</summary>
    public long Count => _header.Count;

    /// <summary>2 (uint16 tokens) or 4 (uint32 tokens).</summary>
    public int BytesPerToken => _header.BytesPerToken;

    /// <summary>Every id in the file is below this.</summary>
    public int VocabularySize => _header.VocabularySize;

    /// <summary>The id written after every document (&lt;|endoftext|&gt;).</summary>
    public int SeparatorId => _header.SeparatorId;

    /// <summary>Number of documents the file was written from.</summary>
    public long DocumentCount => _header.DocumentCount;

    /// <summary>Opens, maps and checks the header of <paramref name="path"/> (ids are not scanned: see <see cref="Validate"/>).</summary>
    public static TokenFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        path = System.IO.Path.GetFullPath(path);
        var stream = MappedFile.OpenRead(path);
        TokenFileHeader header;
        try
        {
            Span<byte> headerBytes = stackalloc byte[TokenFileHeader.Size];
            int read = stream.ReadAtLeast(headerBytes, TokenFileHeader.Size, throwOnEndOfStream: false);
            header = TokenFileHeader.Parse(path, headerBytes[..read], stream.Length);
        }
        catch
        {
            stream.Dispose();
            throw;
        }

        if (header.Count == 0)
        {
            stream.Dispose();
            return new TokenFile(path, header, null, null);
        }

        var mapped = MappedFile.Map(stream, path);
        return new TokenFile(path, header, mapped, mapped.Pointer + TokenFileHeader.Size);
    }

    /// <summary>The id at <paramref name="index"/>; an id not below <see cref="VocabularySize"/> is a <see cref="RadladsException"/>.</summary>
    public int this[long index]
    {
        get
        {
            CheckRange(index, 1);
            int id = _header.BytesPerToken == 2 ? ((ushort*)_tokens)[index] : (int)((uint*)_tokens)[index];
            if ((uint)id >= (uint)_header.VocabularySize)
            {
                throw OutOfRange(index, (uint)id);
            }

            return id;
        }
    }

    /// <summary>
    /// Copies the ids at <paramref name="start"/> … <paramref name="start"/> + destination.Length − 1, checking
    /// each is below <see cref="VocabularySize"/>.
    /// </summary>
    public void CopyTo(long start, Span<int> destination)
    {
        CheckRange(start, destination.Length);
        if (_header.BytesPerToken == 2)
        {
            var source = UInt16Tokens(start, destination.Length);
            for (int i = 0; i < source.Length; i++)
            {
                destination[i] = source[i];
            }
        }
        else
        {
            MemoryMarshal.Cast<uint, int>(UInt32Tokens(start, destination.Length)).CopyTo(destination);
        }

        // Negative values are uint32 ids ≥ 2^31: out of range too.
        int bad = destination.IndexOfAnyExceptInRange(0, _header.VocabularySize - 1);
        if (bad >= 0)
        {
            throw OutOfRange(start + bad, (uint)destination[bad]);
        }
    }

    /// <summary>The raw uint16 tokens of a 2-byte file, unchecked (valid until <see cref="Dispose"/>).</summary>
    public ReadOnlySpan<ushort> UInt16Tokens(long start, int length)
    {
        if (_header.BytesPerToken != 2)
        {
            throw new InvalidOperationException($"{Path} holds {_header.BytesPerToken}-byte tokens; use {nameof(UInt32Tokens)} or {nameof(CopyTo)}");
        }

        CheckRange(start, length);
        return new ReadOnlySpan<ushort>((ushort*)_tokens + start, length);
    }

    /// <summary>The raw uint32 tokens of a 4-byte file, unchecked (valid until <see cref="Dispose"/>).</summary>
    public ReadOnlySpan<uint> UInt32Tokens(long start, int length)
    {
        if (_header.BytesPerToken != 4)
        {
            throw new InvalidOperationException($"{Path} holds {_header.BytesPerToken}-byte tokens; use {nameof(UInt16Tokens)} or {nameof(CopyTo)}");
        }

        CheckRange(start, length);
        return new ReadOnlySpan<uint>((uint*)_tokens + start, length);
    }

    /// <summary>Scans every token: a <see cref="RadladsException"/> names the first id not below <see cref="VocabularySize"/>.</summary>
    public void Validate()
    {
        const int Chunk = 1 << 20;
        for (long start = 0; start < Count; start += Chunk)
        {
            int length = (int)Math.Min(Chunk, Count - start);
            int bad;
            uint id;
            if (_header.BytesPerToken == 2)
            {
                var span = UInt16Tokens(start, length);
                bad = _header.VocabularySize >= 65536 ? -1 : span.IndexOfAnyInRange((ushort)_header.VocabularySize, ushort.MaxValue);
                id = bad >= 0 ? span[bad] : 0u;
            }
            else
            {
                var span = UInt32Tokens(start, length);
                bad = span.IndexOfAnyInRange((uint)_header.VocabularySize, uint.MaxValue);
                id = bad >= 0 ? span[bad] : 0u;
            }

            if (bad >= 0)
            {
                throw OutOfRange(start + bad, id);
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _tokens = null;
        _mapped?.Dispose();
    }

    private void CheckRange(long start, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (start < 0 || start > Count - length)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"tokens {start} … {start + length - 1} are outside {Path}, which holds {Count} tokens");
        }
    }

    private RadladsException OutOfRange(long index, uint id) =>
        new($"{Path}: token {index} is id {id}, not below the vocabulary size {_header.VocabularySize} (corrupt file?)");
}
