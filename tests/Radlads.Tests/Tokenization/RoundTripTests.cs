using Radlads.Tokenization;

namespace Radlads.Tests.Tokenization;

public class RoundTripTests
{
    [Theory]
    [MemberData(nameof(QwenOracleTests.HardCases), MemberType = typeof(QwenOracleTests))]
    public void DecodeOfEncodeIsNfcOfText(string text)
    {
        QwenTokenizer qwen = TestData.Qwen;
        Assert.Equal(Nfc.Normalize(text), qwen.Decode(qwen.Encode(text)));
    }

    [Fact]
    public void CorpusRoundTrips()
    {
        QwenTokenizer qwen = TestData.Qwen;
        foreach (string line in TestData.CorpusLines().Take(2000))
        {
            Assert.Equal(Nfc.Normalize(line), qwen.Decode(qwen.Encode(line)));
        }
    }

    [Fact]
    public void LoneSurrogatesBecomeReplacementCharacters()
    {
        QwenTokenizer qwen = TestData.Qwen;
        Assert.Equal("a\uFFFDb\uFFFD", qwen.Decode(qwen.Encode("a\uDC00b\uD800")));
        Assert.Equal(qwen.Encode("a\uFFFDb"), qwen.Encode("a\uD83Db"));
    }

    [Fact]
    public void SkipSpecialTokensDropsOnlyTokensMarkedSpecial()
    {
        QwenTokenizer qwen = TestData.Qwen;
        int[] ids = qwen.Encode("<|im_start|>assistant\n<think>\nhm\n</think>\nok<|im_end|><|endoftext|>");
        Assert.Equal("<|im_start|>assistant\n<think>\nhm\n</think>\nok<|im_end|><|endoftext|>", qwen.Decode(ids));
        // <think> is an added token but not special (special: false in tokenizer.json), so it stays.
        Assert.Equal("assistant\n<think>\nhm\n</think>\nok", qwen.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void UnknownIdsDecodeToNothing() =>
        Assert.Equal("ab", TestData.Qwen.Decode([64, 151_900, -5, 65]));
}
