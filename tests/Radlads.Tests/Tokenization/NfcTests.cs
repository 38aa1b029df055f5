using System.Globalization;
using System.Text;
using Radlads.Tokenization;

namespace Radlads.Tests.Tokenization;

public class NfcTests
{
    [Theory]
    [InlineData("e\u0301", "\u00E9")]
    [InlineData("\u00E9", "\u00E9")]
    [InlineData("\u1100\u1161\u11A8", "\uAC01")] // decomposed Hangul 각
    [InlineData("\u1112\u1161\u11AB\u1100\u1173\u11AF", "\uD55C\uAE00")] // 한글
    [InlineData("\u212B", "\u00C5")] // Angstrom sign → Å (singleton)
    [InlineData("a\u0307\u0323", "\u1EA1\u0307")] // reordered: dot below (220) before dot above (230)
    [InlineData("\u0344", "\u0308\u0301")] // excluded non-starter decomposition
    [InlineData("\u0958", "\u0915\u093C")] // composition exclusion (Devanagari)
    [InlineData("\u0301e", "\u0301e")] // a leading combining mark composes with nothing
    [InlineData("𝐀\u0301", "𝐀\u0301")]
    [InlineData("plain ASCII", "plain ASCII")]
    [InlineData("\u00E9\u0323", "\u1EB9\u0301")] // a precomposed character is decomposed to reorder its marks
    public void Normalize(string input, string expected) => Assert.Equal(expected, Nfc.Normalize(input));

    [Fact]
    public void LoneSurrogatesBecomeReplacementCharacters() // (not in InlineData: attribute strings are stored as UTF-8)
    {
        Assert.Equal("x\uFFFDy", Nfc.Normalize("x\uD800y"));
        Assert.Equal("\uFFFDe\u0301", Nfc.Decompose("\uDC00\u00E9"));
    }

    [Fact]
    public void AgreesWithHuggingFaceOnEveryCanonicalDecomposition()
    {
        // Every code point whose NFD differs from it, both as itself and decomposed, goes through both tokenizers.
        var composed = new StringBuilder();
        var decomposed = new StringBuilder();
        int count = 0;
        for (int cp = 0xA0; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and < 0xE000)
            {
                continue;
            }

            string c = char.ConvertFromUtf32(cp);
            string nfd = Nfc.Decompose(c);
            if (nfd != c)
            {
                composed.Append(c).Append(' ');
                decomposed.Append(nfd).Append(' ');
                count++;
            }
        }

        Assert.True(count > 13000, $"{count} code points decompose"); // 2,061 table entries + 11,172 Hangul syllables
        AssertSameIdsInChunks(composed.ToString());
        AssertSameIdsInChunks(decomposed.ToString());
    }

    [Fact]
    public void AgreesWithHuggingFaceOnEveryCombiningClass()
    {
        // Every mark that .NET's (newer) Unicode data knows, next to a mark of class 1 (U+0334) and after one of
        // class 129 (U+0F71): NFC reorders a pair only when it knows the mark's class, so a mark whose class differs
        // between the two sides (Hugging Face's tables are Unicode 9.0) shows up as different ids.
        var text = new StringBuilder();
        int count = 0;
        for (int cp = 0x300; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and < 0xE000
                || Rune.GetUnicodeCategory(new Rune(cp)) is not (UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark))
            {
                continue;
            }

            string mark = char.ConvertFromUtf32(cp);
            text.Append("a" + mark + "\u0334 a\u0F71" + mark + " ");
            count++;
        }

        Assert.True(count > 2000, $"{count} marks");
        AssertSameIdsInChunks(text.ToString());
    }

    private static void AssertSameIdsInChunks(string text)
    {
        string[] words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var differing = new List<string>();
        for (int i = 0; i < words.Length; i += 200)
        {
            string chunk = string.Join(' ', words.Skip(i).Take(200));
            if (!TestData.Qwen.Encode(chunk).SequenceEqual(TestData.QwenOracle.Encode(chunk)))
            {
                // Narrow down to the words that differ, for a readable failure.
                differing.AddRange(words.Skip(i).Take(200).Where(w => !TestData.Qwen.Encode(w).SequenceEqual(TestData.QwenOracle.Encode(w))));
            }
        }

        Assert.True(differing.Count == 0, $"NFC differs from Hugging Face on {differing.Count}: "
            + string.Join(", ", differing.Take(50).Select(w => "U+" + string.Join(" U+", w.EnumerateRunes().Select(r => r.Value.ToString("X4"))))));
    }
}
