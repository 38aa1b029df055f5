using Radlads.Tokenization;

namespace Radlads.Tests.Tokenization;

public sealed class TokenizerErrorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("radlads-tokerr-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static RadladsException AssertOneLineError(Action load, string path, params string[] mentions)
    {
        RadladsException e = Assert.Throws<RadladsException>(load);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        foreach (string m in mentions)
        {
            Assert.Contains(m, e.Message, StringComparison.Ordinal);
        }

        return e;
    }

    private string WriteFile(string content)
    {
        string path = Path.Combine(_dir, "tokenizer.json");
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void MissingFile()
    {
        string path = Path.Combine(_dir, "nope", "tokenizer.json");
        AssertOneLineError(() => QwenTokenizer.FromFile(path), path, "not found");
    }

    [Fact]
    public void MissingFolderOrNoTokenizerJsonInIt()
    {
        string missing = Path.Combine(_dir, "no-such-model");
        AssertOneLineError(() => QwenTokenizer.FromDirectory(missing), missing, "not found");
        AssertOneLineError(() => QwenTokenizer.FromDirectory(_dir), _dir, "tokenizer.json");
    }

    [Fact]
    public void MalformedJson()
    {
        string path = WriteFile("{\n  \"model\": {\"vocab\": {\"a\": 0,}\n");
        AssertOneLineError(() => QwenTokenizer.FromFile(path), path, "malformed JSON", "line 2");
    }

    [Theory]
    [InlineData("[]", "top level")]
    [InlineData("{}", "model")]
    [InlineData("""{"model": {"type": "BPE", "merges": []}}""", "model.vocab")]
    [InlineData("""{"model": {"type": "BPE", "vocab": [], "merges": []}}""", "model.vocab")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": "x"}}}""", "model.vocab[\"a\"]")]
    [InlineData("""{"model": {"type": "WordPiece", "vocab": {}}}""", "model.type")]
    [InlineData("""{"model": {"vocab": {"a": 0}, "merges": [3]}}""", "model.merges[0]")]
    [InlineData("""{"model": {"vocab": {"a": 0}, "merges": ["a"]}}""", "model.merges[0]")]
    [InlineData("""{"model": {"vocab": {"a": 0, "aa": 1}, "merges": [["a", "b"]]}}""", "model.vocab and model.merges")]
    [InlineData("""{"model": {"vocab": {"a": 0}, "byte_fallback": true}}""", "model.byte_fallback")]
    [InlineData("""{"model": {"vocab": {"a": 0}, "continuing_subword_prefix": "##"}}""", "model.continuing_subword_prefix")]
    [InlineData("""{"model": {"vocab": {"a": 0}, "unk_token": "<unk>"}}""", "model.unk_token")]
    [InlineData("""{"model": {"vocab": {"a": 0}}, "normalizer": {"type": "Lowercase"}}""", "normalizer.type")]
    [InlineData("""{"model": {"vocab": {"a": 0}}, "pre_tokenizer": {"type": "Whitespace"}}""", "pre_tokenizer.type")]
    [InlineData("""{"model": {"vocab": {"a": 0}}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true}}""", "add_prefix_space")]
    [InlineData("""{"model": {"vocab": {"a": 0}}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "x"}, "behavior": "Isolated"}}""", "no ByteLevel")]
    [InlineData("""{"model": {"vocab": {"a": 0}}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "x"}, "behavior": "Removed"}]}}""", "behavior")]
    [InlineData("""{"model": {"vocab": {"a": 0}}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(x"}, "behavior": "Isolated"}]}}""", "pattern.Regex")]
    [InlineData("""{"model": {"vocab": {"a": 0}}, "decoder": {"type": "WordPiece"}}""", "decoder.type")]
    [InlineData("""{"model": {"vocab": {"a": 0}}, "post_processor": {"type": "TemplateProcessing"}}""", "post_processor.type")]
    [InlineData("""{"model": {"vocab": {"a": 0}}, "added_tokens": [{"content": "<x>"}]}""", "added_tokens[0].id")]
    public void UnsupportedOrInvalidContent(string json, string field)
    {
        string path = WriteFile(json);
        AssertOneLineError(() => QwenTokenizer.FromFile(path), path, field);
    }
}
