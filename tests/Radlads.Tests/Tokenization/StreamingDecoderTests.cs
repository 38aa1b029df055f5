using System.Text;
using Radlads.Tokenization;

namespace Radlads.Tests.Tokenization;

public class StreamingDecoderTests
{
    /// <summary>Rare CJK, emoji and other scripts: byte-level BPE splits many of these characters across tokens.</summary>
    private const string RareText =
        "龘靐齉 鱻麤 𠀋𡈽𡌛 👩‍👩‍👧‍👦🏳️‍🌈🧑🏽‍🚀🫠🪿 ꙮ 𓀀𓁐 ᚠᛇᚻ ⠿⡿ ﷽ 㐀㐁 ѱѲ ẞ";

    [Fact]
    public void MultiByteCharactersSplitAcrossTokensAreNeverHalfEmitted()
    {
        QwenTokenizer qwen = TestData.Qwen;
        int[] ids = qwen.Encode(RareText);

        // The test is only meaningful if some token holds part of a character: check that it does.
        int splitting = ids.Count(id => !IsCompleteUtf8(qwen.Decode([id])));
        Assert.True(splitting >= 10, $"only {splitting} of {ids.Length} tokens hold part of a character");

        StreamingDecoder decoder = qwen.CreateStreamingDecoder();
        var all = new StringBuilder();
        foreach (int id in ids)
        {
            string piece = decoder.Push(id);
            Assert.DoesNotContain('\uFFFD', piece);
            Assert.False(piece.Length > 0 && char.IsHighSurrogate(piece[^1]), "a piece ends in half a surrogate pair");
            all.Append(piece);
        }

        all.Append(decoder.Flush());
        Assert.Equal(qwen.Decode(ids), all.ToString());
        Assert.Equal(RareText, all.ToString());
    }

    [Fact]
    public void StreamingEqualsDecodeOnCorpus()
    {
        QwenTokenizer qwen = TestData.Qwen;
        foreach (string line in TestData.CorpusLines().Take(500).Append(RareText))
        {
            int[] ids = qwen.Encode(line);
            StreamingDecoder decoder = qwen.CreateStreamingDecoder();
            string streamed = string.Concat(ids.Select(decoder.Push)) + decoder.Flush();
            Assert.Equal(qwen.Decode(ids), streamed);
        }
    }

    [Fact]
    public void StreamingEqualsDecodeOnRandomIds()
    {
        // Arbitrary ids, invalid UTF-8 included: the stream still concatenates to Decode's text.
        QwenTokenizer qwen = TestData.Qwen;
        var rng = new Random(42);
        for (int round = 0; round < 300; round++)
        {
            int[] ids = [.. Enumerable.Range(0, rng.Next(1, 16)).Select(_ => rng.Next(3) == 0 ? rng.Next(256) : rng.Next(qwen.VocabularySize + 10))];
            foreach (bool skip in new[] { false, true })
            {
                StreamingDecoder decoder = qwen.CreateStreamingDecoder(skip);
                string streamed = string.Concat(ids.Select(decoder.Push)) + decoder.Flush();
                Assert.Equal(qwen.Decode(ids, skip), streamed);
            }
        }
    }

    [Fact]
    public void FlushTurnsLeftoverBytesIntoReplacementCharacter()
    {
        QwenTokenizer qwen = TestData.Qwen;
        int leadByte = qwen.TokenToId("ä")!.Value; // byte 0xE4, the first of three in 中 (E4 B8 AD)
        StreamingDecoder decoder = qwen.CreateStreamingDecoder();
        Assert.Equal("", decoder.Push(leadByte));
        Assert.Equal("\uFFFD", decoder.Flush());
        Assert.Equal("", decoder.Flush());
        // Usable again after a flush.
        Assert.Equal("", decoder.Push(leadByte));
        Assert.Equal("", decoder.Push(qwen.TokenToId("¸")!.Value)); // 0xB8
        Assert.Equal("中", decoder.Push(qwen.TokenToId("Ń")!.Value)); // 0xAD maps to U+0143
    }

    [Fact]
    public void SpecialTokensDecodeToTheirContentUnlessSkipped()
    {
        QwenTokenizer qwen = TestData.Qwen;
        int imEnd = qwen.SpecialTokens["<|im_end|>"];
        Assert.Equal("<|im_end|>", qwen.CreateStreamingDecoder().Push(imEnd));
        Assert.Equal("", qwen.CreateStreamingDecoder(skipSpecialTokens: true).Push(imEnd));
        Assert.Equal("<think>", qwen.CreateStreamingDecoder(skipSpecialTokens: true).Push(qwen.SpecialTokens["<think>"]));
        Assert.Equal("", qwen.CreateStreamingDecoder().Push(qwen.VocabularySize));
    }

    private static bool IsCompleteUtf8(string decoded) => !decoded.Contains('\uFFFD');
}
