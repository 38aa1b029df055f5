namespace Radlads.Checkpoints;

/// <summary>Shape helpers shared by the reader, the writer and their error messages.</summary>
internal static class Shapes
{
    /// <summary>"[64, 32]", "[]" for a scalar.</summary>
    public static string Format(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>The element count, or null when it overflows a long.</summary>
    public static long? ElementCount(IReadOnlyList<int> shape)
    {
        long count = 1;
        foreach (var dim in shape)
        {
            if (dim < 0)
            {
                return null;
            }

            try
            {
                count = checked(count * dim);
            }
            catch (OverflowException)
            {
                return null;
            }
        }

        return count;
    }
}
