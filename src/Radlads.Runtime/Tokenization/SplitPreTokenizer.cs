using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Radlads.Tokenization;

/// <summary>
/// The Hugging Face <c>Split</c> pre-tokenizer with behaviour <c>Isolated</c>: every regex match is a piece,
/// and so is every stretch of text between matches.
/// </summary>
/// <remarks>
/// Hugging Face runs the pattern with Oniguruma over code points; .NET's Regex sees UTF-16 code units, where a
/// character outside the BMP is two surrogates that match neither <c>\p{L}</c> nor <c>\p{N}</c>. So when the text
/// holds surrogate pairs the regex runs over a stand-in string with one BMP character of the same Unicode category
/// per code point, and the offsets are mapped back.
/// Microsoft.ML.Tokenizers' own <c>RegexPreTokenizer</c> is not used: it yields only the matches (dropping any
/// text between them) and has the same UTF-16 limitation.
/// </remarks>
internal sealed partial class SplitPreTokenizer : PreTokenizer
{
    /// <summary>Qwen2's pre-tokenizer pattern (transformers' <c>PRETOKENIZE_REGEX</c>, llama.cpp's QWEN2).</summary>
    internal const string QwenPattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>GPT-2's pattern, used by the ByteLevel pre-tokenizer when its <c>use_regex</c> is true.</summary>
    internal const string Gpt2Pattern =
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly char[] StandIns = BuildStandIns();

    private readonly Regex _regex;

    internal SplitPreTokenizer(Regex regex) => _regex = regex;

    internal string Pattern => _regex.ToString();

    /// <summary>A pre-tokenizer for <paramref name="pattern"/>; Qwen's and GPT-2's patterns use source-generated regexes.</summary>
    internal static SplitPreTokenizer Create(string pattern) => pattern switch
    {
        QwenPattern => new SplitPreTokenizer(QwenRegex()),
        Gpt2Pattern => new SplitPreTokenizer(Gpt2Regex()),
        _ => new SplitPreTokenizer(new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled)),
    };

    [GeneratedRegex(QwenPattern, RegexOptions.CultureInvariant)]
    private static partial Regex QwenRegex();

    [GeneratedRegex(Gpt2Pattern, RegexOptions.CultureInvariant)]
    private static partial Regex Gpt2Regex();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text);

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text.ToString());

    /// <summary>The pieces of <paramref name="text"/>, in order, covering it exactly; no empty pieces.</summary>
    internal List<(int Offset, int Length)> Split(string text)
    {
        var pieces = new List<(int Offset, int Length)>();
        if (text.Length == 0)
        {
            return pieces;
        }

        int[]? map = null; // stand-in index → text index (one past the end included)
        string subject = text;
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0)
        {
            (subject, map) = BuildStandInText(text);
        }

        int prev = 0;
        foreach (ValueMatch m in _regex.EnumerateMatches(subject))
        {
            int start = map is null ? m.Index : map[m.Index];
            int end = map is null ? m.Index + m.Length : map[m.Index + m.Length];
            if (start > prev)
            {
                pieces.Add((prev, start - prev));
            }

            if (end > start)
            {
                pieces.Add((start, end - start));
            }

            prev = Math.Max(prev, end);
        }

        if (prev < text.Length)
        {
            pieces.Add((prev, text.Length - prev));
        }

        return pieces;
    }

    private static (string, int[]) BuildStandInText(string text)
    {
        var sb = new StringBuilder(text.Length);
        var map = new List<int>(text.Length + 1);
        int i = 0;
        while (i < text.Length)
        {
            map.Add(i);
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out Rune r, out int used) == System.Buffers.OperationStatus.Done && used == 2)
            {
                sb.Append(StandIns[(int)Rune.GetUnicodeCategory(r)]);
            }
            else
            {
                sb.Append(text[i]); // BMP character, or a lone surrogate (the tokenizer replaces those before splitting)
            }

            i += used == 0 ? 1 : used;
        }

        map.Add(text.Length);
        return (sb.ToString(), map.ToArray());
    }

    /// <summary>One BMP character per Unicode category, not whitespace, and not a case variant of an ASCII letter.</summary>
    private static char[] BuildStandIns()
    {
        char[] standIns = new char[32];
        Array.Fill(standIns, '\uFFFD');
        bool[] found = new bool[32];
        for (int c = 0x100; c < 0xFFFE; c++)
        {
            char ch = (char)c;
            if (char.IsSurrogate(ch) || char.IsWhiteSpace(ch) || char.ToUpperInvariant(ch) < 0x80 || char.ToLowerInvariant(ch) < 0x80)
            {
                continue;
            }

            int cat = (int)CharUnicodeInfo.GetUnicodeCategory(ch);
            if (!found[cat])
            {
                found[cat] = true;
                standIns[cat] = ch;
            }
        }

        return standIns;
    }
}
