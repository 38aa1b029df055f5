namespace Radlads.Checkpoints;

/// <summary>The names closest to a misspelt one (Levenshtein distance), for "not found" messages.</summary>
internal static class NameSuggestions
{
    public static IReadOnlyList<string> Closest(string name, IEnumerable<string> candidates, int count) =>
        candidates
            .Select(candidate => (Candidate: candidate, Distance: Distance(name, candidate)))
            .OrderBy(pair => pair.Distance)
            .ThenBy(pair => pair.Candidate, StringComparer.Ordinal)
            .Take(count)
            .Select(pair => pair.Candidate)
            .ToArray();

    public static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
