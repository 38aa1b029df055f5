using Radlads.Tokenization;

namespace Radlads.Tests.Tokenization;

/// <summary>
/// The demo tokenizer (models/demo/tokenizer, trained with the Hugging Face library on our corpus) loads like
/// Qwen's and gives the library's ids: the token files the teacher trained on depend on it.
/// </summary>
public sealed class DemoTokenizerTests
{
    private static string Json => Path.Combine(TestData.RepoRoot, "models", "demo", "tokenizer", "tokenizer.json");

    [Fact]
    public void IdsEqualTheHuggingFaceLibraryOnRealText()
    {
        var ours = QwenTokenizer.FromFile(Json);
        using var oracle = new Oracle(Json);
        Assert.Equal(8192, ours.VocabularySize);
        Assert.Equal(8189, ours.TokenToId("<|endoftext|>"));
        Assert.Equal(8191, ours.TokenToId("<|im_end|>"));
        int checkedLines = 0;
        foreach (var line in TestData.CorpusLines().Take(2000))
        {
            Assert.Equal(oracle.Encode(line), ours.Encode(line));
            checkedLines++;
        }

        Assert.Equal(2000, checkedLines);
        const string Chat = "<|im_start|>user\nHow many rivers? 1234 of them… naïve café 中文<|im_end|>\n";
        Assert.Equal(oracle.Encode(Chat), ours.Encode(Chat));
    }
}
