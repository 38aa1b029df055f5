using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// The fused ops whose IOps default composes other ops, each one launch here with the same fp32 operations as that
/// composition (so the same bits): RoPE + GQA (kernels/attention.cu rope_expand_f32, expand_kv_f32;
/// decode_batch.cu rope_expand_rows_f32) and scale + multiply (elementwise.cu scale_multiply_f32).
/// </summary>
internal sealed unsafe partial class CudaOps
{
    public void ScaleMultiply(Tensor a, float s, Tensor b, Tensor y)
    {
        backend.Enter();
        FusedOpChecks.ScaleMultiply(a, b, y);
        long n = a.ElementCount;
        ulong pa = P(a), pb = P(b), py = P(y);
        void** args = stackalloc void*[] { &pa, &s, &pb, &py, &n };
        Elementwise(K.ScaleMultiply, "scale_multiply_f32", n, args);
    }

    public void RopeExpand(Tensor r, Tensor k, Tensor? v, int heads, int kvHeads, int headDim, int startPosition, float theta,
        Tensor? kh, Tensor? vh)
    {
        backend.Enter();
        FusedOpChecks.RopeExpand(nameof(RopeExpand), r, k, v, heads, kvHeads, headDim, kh, vh);
        int tokens = r.RowCount;
        int groups = heads / kvHeads;
        int half = headDim / 2;
        ulong pr = P(r), pk = P(k), pv = Pointer(v), pkh = Pointer(kh), pvh = Pointer(vh);
        // As Rope: a recorded step reads the replay's position from the step buffer.
        ulong offset = backend.PositionOffset(ref startPosition);
        void** a = stackalloc void*[] { &pr, &pk, &pv, &pkh, &pvh, &tokens, &kvHeads, &groups, &headDim, &startPosition, &offset, &theta };
        Elementwise(K.RopeExpand, "rope_expand_f32", (long)tokens * kvHeads * groups * half, a);
    }

    public void ExpandKv(Tensor k, Tensor v, int heads, int kvHeads, int headDim, Tensor kh, Tensor vh)
    {
        backend.Enter();
        FusedOpChecks.ExpandKv(k, v, heads, kvHeads, headDim, kh, vh);
        int tokens = k.RowCount;
        int groups = heads / kvHeads;
        ulong pk = P(k), pv = P(v), pkh = P(kh), pvh = P(vh);
        void** a = stackalloc void*[] { &pk, &pv, &tokens, &kvHeads, &headDim, &groups, &pkh, &pvh };
        Elementwise(K.ExpandKv, "expand_kv_f32", (long)tokens * heads * headDim, a);
    }

    public void RopeExpandRows(Tensor r, Tensor k, Tensor? v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions, float theta,
        Tensor? kh, Tensor? vh)
    {
        backend.Enter();
        FusedOpChecks.RopeExpand(nameof(RopeExpandRows), r, k, v, heads, kvHeads, headDim, kh, vh);
        DecodeRowChecks.Rows(nameof(RopeExpandRows), r, positions.Length);
        NotRecordingRows(nameof(RopeExpandRows));
        int groups = heads / kvHeads;
        int width = heads * headDim, kvWidth = kvHeads * headDim;
        for (int first = 0; first < positions.Length; first += DecodeRows)
        {
            int rows = Math.Min(DecodeRows, positions.Length - first);
            var table = default(DecodeTable);
            for (int b = 0; b < rows; b++)
            {
                table.Value[b] = positions[first + b];
            }

            RopeExpandRowsChunk([RowPointer(r, first, width), RowPointer(k, first, kvWidth), v is null ? 0 : RowPointer(v, first, kvWidth),
                kh is null ? 0 : RowPointer(kh, first, width), vh is null ? 0 : RowPointer(vh, first, width)], rows, kvHeads, groups, headDim,
                table, theta);
        }
    }

    /// <summary>p: r, k, v, kh, vh row pointers (the last three 0 for RoPE only).</summary>
    private void RopeExpandRowsChunk(ReadOnlySpan<ulong> p, int rows, int kvHeads, int groups, int headDim, DecodeTable table, float theta)
    {
        ulong pr = p[0], pk = p[1], pv = p[2], pkh = p[3], pvh = p[4];
        void** a = stackalloc void*[] { &pr, &pk, &pv, &pkh, &pvh, &rows, &kvHeads, &groups, &headDim, &table, &theta };
        Elementwise(DK.RopeExpandRows, "rope_expand_rows_f32", (long)rows * kvHeads * (headDim / 2), a);
    }

    /// <summary>The device address of an optional tensor, 0 (a null pointer to the kernel) when absent.</summary>
    private static ulong Pointer(Tensor? t) => t is null ? 0 : P(t);
}
