using System.Collections.Frozen;
using System.Text;

namespace Radlads.Tokenization;

/// <summary>
/// Unicode Normalization Form C (UAX #15), managed, from the tables in NfcData.g.cs.
/// .NET's <see cref="string.Normalize()"/> leaves non-ASCII text unchanged under InvariantGlobalization,
/// which this repository sets, so the tokenizer cannot rely on it.
/// </summary>
internal static partial class Nfc
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly FrozenDictionary<int, (int First, int Second)> Decompositions = BuildDecompositions();
    private static readonly FrozenDictionary<long, int> Compositions = BuildCompositions();
    private static readonly int[] CombiningClassStarts = BuildCombiningClassStarts();

    /// <summary>Whether <paramref name="text"/> certainly needs no change (every character is below the quick-check limit).</summary>
    internal static bool IsQuickNfc(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
        {
            if (c >= QuickCheckLimit)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The NFC form of <paramref name="text"/>; lone surrogates become U+FFFD.</summary>
    internal static string Normalize(string text) => IsQuickNfc(text) ? text : NormalizeSlow(text);

    /// <summary>The NFD form of <paramref name="text"/> (canonical decomposition and ordering); lone surrogates become U+FFFD.</summary>
    internal static string Decompose(string text)
    {
        List<int> cps = DecomposeAndSort(text);
        return ToString(cps, cps.Count);
    }

    private static string NormalizeSlow(ReadOnlySpan<char> text)
    {
        List<int> cps = DecomposeAndSort(text);
        return ToString(cps, Compose(cps));
    }

    private static List<int> DecomposeAndSort(ReadOnlySpan<char> text)
    {
        var cps = new List<int>(text.Length);
        foreach (Rune r in text.EnumerateRunes())
        {
            Decompose(r.Value, cps);
        }

        SortCanonically(cps);
        return cps;
    }

    private static string ToString(List<int> cps, int length)
    {
        var sb = new StringBuilder(length + 4);
        for (int i = 0; i < length; i++)
        {
            int cp = cps[i];
            if (cp < 0x10000)
            {
                sb.Append((char)cp);
            }
            else
            {
                sb.Append((char)(0xD7C0 + (cp >> 10))).Append((char)(0xDC00 + (cp & 0x3FF)));
            }
        }

        return sb.ToString();
    }

    internal static int CombiningClass(int cp)
    {
        if (cp < QuickCheckLimit)
        {
            return 0;
        }

        ReadOnlySpan<int> data = CombiningClassData;
        int i = Array.BinarySearch(CombiningClassStarts, cp);
        if (i < 0)
        {
            i = ~i - 1;
        }

        return i >= 0 && cp <= data[(3 * i) + 1] ? data[(3 * i) + 2] : 0;
    }

    private static void Decompose(int cp, List<int> output)
    {
        int s = cp - SBase;
        if (s is >= 0 and < SCount)
        {
            output.Add(LBase + (s / NCount));
            output.Add(VBase + (s % NCount / TCount));
            if (s % TCount != 0)
            {
                output.Add(TBase + (s % TCount));
            }

            return;
        }

        if (Decompositions.TryGetValue(cp, out (int First, int Second) d))
        {
            Decompose(d.First, output);
            if (d.Second != 0)
            {
                Decompose(d.Second, output);
            }

            return;
        }

        output.Add(cp);
    }

    /// <summary>Canonical ordering: a stable sort by combining class of each run of non-starters.</summary>
    private static void SortCanonically(List<int> cps)
    {
        for (int i = 1; i < cps.Count; i++)
        {
            int c = CombiningClass(cps[i]);
            if (c == 0)
            {
                continue;
            }

            int j = i;
            int cp = cps[i];
            while (j > 0 && CombiningClass(cps[j - 1]) > c)
            {
                cps[j] = cps[j - 1];
                j--;
            }

            cps[j] = cp;
        }
    }

    /// <summary>Canonical composition in place; returns the new length.</summary>
    private static int Compose(List<int> cps)
    {
        if (cps.Count == 0)
        {
            return 0;
        }

        int starterPos = 0;
        int starter = cps[0];
        int lastClass = CombiningClass(starter) == 0 ? 0 : 256; // a leading non-starter blocks composition
        int write = 1;
        for (int i = 1; i < cps.Count; i++)
        {
            int ch = cps[i];
            int chClass = CombiningClass(ch);
            int composite = ComposePair(starter, ch);
            if (composite >= 0 && (lastClass < chClass || lastClass == 0))
            {
                cps[starterPos] = composite;
                starter = composite;
                continue;
            }

            if (chClass == 0)
            {
                starterPos = write;
                starter = ch;
            }

            lastClass = chClass;
            cps[write++] = ch;
        }

        return write;
    }

    private static int ComposePair(int first, int second)
    {
        int l = first - LBase;
        if (l is >= 0 and < LCount)
        {
            int v = second - VBase;
            return v is >= 0 and < VCount ? SBase + (((l * VCount) + v) * TCount) : -1;
        }

        int s = first - SBase;
        if (s is >= 0 and < SCount && s % TCount == 0)
        {
            int t = second - TBase;
            return t is > 0 and < TCount ? first + t : -1;
        }

        return Compositions.TryGetValue(((long)first << 21) | (uint)second, out int c) ? c : -1;
    }

    private static FrozenDictionary<int, (int, int)> BuildDecompositions()
    {
        ReadOnlySpan<int> data = DecompositionData;
        var d = new Dictionary<int, (int, int)>(data.Length / 3);
        for (int i = 0; i < data.Length; i += 3)
        {
            d[data[i]] = (data[i + 1], data[i + 2]);
        }

        return d.ToFrozenDictionary();
    }

    private static FrozenDictionary<long, int> BuildCompositions()
    {
        var excluded = new HashSet<int>();
        foreach (int cp in CompositionExclusionData)
        {
            excluded.Add(cp);
        }

        ReadOnlySpan<int> data = DecompositionData;
        var d = new Dictionary<long, int>();
        for (int i = 0; i < data.Length; i += 3)
        {
            if (data[i + 2] != 0 && !excluded.Contains(data[i]))
            {
                d[((long)data[i + 1] << 21) | (uint)data[i + 2]] = data[i];
            }
        }

        return d.ToFrozenDictionary();
    }

    private static int[] BuildCombiningClassStarts()
    {
        ReadOnlySpan<int> data = CombiningClassData;
        int[] starts = new int[data.Length / 3];
        for (int i = 0; i < starts.Length; i++)
        {
            starts[i] = data[3 * i];
        }

        return starts;
    }
}
