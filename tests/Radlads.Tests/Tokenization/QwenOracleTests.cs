using System.Diagnostics;
using System.Text;
using Radlads.Tokenization;

namespace Radlads.Tests.Tokenization;

/// <summary>Our ids against the Hugging Face tokenizers library's, on the real Qwen tokenizer.json.</summary>
public class QwenOracleTests(ITestOutputHelper output)
{
    [Fact]
    public void CorpusIdsEqualHuggingFace()
    {
        QwenTokenizer qwen = TestData.Qwen;
        Oracle oracle = TestData.QwenOracle;
        string[] lines = [.. TestData.CorpusLines()];

        // Line by line, and also whole documents joined by newlines (long inputs, "\n" handling).
        var inputs = new List<string>(lines);
        for (int i = 0; i + 50 <= lines.Length; i += 50)
        {
            inputs.Add(string.Join("\n", lines, i, 50));
        }

        var sw = Stopwatch.StartNew();
        long chars = 0, tokens = 0;
        int mismatches = 0;
        var report = new StringBuilder();
        foreach (string text in inputs)
        {
            int[] ours = qwen.Encode(text);
            int[] theirs = oracle.Encode(text);
            chars += text.Length;
            tokens += ours.Length;
            if (!ours.SequenceEqual(theirs) && mismatches++ < 5)
            {
                report.AppendLine($"text: {text}\n ours:   [{string.Join(",", ours)}]\n theirs: [{string.Join(",", theirs)}]");
            }
        }

        output.WriteLine($"{inputs.Count} inputs, {chars} chars, {tokens} tokens, {sw.Elapsed.TotalSeconds:F2} s (both tokenizers)");
        Assert.True(lines.Length > 4000, $"only {lines.Length} corpus lines");
        Assert.True(mismatches == 0, $"{mismatches} of {inputs.Count} inputs differ from Hugging Face:\n{report}");
    }

    public static TheoryData<string> HardCases =>
    [
        "",
        "Hello world",
        "👩‍👩‍👧‍👦 family, 🏳️‍🌈 rainbow flag, 👍🏽 thumbs",
        "🇯🇵🇺🇸🇩🇪 flags 🇬🇧",
        "中文 日本語 한국어 Tiếng Việt العربية עברית हिन्दी ไทย",
        "e\u0301 cafe\u0301 Cafe\u0301s e\u0301\u0323 \u00E9\u0323",
        "\u1100\u1161\u11A8 \u1112\u1161\u11AB\u1100\u1173\u11AF",
        "a\u0323\u0307 a\u0307\u0323 \u212B \u2126 q\u0307\u0323",
        "0123456789012345678901234567890 3.14159 1,000,000 ٣٤٥ ½ Ⅻ",
        "I'M They'RE don't we'LL you'Ve she'D it'S 'tis O'Neil",
        "'ſa 'ſ 'Sa 'K",
        "tab\there\t\ttwo\t",
        "a  \n\n\n  b",
        "trailing spaces   ",
        "   leading spaces",
        "windows\r\nline\r\n\r\nends\r",
        "\u00A0non-breaking\u2003em space\u3000ideographic",
        "hi<|im_end|>there",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        "<|endoftext|><|endoftext|>x<|im_start|><|im_end|>",
        "<|im_end|",
        "<think>\nreasoning\n</think>\n\nanswer <tool_call>{\"a\":1}</tool_call>",
        "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
        "x\uD800y \uDC00 z\uD83D",
        "\u0000\u0001\u001F\u007F control",
        "𠀀abc 𝐀𝐁𝐂 𝟘𝟙𝟚 𐍈 😀😀😀",
        "Ελληνικά Русский язык Ünïcödé naïve façade",
        "$$$ !!! ??? ... --- *** ### @@@ ~~~ ```code```",
        "   \n   \n",
        "\n",
        " ",
        "x" + new string(' ', 40) + "y",
        new string('a', 3000),
        string.Concat(Enumerable.Repeat("ab😀", 200)),
        "\u0301 leading combining mark \u0301\u0301",
        "\uFEFF BOM and \u200B zero width \u200D joiner",
    ];

    [Theory]
    [MemberData(nameof(HardCases))]
    public void HardCaseIdsEqualHuggingFace(string text)
    {
        int[] ours = TestData.Qwen.Encode(text);
        // Tokenizers.DotNet refuses strings with lone surrogates; UTF-8 would carry them as U+FFFD, as we do.
        string forOracle = new(text.Select((c, i) => char.IsSurrogate(c) && !IsPaired(text, i) ? '\uFFFD' : c).ToArray());
        int[] theirs = TestData.QwenOracle.Encode(forOracle);
        Assert.Equal(theirs, ours);
    }

    private static bool IsPaired(string s, int i) =>
        char.IsHighSurrogate(s[i]) ? i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) : i > 0 && char.IsHighSurrogate(s[i - 1]);

    [Fact]
    public void RandomTextIdsEqualHuggingFace()
    {
        // Random mixes of the pieces the regex, NFC and the added-token matcher care about.
        string[] parts =
        [
            "a", "Z", "é", "e\u0301", "\u0323", "\u0301", "中", "日本", "한", "\u1100", "\u1161", "\u11A8", "😀", "👩‍👩‍👧", "\u200D", "🇺", "🇸",
            "𝐀", "𝟘", "𠀀", "7", "42", "٣", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00A0", "\u3000", "'", "'s", "'S", "'ll", "'LL", "?", "!!",
            ".", "-", "_", "<", "|", ">", "<|im_end|>", "<|im_start|>", "<think>", "<|endoftext|", "\u0000", "\uFEFF", "ſ", "İ", "K",
        ];
        var rng = new Random(7);
        for (int round = 0; round < 3000; round++)
        {
            string text = string.Concat(Enumerable.Range(0, rng.Next(1, 25)).Select(_ => parts[rng.Next(parts.Length)]));
            int[] ours = TestData.Qwen.Encode(text);
            int[] theirs = TestData.QwenOracle.Encode(text);
            Assert.True(ours.SequenceEqual(theirs),
                $"'{text}' (U+{string.Join(" U+", text.EnumerateRunes().Select(r => r.Value.ToString("X4")))})\n ours:   [{string.Join(",", ours)}]\n theirs: [{string.Join(",", theirs)}]");
        }
    }

    [Fact]
    public void KnownIds()
    {
        QwenTokenizer qwen = TestData.Qwen;
        Assert.Equal([9707, 1879, 220, 17, 15, 17, 19], qwen.Encode("Hello world 2024")); // digits one by one
        Assert.Equal([6023, 151645, 18532], qwen.Encode("hi<|im_end|>there"));
        Assert.Equal([151644, 872, 198], qwen.Encode("<|im_start|>user\n"));
        Assert.Equal([963], qwen.Encode("e\u0301")); // NFC: é
        Assert.Equal([], qwen.Encode(""));
    }

    [Fact]
    public void VocabularyAndSpecialTokens()
    {
        QwenTokenizer qwen = TestData.Qwen;
        Assert.Equal(151669, qwen.VocabularySize); // Qwen2.5's 151665 plus Qwen3's four (<tool_response>, </tool_response>, <think>, </think>)
        Assert.Equal(151643, qwen.SpecialTokens["<|endoftext|>"]);
        Assert.Equal(151644, qwen.SpecialTokens["<|im_start|>"]);
        Assert.Equal(151645, qwen.SpecialTokens["<|im_end|>"]);
        Assert.Equal(151664, qwen.SpecialTokens["<|file_sep|>"]);
        Assert.Equal(26, qwen.SpecialTokens.Count);
        Assert.Equal(151645, qwen.TokenToId("<|im_end|>"));
        Assert.Equal(1879, qwen.TokenToId("Ġworld"));
        Assert.Null(qwen.TokenToId("no such token"));
        Assert.Equal("Ġworld", qwen.IdToToken(1879));
        Assert.Equal("<|im_end|>", qwen.IdToToken(151645));
        Assert.Null(qwen.IdToToken(151669));
        Assert.Null(qwen.IdToToken(-1));
    }

    [Fact]
    public void DecodeEqualsHuggingFaceOnRandomIds()
    {
        // Random ids (regular tokens, single bytes that break UTF-8, and special tokens) decode as Hugging Face
        // decodes them: invalid UTF-8 becomes U+FFFD the same way (Tokenizers.DotNet skips special tokens).
        var rng = new Random(1234);
        QwenTokenizer qwen = TestData.Qwen;
        for (int round = 0; round < 300; round++)
        {
            int[] ids = [.. Enumerable.Range(0, rng.Next(1, 12)).Select(_ => rng.Next(4) switch
            {
                0 => rng.Next(256),
                1 => rng.Next(151643, qwen.VocabularySize),
                _ => rng.Next(151643),
            })];
            Assert.Equal(TestData.QwenOracle.DecodeSkippingSpecial(ids), qwen.Decode(ids, skipSpecialTokens: true));
        }
    }
}
