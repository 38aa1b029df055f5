using System.Buffers.Binary;

namespace Radlads.Data;

/// <summary>
/// Writes a token file (layout: <see cref="TokenFile"/>). Tokens stream to a temporary file next to the target;
/// <see cref="Commit"/> patches the header and renames it over the target in one step, so the target path never
/// holds a partial file. Disposing without <see cref="Commit"/> (e.g. on an exception) deletes the temporary file and
/// leaves whatever was at the target untouched.
/// </summary>
public sealed class TokenFileWriter : IDisposable
{
    private const int BufferBytes = 1 << 16;

    private readonly string _temporaryPath;
    private readonly byte[] _buffer = new byte[BufferBytes];
    private FileStream? _stream;
    private int _buffered;
    private bool _committed;

    /// <summary>Creates the temporary file; tokens are uint16 when <paramref name="vocabularySize"/> ≤ 65536, else uint32.</summary>
    public TokenFileWriter(string path, int vocabularySize, int separatorId)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabularySize);
        if ((uint)separatorId >= (uint)vocabularySize)
        {
            throw new ArgumentOutOfRangeException(nameof(separatorId), $"separator id {separatorId} is not below the vocabulary size {vocabularySize}");
        }

        Path = System.IO.Path.GetFullPath(path);
        VocabularySize = vocabularySize;
        SeparatorId = separatorId;
        BytesPerToken = TokenFileHeader.BytesPerTokenFor(vocabularySize);
        string directory = System.IO.Path.GetDirectoryName(Path)!;
        _temporaryPath = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(Path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            _stream = new FileStream(_temporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0);
            // Zeros until Commit: a file left behind by a crash has no valid magic.
            _stream.Write(new byte[TokenFileHeader.Size]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Dispose();
            throw new RadladsException($"{Path}: cannot create the token file ({e.Message})", e);
        }
    }

    /// <summary>Full path of the file <see cref="Commit"/> creates.</summary>
    public string Path { get; }

    public int VocabularySize { get; }

    public int SeparatorId { get; }

    /// <summary>2 (uint16) or 4 (uint32).</summary>
    public int BytesPerToken { get; }

    /// <summary>Tokens written so far, separators included.</summary>
    public long Count { get; private set; }

    /// <summary>Documents ended so far.</summary>
    public long DocumentCount { get; private set; }

    /// <summary>Size of the finished file so far: header + tokens.</summary>
    public long Length => TokenFileHeader.Size + Count * BytesPerToken;

    /// <summary>Appends <paramref name="tokens"/> then the separator, and counts one document.</summary>
    public void WriteDocument(ReadOnlySpan<int> tokens)
    {
        Write(tokens);
        EndDocument();
    }

    /// <summary>Appends the separator and counts one document.</summary>
    public void EndDocument()
    {
        Write([SeparatorId]);
        DocumentCount++;
    }

    /// <summary>Appends ids (all checked before any is written: an id out of range leaves the writer unchanged).</summary>
    public void Write(ReadOnlySpan<int> tokens)
    {
        ThrowIfClosed();
        int bad = tokens.IndexOfAnyExceptInRange(0, VocabularySize - 1);
        if (bad >= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(tokens), $"id {tokens[bad]} at position {bad} is not below the vocabulary size {VocabularySize}");
        }

        foreach (int id in tokens)
        {
            if (_buffered + BytesPerToken > BufferBytes)
            {
                Flush();
            }

            if (BytesPerToken == 2)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(_buffered), (ushort)id);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_buffered), (uint)id);
            }

            _buffered += BytesPerToken;
        }

        Count += tokens.Length;
    }

    /// <summary>Writes the header, flushes to disk and renames the temporary file to <see cref="Path"/> (replacing it).</summary>
    public void Commit()
    {
        ThrowIfClosed();
        try
        {
            Flush();
            var header = new byte[TokenFileHeader.Size];
            new TokenFileHeader(BytesPerToken, Count, VocabularySize, SeparatorId, DocumentCount).WriteTo(header);
            _stream!.Position = 0;
            _stream.Write(header);
            _stream.Flush(flushToDisk: true);
            _stream.Dispose();
            _stream = null;
            File.Move(_temporaryPath, Path, overwrite: true);
            _committed = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Dispose();
            throw new RadladsException($"{Path}: cannot write the token file ({e.Message})", e);
        }
    }

    /// <summary>Without a <see cref="Commit"/>: deletes the temporary file (the target is untouched).</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
        if (!_committed)
        {
            try
            {
                File.Delete(_temporaryPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort: a stray .tmp file is not worth masking the original error.
            }
        }
    }

    private void Flush()
    {
        try
        {
            _stream!.Write(_buffer, 0, _buffered);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RadladsException($"{Path}: cannot write the token file ({e.Message})", e);
        }

        _buffered = 0;
    }

    private void ThrowIfClosed()
    {
        if (_stream is null)
        {
            throw new InvalidOperationException($"{Path}: the token file writer is already committed or disposed");
        }
    }
}
