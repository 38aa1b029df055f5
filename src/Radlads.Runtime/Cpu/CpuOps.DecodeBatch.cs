using Radlads.Ops;

namespace Radlads.Cpu;

/// <summary>
/// Multi-sequence decode (IOps.RopeRows …): the single-sequence reference op on each row, in parallel over the
/// sequences. Each row's arithmetic is exactly that of decoding its sequence alone, so batched decode on the CPU
/// gives bit-identical logits.
/// </summary>
public sealed partial class CpuOps
{
    public void RopeRows(Tensor x, int heads, int headDim, ReadOnlySpan<int> positions, float theta)
    {
        DecodeRowChecks.Rows(nameof(RopeRows), x, positions.Length);
        var p = positions.ToArray();
        For(p.Length, (long)heads * headDim * 8, b => Rope(x.Rows(b, 1), heads, headDim, p[b], theta));
    }

    public void ScatterRows(Tensor x, IReadOnlyList<Tensor> destinations, ReadOnlySpan<int> rows)
    {
        DecodeRowChecks.Scatter(x, destinations, rows);
        var xs = F(x);
        int width = x.RowLength;
        for (int b = 0; b < rows.Length; b++)
        {
            xs.Slice(b * width, width).CopyTo(F(destinations[b]).Slice(rows[b] * width, width));
        }
    }

    public void AttentionDecode(Tensor q, IReadOnlyList<Tensor> kCaches, IReadOnlyList<Tensor> vCaches, ReadOnlySpan<int> lengths,
        int heads, int kvHeads, int headDim, Tensor y)
    {
        DecodeRowChecks.Attention(q, kCaches, vCaches, lengths, y);
        var l = lengths.ToArray();
        For(l.Length, (long)heads * headDim * 2 * l.DefaultIfEmpty(0).Max(),
            b => Attention(q.Rows(b, 1), kCaches[b], vCaches[b], heads, kvHeads, headDim, l[b] - 1, y.Rows(b, 1)));
    }

    public void Wkv6Decode(Tensor r, Tensor k, Tensor v, Tensor w, IReadOnlyList<Tensor> states, float scale, Tensor y)
    {
        DecodeRowChecks.Rows(nameof(Wkv6Decode), r, states.Count);
        For(states.Count, states.Count == 0 ? 0 : states[0].ElementCount * 3,
            b => Wkv6(r.Rows(b, 1), k.Rows(b, 1), v.Rows(b, 1), w.Rows(b, 1), states[b], scale, y.Rows(b, 1)));
    }

    public void Wkv7Decode(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, IReadOnlyList<Tensor> states, Tensor y)
    {
        DecodeRowChecks.Rows(nameof(Wkv7Decode), r, states.Count);
        For(states.Count, states.Count == 0 ? 0 : states[0].ElementCount * 4,
            i => Wkv7(r.Rows(i, 1), w.Rows(i, 1), k.Rows(i, 1), v.Rows(i, 1), a.Rows(i, 1), b.Rows(i, 1), states[i], y.Rows(i, 1)));
    }

    public void TokenShiftRows(Tensor x, IReadOnlyList<Tensor> shiftStates, Tensor delta)
    {
        DecodeRowChecks.Rows(nameof(TokenShiftRows), x, shiftStates.Count);
        for (int b = 0; b < shiftStates.Count; b++)
        {
            TokenShift(x.Rows(b, 1), shiftStates[b], delta.Rows(b, 1));
        }
    }
}
