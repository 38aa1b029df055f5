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
}
