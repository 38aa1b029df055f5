using System.Globalization;
using System.Text;

namespace Radlads.Tokenization;

/// <summary>
/// Finds added tokens (e.g. &lt;|im_end|&gt;) in text before BPE, as Hugging Face's <c>AddedVocabulary</c> does:
/// leftmost-longest, non-overlapping matches, honouring <c>single_word</c>, <c>lstrip</c> and <c>rstrip</c>.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedTokenSpec[]> _byFirstChar;

    /// <param name="tokens">The tokens to match.</param>
    /// <param name="contentOf">The string to look for (the content, or its normalised form).</param>
    internal AddedTokenMatcher(IEnumerable<AddedTokenSpec> tokens, Func<AddedTokenSpec, string> contentOf)
    {
        _byFirstChar = tokens
            .Select(t => (Token: t, Text: contentOf(t)))
            .Where(x => x.Text.Length > 0)
            .GroupBy(x => x.Text[0])
            .ToDictionary(
                g => g.Key,
                g => g.OrderByDescending(x => x.Text.Length).Select(x => x.Token with { Content = x.Text }).ToArray());
    }

    internal bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>Splits <paramref name="text"/> into pieces covering it in order: (start, length, added-token id or -1 for plain text).</summary>
    internal List<(int Start, int Length, int Id)> Split(string text)
    {
        var pieces = new List<(int Start, int Length, int Id)>();
        int startOffset = 0; // end of the last piece emitted
        int i = 0;
        while (i < text.Length)
        {
            AddedTokenSpec? match = LongestAt(text, i);
            if (match is null)
            {
                i++;
                continue;
            }

            int start = i, stop = i + match.Content.Length;
            i = stop;
            if (match.SingleWord && ((start > 0 && IsWordChar(text, start, before: true)) || (stop < text.Length && IsWordChar(text, stop, before: false))))
            {
                continue;
            }

            if (match.LStrip)
            {
                int s = start;
                while (s > startOffset && char.IsWhiteSpace(text[s - 1]))
                {
                    s--;
                }

                start = s;
            }

            if (match.RStrip)
            {
                while (stop < text.Length && char.IsWhiteSpace(text[stop]))
                {
                    stop++;
                }

                i = stop;
            }

            if (start > startOffset)
            {
                pieces.Add((startOffset, start - startOffset, -1));
            }

            pieces.Add((start, stop - start, match.Id));
            startOffset = stop;
        }

        if (startOffset < text.Length)
        {
            pieces.Add((startOffset, text.Length - startOffset, -1));
        }

        return pieces;
    }

    private AddedTokenSpec? LongestAt(string text, int i)
    {
        if (!_byFirstChar.TryGetValue(text[i], out AddedTokenSpec[]? candidates))
        {
            return null;
        }

        foreach (AddedTokenSpec t in candidates)
        {
            if (text.AsSpan(i).StartsWith(t.Content, StringComparison.Ordinal))
            {
                return t;
            }
        }

        return null;
    }

    /// <summary>Whether the character just before (or at) <paramref name="index"/> is a regex <c>\w</c> character.</summary>
    private static bool IsWordChar(string text, int index, bool before)
    {
        Rune r;
        if (before)
        {
            Rune.DecodeLastFromUtf16(text.AsSpan(0, index), out r, out _);
        }
        else
        {
            Rune.DecodeFromUtf16(text.AsSpan(index), out r, out _);
        }

        return Rune.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.NonSpacingMark
                or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark or UnicodeCategory.DecimalDigitNumber
                or UnicodeCategory.ConnectorPunctuation => true,
            _ => false,
        };
    }
}
