namespace Radlads.Ops;

/// <summary>Argument checks shared by every backend's multi-sequence decode ops (<see cref="IOps.AttentionDecode"/> …).</summary>
public static class DecodeRowChecks
{
    /// <summary>x must have one row per sequence.</summary>
    public static void Rows(string op, Tensor x, int sequences)
    {
        if (x.RowCount != sequences)
        {
            throw new ArgumentException($"{op}: {x.ShapeText} has {x.RowCount} rows for {sequences} sequences; pass one row per sequence");
        }
    }

    /// <summary>k, v [T, W] fit rows position .. position + T − 1 of the caches [S, W] (<see cref="IOps.AppendKv"/>).</summary>
    public static void AppendKv(Tensor k, Tensor v, Tensor kCache, Tensor vCache, int position)
    {
        int w = k.RowLength;
        if (v.RowCount != k.RowCount || v.RowLength != w || kCache.RowLength != w || vCache.RowLength != w
            || position < 0 || (long)position + k.RowCount > Math.Min(kCache.RowCount, vCache.RowCount))
        {
            throw new ArgumentException(
                $"AppendKv: k {k.ShapeText}, v {v.ShapeText} do not fit rows {position}.. of caches {kCache.ShapeText}, {vCache.ShapeText}; reserve the cache first");
        }
    }

    public static void Scatter(Tensor x, IReadOnlyList<Tensor> destinations, ReadOnlySpan<int> rows)
    {
        Rows("ScatterRows", x, rows.Length);
        if (destinations.Count != rows.Length)
        {
            throw new ArgumentException($"ScatterRows: {destinations.Count} destinations for {rows.Length} rows");
        }

        for (int b = 0; b < rows.Length; b++)
        {
            if (destinations[b].RowLength != x.RowLength || rows[b] < 0 || rows[b] >= destinations[b].RowCount)
            {
                throw new ArgumentException($"ScatterRows: row {rows[b]} of destination {b} {destinations[b].ShapeText} cannot take a row of {x.ShapeText}");
            }
        }
    }

    public static void Attention(Tensor q, IReadOnlyList<Tensor> kCaches, IReadOnlyList<Tensor> vCaches, ReadOnlySpan<int> lengths, Tensor y)
    {
        Rows("AttentionDecode", q, lengths.Length);
        Rows("AttentionDecode", y, lengths.Length);
        if (kCaches.Count != lengths.Length || vCaches.Count != lengths.Length)
        {
            throw new ArgumentException($"AttentionDecode: {kCaches.Count} key and {vCaches.Count} value caches for {lengths.Length} sequences");
        }

        for (int b = 0; b < lengths.Length; b++)
        {
            if (lengths[b] < 1 || lengths[b] > kCaches[b].RowCount || lengths[b] > vCaches[b].RowCount)
            {
                throw new ArgumentException($"AttentionDecode: sequence {b} has length {lengths[b]} but caches {kCaches[b].ShapeText}, {vCaches[b].ShapeText}; lengths count this step's key and fit the cache");
            }
        }
    }
}
