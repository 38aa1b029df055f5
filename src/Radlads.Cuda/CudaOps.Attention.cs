using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaOps
{
    // attention.cu keeps up to 8 elements of a head per lane.
    private const int MaxAttentionHeadDim = 256;

    public void Rope(Tensor x, int heads, int headDim, int startPosition, float theta)
    {
        backend.Enter();
        if (x.RowLength != heads * headDim || headDim % 2 != 0)
        {
            throw new ArgumentException($"Rope: {x.ShapeText} is not [T, {heads}·{headDim}] with an even head dim");
        }

        int tokens = x.RowCount;
        ulong px = P(x);
        ulong offset = backend.PositionOffset(ref startPosition);
        void** a = stackalloc void*[] { &px, &tokens, &heads, &headDim, &startPosition, &offset, &theta };
        Elementwise(K.Rope, "rope_f32", (long)tokens * heads * (headDim / 2), a);
    }

    public void RepeatKv(Tensor x, int kvHeads, int headDim, int groups, Tensor y)
    {
        backend.Enter();
        if (x.RowLength != kvHeads * headDim || y.RowLength != kvHeads * groups * headDim || x.RowCount != y.RowCount)
        {
            throw new ArgumentException($"RepeatKv: x {x.ShapeText}, y {y.ShapeText} for {kvHeads} KV heads × {groups}");
        }

        int tokens = x.RowCount;
        ulong px = P(x), py = P(y);
        void** a = stackalloc void*[] { &px, &tokens, &kvHeads, &headDim, &groups, &py };
        Elementwise(K.RepeatKv, "repeat_kv_f32", (long)tokens * kvHeads * groups * headDim, a);
    }

    public void Attention(Tensor q, Tensor kCache, Tensor vCache, int heads, int kvHeads, int headDim, int startPosition, Tensor y)
    {
        backend.Enter();
        int tokens = q.RowCount;
        int kvWidth = kvHeads * headDim;
        int width = heads * headDim;
        if (q.RowLength != width || kCache.RowLength != kvWidth || vCache.RowLength != kvWidth
            || startPosition + tokens > kCache.RowCount || heads % kvHeads != 0)
        {
            throw new ArgumentException($"Attention: q {q.ShapeText}, cache {kCache.ShapeText}, start {startPosition}");
        }

        if (backend.Recording)
        {
            throw new InvalidOperationException("Attention cannot be part of a recorded step: its cache rows depend on the position");
        }

        if (headDim > MaxAttentionHeadDim)
        {
            throw new NotSupportedException($"Attention: the CUDA kernel handles head dims up to {MaxAttentionHeadDim}, not {headDim}");
        }

        Fits(y, (long)tokens * width, nameof(Attention));
        float scale = 1f / MathF.Sqrt(headDim);
        ulong pk = P(kCache), pv = P(vCache), pq = 0, py = 0;
        if (tokens == 1)
        {
            AttentionDecode(P(q), pk, pv, heads, kvHeads, headDim, startPosition + 1, scale, P(y));
            return;
        }

        int start = 0;
        long prefillShared = ((16L * headDim) + (32L * (headDim + 1)) + (32L * headDim)) * sizeof(float);
        if (prefillShared <= K.MaxDynamicShared)
        {
            // Flash-attention style: 16 query rows per block, keys and values staged in tiles of 32.
            int slice = 0;
            void** f = stackalloc void*[] { &pq, &pk, &pv, &slice, &heads, &kvHeads, &headDim, &start, &scale, &py };
            // gridDim.y is at most 65535 blocks of 16 rows: longer prefills go in slices.
            const int SliceRows = 65535 * 16;
            for (int first = 0; first < tokens; first += SliceRows)
            {
                slice = Math.Min(SliceRows, tokens - first);
                pq = P(q) + ((ulong)first * (ulong)width * sizeof(float));
                py = P(y) + ((ulong)first * (ulong)width * sizeof(float));
                start = startPosition + first;
                backend.Launch(K.AttentionPrefill, "attention_prefill_f32", (uint)heads, (uint)((slice + 15) / 16), 128, (uint)prefillShared, f);
            }

            return;
        }

        void** a = stackalloc void*[] { &pq, &pk, &pv, &heads, &kvHeads, &headDim, &start, &scale, &py };
        // gridDim.y is at most 65535: long prefills go in slices of query rows.
        for (int first = 0; first < tokens; first += 65535)
        {
            int rows = Math.Min(65535, tokens - first);
            pq = P(q) + ((ulong)first * (ulong)width * sizeof(float));
            py = P(y) + ((ulong)first * (ulong)width * sizeof(float));
            start = startPosition + first;
            backend.Launch(K.Attention, "attention_f32", (uint)heads, (uint)rows, 128, 0, a);
        }
    }

    /// <summary>
    /// One query row per head against <paramref name="length"/> cached keys, split over the cache so that
    /// heads × splits fills the GPU about twice and no block takes more than 256 keys, then the splits combined
    /// (flash decoding).
    /// </summary>
    private void AttentionDecode(ulong pq, ulong pk, ulong pv, int heads, int kvHeads, int headDim, int length, float scale, ulong py)
    {
        // Enough blocks to fill the GPU twice, and at most 256 keys a block (64 a warp) for long caches.
        long wanted = Math.Max((2L * backend.Device.MultiprocessorCount + heads - 1) / heads, (length + 255L) / 256);
        int splits = (int)Math.Clamp(Math.Min(wanted, 8192), 1, (length + 31) / 32);
        int chunk = (length + splits - 1) / splits;
        splits = (length + chunk - 1) / chunk;
        using var partial = backend.AllocateUninitialized(heads * splits, headDim + 2);
        ulong pp = P(partial);
        void** a = stackalloc void*[] { &pq, &pk, &pv, &heads, &kvHeads, &headDim, &length, &chunk, &scale, &pp };
        backend.Launch(K.AttentionSplit, "attention_split_f32", (uint)heads, (uint)splits, 128, 0, a);
        void** c = stackalloc void*[] { &pp, &heads, &splits, &headDim, &py };
        backend.Launch(K.AttentionCombine, "attention_combine_f32", (uint)heads, 1, 128, (uint)(splits * sizeof(float)), c);
    }
}
