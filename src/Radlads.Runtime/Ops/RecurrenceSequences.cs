namespace Radlads.Ops;

/// <summary>The layout check of <see cref="IBackwardOps"/>'s batched recurrences, shared by the backends.</summary>
public static class RecurrenceSequences
{
    /// <summary>Rows per sequence and heads per sequence of a batched recurrence; a clear error when they do not split evenly.</summary>
    public static (int Length, int Heads) Split(string op, int sequences, Tensor r, Tensor state)
    {
        if (sequences <= 0 || r.RowCount % sequences != 0 || state.Shape.Length != 3 || state.Shape[0] % sequences != 0)
        {
            throw new ArgumentException(
                $"{op}: {sequences} sequences must split r {r.ShapeText} into equal row blocks and the state {state.ShapeText} " +
                "[S·H, N, N] into equal head blocks; pass rows S·L and a state of S·H heads");
        }

        return (r.RowCount / sequences, state.Shape[0] / sequences);
    }
}
