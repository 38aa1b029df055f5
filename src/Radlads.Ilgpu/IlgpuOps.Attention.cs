using Radlads.Ops;

namespace Radlads.Ilgpu;

internal sealed partial class IlgpuOps
{
    public void Rope(Tensor x, int heads, int headDim, int startPosition, float theta)
    {
        if (x.RowLength != heads * headDim || headDim % 2 != 0)
        {
            throw new ArgumentException($"Rope: {x.ShapeText} is not [T, {heads}·{headDim}] with an even head dim");
        }

        int tokens = x.RowCount;
        int half = headDim / 2;
        if (tokens == 0 || heads == 0 || half == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        long pairs = (long)tokens * heads * half;
        // Eager: rows start.., from a device zero; recorded: rows of the replay's position, read from the step buffer.
        var (cos, sin, position, offset) = backend.Recording
            ? backend.RecordedRope(theta, headDim, startPosition, tokens)
            : backend.RopeTable(theta, headDim, startPosition, tokens);
        K.Rope(S, Extent(pairs, nameof(Rope)), F(x), cos, sin, position, offset, heads, headDim);
    }

    public void AppendKv(Tensor k, Tensor v, Tensor kCache, Tensor vCache, int position)
    {
        DecodeRowChecks.AppendKv(k, v, kCache, vCache, position);
        long n = k.ElementCount;
        if (n == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        var (device, offset) = backend.PositionOf(position, k.RowCount, Math.Min(kCache.RowCount, vCache.RowCount));
        K.AppendKv(S, Extent(n, nameof(AppendKv)), F(k), F(v), F(kCache), F(vCache), k.RowLength, device, offset);
    }

    public void RepeatKv(Tensor x, int kvHeads, int headDim, int groups, Tensor y)
    {
        if (x.RowLength != kvHeads * headDim || y.RowLength != kvHeads * groups * headDim || x.RowCount != y.RowCount)
        {
            throw new ArgumentException($"RepeatKv: x {x.ShapeText}, y {y.ShapeText} for {kvHeads} KV heads × {groups}");
        }

        long n = (long)x.RowCount * kvHeads * groups * headDim;
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.RepeatKv(S, Extent(n, nameof(RepeatKv)), F(x), kvHeads, headDim, groups, F(y));
        }
    }

    /// <summary>Cached positions one group of the split decode attention takes (a constant: eager and recorded calls split alike).</summary>
    private const int AttentionDecodeChunk = 256;

    public void Attention(Tensor q, Tensor kCache, Tensor vCache, int heads, int kvHeads, int headDim, int startPosition, Tensor y)
    {
        int tokens = q.RowCount;
        int kvWidth = kvHeads * headDim;
        int width = heads * headDim;
        if (q.RowLength != width || kCache.RowLength != kvWidth || vCache.RowLength != kvWidth
            || startPosition + tokens > kCache.RowCount || heads % kvHeads != 0)
        {
            throw new ArgumentException($"Attention: q {q.ShapeText}, cache {kCache.ShapeText}, start {startPosition}");
        }

        Fits(y, (long)tokens * width, nameof(Attention));
        bool fused = !backend.ThreadPerOutputKernels && !backend.Baseline && headDim <= Kernels.AttentionKernels.MaxHeadDim;
        if (backend.Recording && !fused)
        {
            throw new InvalidOperationException(
                $"Attention with head dim {headDim} cannot be part of a recorded step (the fused kernel takes up to {Kernels.AttentionKernels.MaxHeadDim}); set RADLADS_ILGPU_GRAPHS=0");
        }

        if (tokens == 0 || heads == 0 || headDim == 0)
        {
            return;
        }

        float scale = 1f / MathF.Sqrt(headDim);
        using var scope = backend.Enter();
        var qs = F(q);
        var ys = F(y);
        var ks = F(kCache);
        var vs = F(vCache);
        if (fused && tokens == 1)
        {
            // Decode: split over the cache, AttentionDecodeChunk positions a group, then one combine launch. The grid is
            // sized for the cache's rows and the live length is read on the device, so a recorded step attends to the
            // replayed position's length with the same grid, and eager and recorded calls compute the same splits.
            var (position, start) = backend.PositionOf(startPosition, tokens, kCache.RowCount);
            int splits = (kCache.RowCount + AttentionDecodeChunk - 1) / AttentionDecodeChunk;
            using var partial = backend.AllocateUninitialized(heads * splits, headDim + 2);
            K.AttentionDecodeSplit(S, Groups((long)heads * splits, nameof(Attention)), qs, ks, vs, heads, kvHeads, headDim, position, start,
                AttentionDecodeChunk, splits, scale, F(partial));
            K.AttentionDecodeCombine(S, Groups(heads, nameof(Attention)), F(partial), heads, headDim, position, start, AttentionDecodeChunk, splits, ys);
            return;
        }

        if (fused)
        {
            // Prefill: one launch, a group per (token, head), online softmax over the positions.
            var (position, start) = backend.PositionOf(startPosition, tokens, kCache.RowCount);
            K.AttentionFused(S, Groups((long)tokens * heads, nameof(Attention)), qs, ks, vs, heads, kvHeads, headDim, position, start, scale, ys);
            return;
        }

        // The CPU simulator's path (no barriers per block of positions), and head dims beyond the fused kernel's:
        // three launches per slice of query rows: scores, softmax in place, weighted sum of values. A slice's scores
        // [rows·H, start + rows] are bounded by MaxScoreFloats.
        long longest = (long)startPosition + tokens;
        int rowsPerSlice = (int)Math.Clamp(IlgpuBackend.MaxScoreFloats / (heads * longest), 1, tokens);
        for (int first = 0; first < tokens; first += rowsPerSlice)
        {
            int rows = Math.Min(rowsPerSlice, tokens - first);
            int start = startPosition + first;
            int stride = start + rows;
            long count = (long)rows * heads * stride;
            var scores = backend.Scores(count);
            var qSlice = qs.SubView((long)first * width, (long)rows * width);
            var ySlice = ys.SubView((long)first * width, (long)rows * width);
            K.AttentionScores(S, Extent(count, nameof(Attention)), qSlice, ks, heads, kvHeads, headDim, stride, start, scale, scores);
            K.AttentionSoftmax(S, Groups((long)rows * heads, nameof(Attention)), scores, heads, stride, start);
            K.AttentionOutput(S, Extent((long)rows * width, nameof(Attention)), scores, vs, heads, kvHeads, headDim, stride, start, ySlice);
        }
    }
}
