using System.Globalization;

namespace Radlads.Ops;

/// <summary>
/// Environment variables that tune a backend (RADLADS_GEMV_BLOCKS_PER_SM and the like): unset means the default, and
/// anything but a value in range is an error that names the variable and the text, never a value silently clamped or
/// ignored (a measurement would then run a configuration nobody asked for).
/// </summary>
public static class TuningVariable
{
    /// <summary>
    /// <paramref name="text"/> (the variable's value; null when unset) as a whole number from <paramref name="min"/>
    /// to <paramref name="max"/>, <paramref name="unit"/> naming what it counts in the error.
    /// </summary>
    public static int? WholeNumber(string name, string? text, int min, int max, string unit)
    {
        if (text is null)
        {
            return null;
        }

        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
        {
            string range = max == int.MaxValue
                ? string.Create(CultureInfo.InvariantCulture, $"{min} or more")
                : string.Create(CultureInfo.InvariantCulture, $"from {min} to {max}");
            throw new RadladsException($"{name} must be a whole number of {unit} {range}, not '{text}'");
        }

        return n;
    }

    /// <summary>
    /// <paramref name="text"/> (null when unset) as a number in [<paramref name="min"/>, <paramref name="max"/>], or in
    /// (<paramref name="min"/>, <paramref name="max"/>] when <paramref name="minExcluded"/>; NaN and anything else is an
    /// error that says the variable must be <paramref name="range"/>.
    /// </summary>
    public static double? Number(string name, string? text, double min, bool minExcluded, double max, string range)
    {
        if (text is null)
        {
            return null;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
            || !(minExcluded ? v > min : v >= min) || !(v <= max))
        {
            throw new RadladsException($"{name} must be {range}, not '{text}'");
        }

        return v;
    }
}
