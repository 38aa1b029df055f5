namespace Radlads.Ops;

/// <summary>The argument checks of <see cref="IOps.Sample"/>, shared by every backend so they fail alike.</summary>
public static class SampleChecks
{
    /// <summary>Throws unless logits [B, V] fp32, 1 ≤ allowed ≤ V, B rows of parameters (each valid) and room for B ids.</summary>
    public static void Check(Tensor logits, int allowedVocabulary, ReadOnlySpan<SampleRow> rows, Span<int> ids)
    {
        if (logits.DType != Checkpoints.DType.F32)
        {
            throw new ArgumentException($"Sample: logits {logits.ShapeText} are {logits.DType}, not F32");
        }

        int b = logits.RowCount;
        int v = logits.RowLength;
        if (allowedVocabulary <= 0 || allowedVocabulary > v)
        {
            throw new ArgumentOutOfRangeException(nameof(allowedVocabulary), allowedVocabulary,
                $"Sample: must be in [1, {v}] (the length of a logits row)");
        }

        if (allowedVocabulary > 1 << 24)
        {
            throw new ArgumentOutOfRangeException(nameof(allowedVocabulary), allowedVocabulary,
                "Sample: vocabularies above 2^24 tokens are not supported (ids must fit the 24 low bits of a sort key)");
        }

        if (rows.Length != b)
        {
            throw new ArgumentException($"Sample: {rows.Length} rows of parameters for logits {logits.ShapeText}");
        }

        if (ids.Length < b)
        {
            throw new ArgumentException($"Sample: {ids.Length} ids cannot hold the {b} rows of {logits.ShapeText}");
        }

        for (int r = 0; r < rows.Length; r++)
        {
            CheckRow(rows[r], r);
        }
    }

    /// <summary>Throws unless temperature is finite ≥ 0, top-k ≥ 0, top-p in (0, 1], min-p in [0, 1), uniform in [0, 1).</summary>
    public static void CheckRow(SampleRow p, int row = 0)
    {
        if (!float.IsFinite(p.Temperature) || p.Temperature < 0f || p.TopK < 0 || !(p.TopP > 0f && p.TopP <= 1f)
            || !(p.MinP >= 0f && p.MinP < 1f) || !(p.Uniform >= 0.0 && p.Uniform < 1.0))
        {
            throw new ArgumentException(
                $"Sample: row {row} has invalid parameters {p}: temperature finite ≥ 0, top-k ≥ 0, top-p in (0, 1], min-p in [0, 1), uniform in [0, 1)");
        }
    }

    /// <summary>The message for a row whose logits cannot be sampled (the kernels report a code per row).</summary>
    public static RadladsException NonFinite(int row, int rows, int token, bool isNaN) =>
        new($"The model produced non-finite logits ({(isNaN ? "NaN" : "+Infinity")} for token {token}{RowText(row, rows)}); stopping instead of sampling from them");

    /// <summary>The message for a row of −Infinity only.</summary>
    public static RadladsException AllBanned(int row, int rows, int vocabulary) =>
        new($"The model produced non-finite logits (all {vocabulary} are -Infinity{RowText(row, rows)}); no token can be chosen");

    private static string RowText(int row, int rows) => rows > 1 ? $" in row {row}" : "";
}
