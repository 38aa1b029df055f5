using System.IO.Compression;
using BenchmarkDotNet.Attributes;
using Radlads.Tokenization;

namespace Radlads.Bench;

/// <summary>
/// Tokenizer throughput: encoding English text (the nlp-corpus documents of tests/data, ~MB) with the real Qwen2.5
/// tokenizer (151k ids) and the demo teacher's 8192-id tokenizer, and decoding the ids back. Divide the text's bytes
/// (printed once in the setup) by the mean time for MB/s.
/// </summary>
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    private QwenTokenizer tokenizer = null!;
    private string text = "";
    private int[] ids = [];

    [Params("qwen2.5", "demo")]
    public string Tokenizer { get; set; } = "qwen2.5";

    [GlobalSetup]
    public void Setup()
    {
        if (Tokenizer == "qwen2.5")
        {
            string json = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "radlads-bench-qwen-tokenizer.json");
            using (var gz = new GZipStream(File.OpenRead(Repository.Path("tests", "data", "qwen", "tokenizer.json.gz")), CompressionMode.Decompress))
            using (var file = File.Create(json))
            {
                gz.CopyTo(file);
            }

            tokenizer = QwenTokenizer.FromFile(json);
        }
        else
        {
            tokenizer = QwenTokenizer.FromDirectory(Repository.Path("models", "demo-teacher"));
        }

        text = string.Join("\n", Directory.GetFiles(Repository.Path("tests", "data", "nlp-corpus"), "*.json").Order().Select(File.ReadAllText));
        ids = tokenizer.Encode(text);
        Console.WriteLine($"// {Tokenizer}: {System.Text.Encoding.UTF8.GetByteCount(text):N0} bytes of text -> {ids.Length:N0} tokens");
    }

    [Benchmark(Description = "encode nlp-corpus text")]
    public int[] Encode() => tokenizer.Encode(text);

    [Benchmark(Description = "decode the ids back to text")]
    public string Decode() => tokenizer.Decode(ids);
}
