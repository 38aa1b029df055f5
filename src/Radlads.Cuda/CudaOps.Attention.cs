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

        if (backend.Recording && tokens != 1)
        {
            throw new InvalidOperationException($"Attention over {tokens} query rows cannot be part of a recorded step (a recorded step is one token)");
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
            AttentionDecode(P(q), pk, pv, heads, kvHeads, headDim, startPosition + 1, Math.Min(kCache.RowCount, vCache.RowCount), scale, P(y));
            return;
        }

        int start = 0;
        if (TensorCoreAttention(tokens, headDim, P(q), pk, pv, P(y)) is int tc)
        {
            // Tensor cores: K and V of the keys this call sees rounded to bf16 once (V transposed, padded to whole tiles
            // of 64 keys), then 64 query rows per block against double-buffered tiles of 64 keys.
            int keys = startPosition + tokens;
            int padded = (keys + 63) / 64 * 64;
            using var kb = backend.AllocateUninitialized(padded, kvWidth / 2);
            using var vtb = backend.AllocateUninitialized(kvWidth, padded / 2);
            ulong pkb = P(kb), pvtb = P(vtb);
            void** c = stackalloc void*[] { &pk, &pv, &keys, &padded, &kvWidth, &pkb, &pvtb };
            Elementwise(K.AttentionKvToBf16, "attention_kv_to_bf16", (long)padded * (kvWidth / 2), c);
            int slice = 0;
            // Prefill: o_proj reads y next (Qwen2Attention), so the kernel also writes y's bf16 copy when y is the whole
            // activation (one segment); see Bf16CopyFor. Saves f32_to_bf16_pairs' re-read (7B, T = 2048: ~27 µs a layer).
            var copy = Bf16CopyFor(y);
            ulong pyb = 0;
            void** f = stackalloc void*[] { &pq, &pkb, &pvtb, &padded, &slice, &heads, &kvHeads, &start, &scale, &py, &pyb };
            uint shared = (uint)(Kernels.TensorCoreAttentionSharedWords(headDim) * sizeof(uint));
            // gridDim.y is at most 65535 blocks of 64 rows: longer prefills go in slices.
            const int SliceRows = 65535 * 64;
            for (int first = 0; first < tokens; first += SliceRows)
            {
                slice = Math.Min(SliceRows, tokens - first);
                pq = P(q) + ((ulong)first * (ulong)width * sizeof(float));
                py = P(y) + ((ulong)first * (ulong)width * sizeof(float));
                pyb = copy is null ? 0UL : copy.Pointer + ((ulong)first * (ulong)width * sizeof(ushort));
                start = startPosition + first;
                backend.Launch(K.AttentionPrefillTc[tc], "attention_prefill_tc", (uint)heads, (uint)((slice + 63) / 64), 128, shared, f);
            }

            if (copy is not null)
            {
                backend.KeepBf16Copy(C(y), copy);
            }

            return;
        }

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
    /// The index into <see cref="Kernels.AttentionPrefillTc"/> when a prefill of <paramref name="tokens"/> rows at head
    /// dim <paramref name="headDim"/> runs on the tensor cores (bf16 operands): the backend has them on
    /// (<see cref="CudaBackend.AttentionTensorCores"/>, sm_80+), the head dim has a kernel and every pointer is 16-byte
    /// aligned (the kernels' float2 loads and stores need 8; every allocation of this backend gives 256, and row views
    /// of q and y move by multiples of 64 bytes at these head dims); else null and the fp32 kernel runs.
    /// </summary>
    internal int? TensorCoreAttention(int tokens, int headDim, ulong pq, ulong pk, ulong pv, ulong py)
    {
        bool aligned = ((pq | pk | pv | py) & 15) == 0;
        return backend.TakesTensorCoreAttention(tokens, headDim) && aligned ? Array.IndexOf(Kernels.TensorCoreAttentionHeadDims, headDim) : null;
    }

    public void AppendKv(Tensor k, Tensor v, Tensor kCache, Tensor vCache, int position)
    {
        backend.Enter();
        DecodeRowChecks.AppendKv(k, v, kCache, vCache, position);
        int tokens = k.RowCount;
        int w = k.RowLength;
        // A recorded step writes the rows of the replayed position, and covers positions while they fit the caches.
        ulong offset = backend.PositionOffset(ref position, tokens, Math.Min(kCache.RowCount, vCache.RowCount));
        ulong pk = P(k), pv = P(v), pkc = P(kCache), pvc = P(vCache);
        void** a = stackalloc void*[] { &pk, &pv, &pkc, &pvc, &tokens, &w, &position, &offset };
        Elementwise(K.AppendKv, "append_kv_f32", (long)tokens * w, a);
    }

    /// <summary>
    /// One query row per head against <paramref name="length"/> cached keys, split over the cache so that
    /// heads × splits fills the GPU about twice and no block takes more than 256 keys, then the splits combined
    /// (flash decoding). While recording, the length is read at replay (attention_split_f32): the grid has the splits
    /// of the longest length that fits <paramref name="capacity"/> rows, and the kernels derive the live chunk and split
    /// count from the replay's length exactly as this method does, so a replay equals an eager call bit for bit.
    /// </summary>
    private void AttentionDecode(ulong pq, ulong pk, ulong pv, int heads, int kvHeads, int headDim, int length, int capacity, float scale, ulong py)
    {
        // Enough blocks to fill the GPU twice, and at most 256 keys a block (64 a warp) for long caches.
        int baseSplits = (int)((2L * backend.Device.MultiprocessorCount + heads - 1) / heads);
        int chunk = DecodeChunk(length, baseSplits, out int splits);
        ulong offset = 0;
        if (backend.Recording)
        {
            // The split count is nondecreasing in the length before the chunk rounding: the capacity's bounds them all.
            // Rows up to the query's (length − 1) must exist at a replay's position.
            int last = length - 1;
            offset = backend.PositionOffset(ref last, 1, capacity);
            length = last + 1;
            splits = DecodeSplitBound(capacity, baseSplits);
        }

        using var partial = backend.AllocateUninitialized(heads * splits, headDim + 2);
        ulong pp = P(partial);
        void** a = stackalloc void*[] { &pq, &pk, &pv, &heads, &kvHeads, &headDim, &length, &chunk, &scale, &pp, &offset, &baseSplits };
        backend.Launch(K.AttentionSplit, "attention_split_f32", (uint)heads, (uint)splits, 128, 0, a);
        void** c = stackalloc void*[] { &pp, &heads, &splits, &headDim, &py, &offset, &length, &baseSplits };
        backend.Launch(K.AttentionCombine, "attention_combine_f32", (uint)heads, 1, 128, (uint)(splits * sizeof(float)), c);
    }

    /// <summary>Splits before the chunk rounding: at least <paramref name="baseSplits"/>, 256 keys a split, ≤ 8192, ≥ 32 keys a split.</summary>
    internal static int DecodeSplitBound(int length, int baseSplits)
    {
        long wanted = Math.Max(baseSplits, (length + 255L) / 256);
        return (int)Math.Clamp(Math.Min(wanted, 8192), 1, (length + 31) / 32);
    }

    /// <summary>The chunk of keys per split for <paramref name="length"/> keys, and the splits it needs (kernels/attention.cu's decode_chunk).</summary>
    internal static int DecodeChunk(int length, int baseSplits, out int splits)
    {
        splits = DecodeSplitBound(length, baseSplits);
        int chunk = (length + splits - 1) / splits;
        splits = (length + chunk - 1) / chunk;
        return chunk;
    }
}
