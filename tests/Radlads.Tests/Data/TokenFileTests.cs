using System.Buffers.Binary;
using Radlads.Data;
using Radlads.Tests.Checkpoints;

namespace Radlads.Tests.Data;

/// <summary>The token file: writer → reader round trips, the byte layout the Python reader relies on, atomic writes, bad files.</summary>
public sealed class TokenFileTests
{
    internal static string Write(TempDir dir, string name, int vocabulary, int separator, params int[][] documents)
    {
        string path = dir.File(name);
        using var writer = new TokenFileWriter(path, vocabulary, separator);
        foreach (var document in documents)
        {
            writer.WriteDocument(document);
        }

        writer.Commit();
        return path;
    }

    private static int[] Expected(int separator, int[][] documents) => [.. documents.SelectMany(d => d.Append(separator))];

    private static int[] ReadAll(TokenFile file)
    {
        var ids = new int[file.Count];
        file.CopyTo(0, ids);
        return ids;
    }

    [Fact]
    public void Uint16RoundTripKeepsIdsDocumentsAndTheDocumentedLayout()
    {
        using var dir = new TempDir();
        int[][] documents = [[1, 2, 3], [], [383, 0, 65]];
        string path = Write(dir, "small.bin", 384, 381, documents);

        var bytes = File.ReadAllBytes(path);
        Assert.Equal(64 + (2 * 9), bytes.Length);
        Assert.Equal("RDLSTOK1"u8.ToArray(), bytes[..8]);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12)));
        Assert.Equal(9ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16)));
        Assert.Equal(384u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(24)));
        Assert.Equal(381u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(28)));
        Assert.Equal(3ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(32)));
        Assert.All(bytes[40..64], b => Assert.Equal(0, b));
        Assert.Equal(383, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(64 + (2 * 5))));

        using var file = TokenFile.Open(path);
        Assert.Equal(9, file.Count);
        Assert.Equal(2, file.BytesPerToken);
        Assert.Equal(384, file.VocabularySize);
        Assert.Equal(381, file.SeparatorId);
        Assert.Equal(3, file.DocumentCount);
        Assert.Equal(Expected(381, documents), ReadAll(file));
        Assert.Equal(Expected(381, documents).Select(i => (ushort)i).ToArray(), file.UInt16Tokens(0, 9).ToArray());
        Assert.Equal(383, file[5]);
        Assert.Throws<InvalidOperationException>(() => file.UInt32Tokens(0, 1).Length);
        file.Validate();
    }

    [Fact]
    public void Uint32RoundTripForAQwenSizedVocabulary()
    {
        using var dir = new TempDir();
        int[][] documents = [[151664, 65536, 0, 70000], [151643, 12]];
        string path = Write(dir, "qwen.bin", 151665, 151643, documents);
        Assert.Equal(64 + (4 * 8), new FileInfo(path).Length);

        using var file = TokenFile.Open(path);
        Assert.Equal(4, file.BytesPerToken);
        Assert.Equal(151665, file.VocabularySize);
        Assert.Equal(151643, file.SeparatorId);
        Assert.Equal(2, file.DocumentCount);
        Assert.Equal(Expected(151643, documents), ReadAll(file));
        Assert.Equal(70000u, file.UInt32Tokens(3, 1)[0]);
        Assert.Throws<InvalidOperationException>(() => file.UInt16Tokens(0, 1).Length);
        var middle = new int[3];
        file.CopyTo(2, middle);
        Assert.Equal([0, 70000, 151643], middle);
        file.Validate();
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(65536, 2)]
    [InlineData(65537, 4)]
    public void TokensAreUint16ExactlyWhenEveryIdFits(int vocabulary, int bytesPerToken)
    {
        using var dir = new TempDir();
        string path = Write(dir, "t.bin", vocabulary, vocabulary - 1, [vocabulary - 1]);
        using var file = TokenFile.Open(path);
        Assert.Equal(bytesPerToken, file.BytesPerToken);
        Assert.Equal([vocabulary - 1, vocabulary - 1], ReadAll(file));
    }

    [Fact]
    public void ManyTokensAcrossTheWriteBufferReadBackAtAnyOffset()
    {
        using var dir = new TempDir();
        var random = new Random(5);
        var documents = Enumerable.Range(0, 300).Select(_ => Enumerable.Range(0, random.Next(0, 900)).Select(_ => random.Next(0, 50000)).ToArray()).ToArray();
        string path = Write(dir, "many.bin", 50000, 49999, documents);
        var expected = Expected(49999, documents);

        using var file = TokenFile.Open(path);
        Assert.Equal(expected.Length, file.Count);
        Assert.Equal(expected, ReadAll(file));
        var window = new int[1000];
        file.CopyTo(expected.Length / 3, window);
        Assert.Equal(expected.AsSpan(expected.Length / 3, 1000).ToArray(), window);
        Assert.Throws<ArgumentOutOfRangeException>(() => file.CopyTo(expected.Length - 999, window));
        file.Validate();
    }

    [Fact]
    public void AnEmptyCorpusIsAValidFileOfJustTheHeader()
    {
        using var dir = new TempDir();
        string path = Write(dir, "empty.bin", 384, 381);
        Assert.Equal(64, new FileInfo(path).Length);
        using var file = TokenFile.Open(path);
        Assert.Equal(0, file.Count);
        Assert.Equal(0, file.DocumentCount);
        file.CopyTo(0, []);
        file.Validate();
    }

    [Fact]
    public void AWriterThatIsNotCommittedLeavesNoFileAndTheOldOneUntouched()
    {
        using var dir = new TempDir();
        string fresh = dir.File("fresh.bin");
        string existing = dir.File("existing.bin");
        File.WriteAllText(existing, "old contents");

        foreach (string path in new[] { fresh, existing })
        {
            var failure = Assert.Throws<InvalidOperationException>(() => WriteThenFail(path));
            Assert.Equal("tokenizer failed", failure.Message);
        }

        Assert.False(File.Exists(fresh));
        Assert.Equal("old contents", File.ReadAllText(existing));
        Assert.Equal([existing], Directory.GetFiles(dir.Path)); // no temporary file left behind

        static void WriteThenFail(string path)
        {
            using var writer = new TokenFileWriter(path, 384, 381);
            writer.WriteDocument(Enumerable.Range(0, 100_000).Select(i => i % 384).ToArray());
            throw new InvalidOperationException("tokenizer failed");
        }
    }

    [Fact]
    public void CommitReplacesAnExistingFileAndLeavesNoTemporaryFile()
    {
        using var dir = new TempDir();
        string path = dir.File("corpus.bin");
        File.WriteAllText(path, "old contents");
        Write(dir, "corpus.bin", 384, 381, [5, 6]);
        using (var file = TokenFile.Open(path))
        {
            Assert.Equal([5, 6, 381], ReadAll(file));
        }

        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void TheWriterRejectsIdsOutOfRangeBeforeWritingAny()
    {
        using var dir = new TempDir();
        string path = dir.File("w.bin");
        using var writer = new TokenFileWriter(path, 384, 381);
        writer.WriteDocument([1, 2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WriteDocument([3, 384]));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.Write([-1]));
        Assert.Equal(3, writer.Count);
        Assert.Equal(1, writer.DocumentCount);
        writer.Commit();
        Assert.Throws<InvalidOperationException>(() => writer.Write([1]));
        using var file = TokenFile.Open(path);
        Assert.Equal([1, 2, 381], ReadAll(file));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenFileWriter(dir.File("x.bin"), 384, 384));
    }

    [Fact]
    public void AMissingFolderOrFileIsAClearError()
    {
        using var dir = new TempDir();
        string inMissingFolder = Path.Combine(dir.Path, "no-such-folder", "c.bin");
        var e = Assert.Throws<RadladsException>(() => new TokenFileWriter(inMissingFolder, 384, 381));
        Assert.Contains(inMissingFolder, e.Message, StringComparison.Ordinal);
        e = Assert.Throws<RadladsException>(() => TokenFile.Open(dir.File("missing.bin")));
        Assert.Contains("missing.bin: cannot open", e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, int, byte[], string> HeaderDamage => new()
    {
        { "bad magic", 0, "RDLSTOK2"u8.ToArray(), "not a Radlads token file (starts with \"RDLSTOK2\"" },
        { "binary magic", 0, [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0], "starts with bytes 934E554D50590100" },
        { "unsupported version", 8, U32(2), "token-file version 2 is not supported" },
        { "3 bytes per token", 12, U32(3), "3 bytes per token is not supported" },
        { "count larger than the data", 16, U64(10), "header says 10 tokens (2 bytes each) but the file holds 8 bytes after the header (truncated?)" },
        { "count huge", 16, U64(ulong.MaxValue), "truncated?" },
        { "count smaller than the data", 16, U64(3), "2 bytes follow the 3 tokens" },
        { "vocabulary zero", 24, U32(0), "vocabulary size 0 is out of range" },
        { "vocabulary too big for uint16", 24, U32(70000), "vocabulary size 70000 does not fit 2-byte tokens" },
        { "separator out of range", 28, U32(384), "separator id 384 is not below the vocabulary size 384" },
        { "more documents than tokens", 32, U64(5), "header says 5 documents but only 4 tokens" },
    };

    [Theory]
    [MemberData(nameof(HeaderDamage))]
    public void DamagedHeadersAreRejectedWithTheFileAndTheReason(string what, int offset, byte[] patch, string expected)
    {
        using var dir = new TempDir();
        string path = Write(dir, "damaged.bin", 384, 381, [1, 2, 3]);
        using (var stream = new FileStream(path, FileMode.Open))
        {
            stream.Position = offset;
            stream.Write(patch);
        }

        var e = Assert.Throws<RadladsException>(() => TokenFile.Open(path));
        Assert.StartsWith(path + ": ", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Contains(expected, StringComparison.Ordinal), $"{what}: {e.Message}");
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(30)]
    [InlineData(63)]
    public void ATruncatedHeaderIsRejected(int length)
    {
        using var dir = new TempDir();
        string path = Write(dir, "short.bin", 384, 381, [1, 2, 3]);
        using (var stream = new FileStream(path, FileMode.Open))
        {
            stream.SetLength(length);
        }

        var e = Assert.Throws<RadladsException>(() => TokenFile.Open(path));
        Assert.Equal($"{path}: file is {length} bytes, shorter than the 64-byte token-file header (truncated, or not a token file)", e.Message);
    }

    [Fact]
    public void TruncatedTokensAreRejected()
    {
        using var dir = new TempDir();
        string path = Write(dir, "cut.bin", 384, 381, [1, 2, 3]);
        using (var stream = new FileStream(path, FileMode.Open))
        {
            stream.SetLength(stream.Length - 1);
        }

        var e = Assert.Throws<RadladsException>(() => TokenFile.Open(path));
        Assert.Contains("header says 4 tokens (2 bytes each) but the file holds 7 bytes after the header (truncated?)", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(384, 2, 384u)]
    [InlineData(384, 2, 65535u)]
    [InlineData(100000, 4, 100000u)]
    [InlineData(100000, 4, uint.MaxValue)]
    public void AnIdNotBelowTheVocabularyIsFoundByReadsAndByValidate(int vocabulary, int width, uint bad)
    {
        using var dir = new TempDir();
        string path = Write(dir, "ids.bin", vocabulary, vocabulary - 1, [1, 2, 3, 4]);
        using (var stream = new FileStream(path, FileMode.Open))
        {
            stream.Position = 64 + (2 * width);
            stream.Write(width == 2 ? BitConverter.GetBytes((ushort)bad) : U32(bad));
        }

        using var file = TokenFile.Open(path);
        string expected = $"{path}: token 2 is id {bad}, not below the vocabulary size {vocabulary} (corrupt file?)";
        Assert.Equal(expected, Assert.Throws<RadladsException>(file.Validate).Message);
        Assert.Equal(expected, Assert.Throws<RadladsException>(() => file.CopyTo(0, new int[5])).Message);
        Assert.Equal(expected, Assert.Throws<RadladsException>(() => file[2]).Message);
        var fine = new int[2];
        file.CopyTo(0, fine); // the ids before it are readable
        Assert.Equal([1, 2], fine);
    }

    [Fact]
    public void ADisposedFileRefusesReads()
    {
        using var dir = new TempDir();
        string path = Write(dir, "d.bin", 384, 381, [1]);
        var file = TokenFile.Open(path);
        file.Dispose();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.CopyTo(0, new int[1]));
    }

    private static byte[] U32(uint value) => BitConverter.GetBytes(value);

    private static byte[] U64(ulong value) => BitConverter.GetBytes(value);
}
