using System.Runtime.InteropServices;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// Multi-sequence decode (kernels/decode_batch.cu): one launch per <see cref="DecodeRows"/> sequences instead of one
/// per sequence. Each sequence's cache/state pointer and position travel in a <see cref="DecodeTable"/> passed by
/// value as a kernel argument, so nothing is uploaded and the launch needs no host synchronisation.
/// </summary>
internal sealed unsafe partial class CudaOps
{
    // DECODE_ROWS in decode_batch.cu.
    private const int DecodeRows = 64;

    // RKW_ROWS in decode_batch.cu: the value rows (one a warp) of a head that a rwkv7_rope_keys_wkv7_rows_f32 block runs.
    private const int Rwkv7RopeKeysWkv7RowsWarps = 8;

    private DecodeBatchKernels? decodeKernels;

    private DecodeBatchKernels DK => decodeKernels ??= new DecodeBatchKernels(K.Library);

    public void RopeRows(Tensor x, int heads, int headDim, ReadOnlySpan<int> positions, float theta)
    {
        backend.Enter();
        DecodeRowChecks.Rows(nameof(RopeRows), x, positions.Length);
        if (x.RowLength != heads * headDim || headDim % 2 != 0)
        {
            throw new ArgumentException($"RopeRows: {x.ShapeText} is not [B, {heads}·{headDim}] with an even head dim");
        }

        NotRecordingRows(nameof(RopeRows));
        int width = x.RowLength;
        for (int first = 0; first < positions.Length; first += DecodeRows)
        {
            int rows = Math.Min(DecodeRows, positions.Length - first);
            var table = default(DecodeTable);
            for (int b = 0; b < rows; b++)
            {
                table.Value[b] = positions[first + b];
            }

            RopeRowsChunk(RowPointer(x, first, width), rows, heads, headDim, table, theta);
        }
    }

    public void ScatterRows(Tensor x, IReadOnlyList<Tensor> destinations, ReadOnlySpan<int> rows)
    {
        backend.Enter();
        DecodeRowChecks.Scatter(x, destinations, rows);
        NotRecordingRows(nameof(ScatterRows));
        int width = x.RowLength;
        for (int first = 0; first < rows.Length; first += DecodeRows)
        {
            int count = Math.Min(DecodeRows, rows.Length - first);
            var table = default(DecodeTable);
            for (int b = 0; b < count; b++)
            {
                table.First[b] = P(destinations[first + b]);
                table.Value[b] = rows[first + b];
            }

            ScatterRowsChunk(RowPointer(x, first, width), count, width, table);
        }
    }

    public void AttentionDecode(Tensor q, IReadOnlyList<Tensor> kCaches, IReadOnlyList<Tensor> vCaches, ReadOnlySpan<int> lengths,
        int heads, int kvHeads, int headDim, Tensor y)
    {
        backend.Enter();
        DecodeRowChecks.Attention(q, kCaches, vCaches, lengths, y);
        int width = heads * headDim;
        int kvWidth = kvHeads * headDim;
        if (q.RowLength != width || y.RowLength != width || kvHeads <= 0 || heads % kvHeads != 0)
        {
            throw new ArgumentException($"AttentionDecode: q {q.ShapeText}, y {y.ShapeText} for {heads} heads, {kvHeads} KV heads of {headDim}");
        }

        for (int b = 0; b < lengths.Length; b++)
        {
            if (kCaches[b].RowLength != kvWidth || vCaches[b].RowLength != kvWidth)
            {
                throw new ArgumentException($"AttentionDecode: caches {kCaches[b].ShapeText}, {vCaches[b].ShapeText} of sequence {b} are not [S, {kvWidth}]");
            }
        }

        if (headDim > MaxAttentionHeadDim)
        {
            throw new NotSupportedException($"AttentionDecode: the CUDA kernel handles head dims up to {MaxAttentionHeadDim}, not {headDim}");
        }

        NotRecordingRows(nameof(AttentionDecode));
        float scale = 1f / MathF.Sqrt(headDim);
        for (int first = 0; first < lengths.Length; first += DecodeRows)
        {
            int rows = Math.Min(DecodeRows, lengths.Length - first);
            var table = default(DecodeTable);
            long keys = 0;
            int longest = 1;
            for (int b = 0; b < rows; b++)
            {
                table.First[b] = P(kCaches[first + b]);
                table.Second[b] = P(vCaches[first + b]);
                table.Value[b] = lengths[first + b];
                keys += lengths[first + b];
                longest = Math.Max(longest, lengths[first + b]);
            }

            // Blocks of 32 to 256 keys, enough of them (heads × Σ splits) to fill the GPU about twice; at most 1023
            // splits a sequence so that rows × splits fits gridDim.y.
            long perBlock = (heads * keys + (2L * backend.Device.MultiprocessorCount) - 1) / (2L * backend.Device.MultiprocessorCount);
            int chunk = (int)Math.Clamp(perBlock, 32, 256);
            chunk = Math.Max(chunk, (longest + 1022) / 1023);
            int maxSplits = (longest + chunk - 1) / chunk;
            using var partial = backend.AllocateUninitialized(rows * heads * maxSplits, headDim + 2);
            AttentionDecodeChunk(RowPointer(q, first, width), rows, heads, kvHeads, headDim, chunk, maxSplits, scale, table, P(partial),
                RowPointer(y, first, width));
        }
    }

    public void Wkv6Decode(Tensor r, Tensor k, Tensor v, Tensor w, IReadOnlyList<Tensor> states, float scale, Tensor y)
    {
        backend.Enter();
        var (heads, n) = DecodeStates(nameof(Wkv6Decode), r, states, k, v, w, y);
        int width = heads * n;
        for (int first = 0; first < states.Count; first += DecodeRows)
        {
            int rows = Math.Min(DecodeRows, states.Count - first);
            var table = StateTable(states, first, rows);
            Wkv6DecodeChunk([RowPointer(r, first, width), RowPointer(k, first, width), RowPointer(v, first, width),
                RowPointer(w, first, width), RowPointer(y, first, width)], rows, heads, n, scale, table);
        }
    }

    public void Wkv7Decode(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, IReadOnlyList<Tensor> states, Tensor y)
    {
        backend.Enter();
        var (heads, n) = DecodeStates(nameof(Wkv7Decode), r, states, w, k, v, a, b, y);
        if (n > Wkv7DecodeMaxHeadDim)
        {
            // The warp-per-row kernel keeps a row in registers; larger heads take the one-block-per-head kernel.
            for (int i = 0; i < states.Count; i++)
            {
                Wkv7(r.Rows(i, 1), w.Rows(i, 1), k.Rows(i, 1), v.Rows(i, 1), a.Rows(i, 1), b.Rows(i, 1), states[i], y.Rows(i, 1));
            }

            return;
        }

        int width = heads * n;
        for (int first = 0; first < states.Count; first += DecodeRows)
        {
            int rows = Math.Min(DecodeRows, states.Count - first);
            var table = StateTable(states, first, rows);
            Wkv7DecodeChunk([RowPointer(r, first, width), RowPointer(w, first, width), RowPointer(k, first, width),
                RowPointer(v, first, width), RowPointer(a, first, width), RowPointer(b, first, width), RowPointer(y, first, width)],
                rows, heads, n, table, 1f, 0);
        }
    }

    /// <summary>
    /// <see cref="Wkv7Decode"/> with y written as (y · scale) ⊙ gate by the recurrence kernel itself (the same two fp32
    /// roundings as scale_multiply_f32): one launch instead of two. One sequence takes wkv7_decode_f32 (as Wkv7 at T = 1
    /// does: batch-1 decode, recordable, its state pointer fixed), several wkv7_decode_rows_f32; head dims above
    /// Wkv7DecodeMaxHeadDim run the two ops.
    /// </summary>
    public void Wkv7DecodeScaleGate(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, IReadOnlyList<Tensor> states, float scale,
        Tensor gate, Tensor y)
    {
        backend.Enter();
        FusedOpChecks.Wkv7DecodeScaleGate(r, states, gate, y);
        var (heads, n) = DecodeStates(nameof(Wkv7DecodeScaleGate), r, states, w, k, v, a, b, gate, y);
        if (states.Count == 0 || heads == 0)
        {
            return;
        }

        if (n > Wkv7DecodeMaxHeadDim)
        {
            Wkv7Decode(r, w, k, v, a, b, states, y);
            ScaleMultiply(y, scale, gate, y);
            return;
        }

        int width = heads * n;
        if (states.Count == 1)
        {
            LaunchWkv7Decode([P(r), P(w), P(k), P(v), P(a), P(b), P(states[0]), P(y)], heads, n, scale, P(gate));
            return;
        }

        for (int first = 0; first < states.Count; first += DecodeRows)
        {
            int rows = Math.Min(DecodeRows, states.Count - first);
            var table = StateTable(states, first, rows);
            Wkv7DecodeChunk([RowPointer(r, first, width), RowPointer(w, first, width), RowPointer(k, first, width),
                RowPointer(v, first, width), RowPointer(a, first, width), RowPointer(b, first, width), RowPointer(y, first, width)],
                rows, heads, n, table, scale, RowPointer(gate, first, width));
        }
    }

    /// <summary>
    /// <see cref="IOps.Rwkv7RopeKeysWkv7Rows"/> as one launch a <see cref="DecodeRows"/> rows
    /// (rwkv7_rope_keys_wkv7_rows_f32_e{1,2,4,8}): the RoPE/keys/residual vectors of a head stay in shared memory, so r, k, kh,
    /// removal, replacement and kTilde are not written. One row may be part of a recorded step (its position comes from
    /// the step buffer, as Rope's; its state pointer is fixed); several may not. Head dims above the keys' or the
    /// recurrence's register limit, and <see cref="CudaBackend.FuseRopeKeysWkv7"/> off, run the two ops.
    /// </summary>
    public void Rwkv7RopeKeysWkv7Rows(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions,
        float theta, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor kh, Tensor vh, Tensor removal,
        Tensor replacement, Tensor kTilde, Tensor? vFirst, Tensor? nu, IReadOnlyList<Tensor> states, float scale, Tensor gate, Tensor y)
    {
        backend.Enter();
        FusedOpChecks.RopeKeysWkv7Rows(r, k, v, heads, kvHeads, headDim, positions, w, a, keyScale, iclrMix, balanced, kh, vh, vFirst, nu,
            states, gate, y);
        var (stateHeads, n) = DecodeStates(nameof(Rwkv7RopeKeysWkv7Rows), r, states, w, vh, gate, y);
        if (states.Count > 0 && (stateHeads != heads || n != headDim))
        {
            throw new ArgumentException($"{nameof(Rwkv7RopeKeysWkv7Rows)}: states {states[0].ShapeText} are not [{heads}, {headDim}, {headDim}]");
        }

        if (headDim > KeysMaxHeadDim || headDim > Wkv7DecodeMaxHeadDim || !backend.FuseRopeKeysWkv7)
        {
            Rwkv7RopeKeysValueResidualRows(r, k, v, heads, kvHeads, headDim, positions, theta, w, a, keyScale, iclrMix, balanced, kh, vh,
                removal, replacement, kTilde, vFirst, nu);
            Wkv7DecodeScaleGate(r, w, kTilde, vh, removal, replacement, states, scale, gate, y);
            return;
        }

        if (positions.Length > 1)
        {
            NotRecordingRows(nameof(Rwkv7RopeKeysWkv7Rows));
        }

        int width = heads * headDim, kvWidth = kvHeads * headDim;
        var (pkk, kkType) = balanced ? (0UL, 0) : Param(keyScale!, width);
        var (pka, kaType) = balanced ? (0UL, 0) : Param(iclrMix!, width);
        int groups = heads / kvHeads;
        int isBalanced = balanced ? 1 : 0, hasResidual = vFirst is null ? 0 : 1;
        int rows = 0;
        var table = default(DecodeTable);
        ulong offset = 0, pr = 0, pk = 0, pv = 0, pvh = 0, pw = 0, pa = 0, pf = 0, pn = 0, pg = 0, py = 0;
        void** args = stackalloc void*[] { &pr, &pk, &pv, &pvh, &rows, &kvHeads, &groups, &headDim, &table, &offset, &theta, &pw, &pa,
            &pkk, &kkType, &pka, &kaType, &isBalanced, &pf, &pn, &hasResidual, &py, &scale, &pg };
        int tiles = (headDim + Rwkv7RopeKeysWkv7RowsWarps - 1) / Rwkv7RopeKeysWkv7RowsWarps;
        // The smallest NE (keys a lane holds) with N ≤ 32·NE: the 7B head (128) takes e4, 106 → ~60 registers.
        int ne = headDim <= 32 ? 1 : headDim <= 64 ? 2 : headDim <= 128 ? 4 : 8;
        var (kernel, name) = (DK.Rwkv7RopeKeysWkv7[ne switch { 1 => 0, 2 => 1, 4 => 2, _ => 3 }], $"rwkv7_rope_keys_wkv7_rows_f32_e{ne}");
        for (int first = 0; first < positions.Length; first += DecodeRows)
        {
            rows = Math.Min(DecodeRows, positions.Length - first);
            table = StateTable(states, first, rows);
            offset = RowPositionTable(positions, first, rows, new Span<int>(table.Value, rows));

            (pr, pk, pv, pvh) = (RowPointer(r, first, width), RowPointer(k, first, kvWidth), RowPointer(v, first, kvWidth), RowPointer(vh, first, width));
            (pw, pa, pg, py) = (RowPointer(w, first, width), RowPointer(a, first, width), RowPointer(gate, first, width), RowPointer(y, first, width));
            pf = vFirst is null ? 0UL : RowPointer(vFirst, first, width);
            pn = nu is null ? 0UL : RowPointer(nu, first, width);
            backend.Launch(kernel, name, (uint)(rows * heads * tiles), 1, 32 * Rwkv7RopeKeysWkv7RowsWarps, 0, args);
            backend.RopeKeysWkv7Launches++;
        }
    }

    public void TokenShiftRows(Tensor x, IReadOnlyList<Tensor> shiftStates, Tensor delta)
    {
        backend.Enter();
        DecodeRowChecks.Rows(nameof(TokenShiftRows), x, shiftStates.Count);
        int c = x.RowLength;
        int width = c;
        if (delta.RowCount != x.RowCount || delta.RowLength != c || shiftStates.Any(s => s.ElementCount != width))
        {
            throw new ArgumentException($"TokenShiftRows: x {x.ShapeText}, delta {delta.ShapeText}, shift states of {c} elements each expected");
        }

        for (int first = 0; first < shiftStates.Count; first += DecodeRows)
        {
            int rows = Math.Min(DecodeRows, shiftStates.Count - first);
            var table = StateTable(shiftStates, first, rows);
            TokenShiftRowsChunk(RowPointer(x, first, c), rows, c, table, RowPointer(delta, first, c));
        }
    }

    private void RopeRowsChunk(ulong px, int rows, int heads, int headDim, DecodeTable table, float theta)
    {
        void** a = stackalloc void*[] { &px, &rows, &heads, &headDim, &table, &theta };
        Elementwise(DK.RopeRows, "rope_rows_f32", (long)rows * heads * (headDim / 2), a);
    }

    private void ScatterRowsChunk(ulong px, int rows, int width, DecodeTable table)
    {
        void** a = stackalloc void*[] { &px, &rows, &width, &table };
        Elementwise(DK.ScatterRows, "scatter_rows_f32", (long)rows * width, a);
    }

    private void AttentionDecodeChunk(ulong pq, int rows, int heads, int kvHeads, int headDim, int chunk, int maxSplits, float scale,
        DecodeTable table, ulong pp, ulong py)
    {
        void** s = stackalloc void*[] { &pq, &heads, &kvHeads, &headDim, &chunk, &maxSplits, &scale, &table, &pp };
        backend.Launch(DK.AttentionSplit, "attention_decode_rows_split_f32", (uint)heads, (uint)(rows * maxSplits), 128, 0, s);
        void** c = stackalloc void*[] { &pp, &heads, &headDim, &chunk, &maxSplits, &table, &py };
        backend.Launch(DK.AttentionCombine, "attention_decode_rows_combine_f32", (uint)heads, (uint)rows, 128,
            (uint)(maxSplits * sizeof(float)), c);
    }

    /// <summary>p: r, k, v, w, y row pointers.</summary>
    private void Wkv6DecodeChunk(ReadOnlySpan<ulong> p, int rows, int heads, int n, float scale, DecodeTable table)
    {
        ulong pr = p[0], pk = p[1], pv = p[2], pw = p[3], py = p[4];
        void** a = stackalloc void*[] { &pr, &pk, &pv, &pw, &scale, &heads, &n, &table, &py };
        uint threads = (uint)Math.Min(1024, (n + 31) / 32 * 32);
        backend.Launch(DK.Wkv6, "wkv6_decode_rows_f32", (uint)heads, (uint)rows, threads, 0, a);
    }

    /// <summary>p: r, w, k, v, a, b, y row pointers.</summary>
    /// <summary>p: r, w, k, v, a, b, y row pointers; gate 0 (plain y) or the gate's rows for y = (y · scale) ⊙ gate.</summary>
    private void Wkv7DecodeChunk(ReadOnlySpan<ulong> p, int rows, int heads, int n, DecodeTable table, float scale, ulong gate)
    {
        ulong pr = p[0], pw = p[1], pk = p[2], pv = p[3], pa = p[4], pb = p[5], py = p[6];
        void** args = stackalloc void*[] { &pr, &pw, &pk, &pv, &pa, &pb, &rows, &heads, &n, &table, &py, &scale, &gate };
        long warps = (long)rows * heads * n;
        backend.Launch(DK.Wkv7, "wkv7_decode_rows_f32", (uint)((warps * 32 + Threads - 1) / Threads), 1, Threads, 0, args);
    }

    private void TokenShiftRowsChunk(ulong px, int rows, int c, DecodeTable table, ulong pd)
    {
        void** a = stackalloc void*[] { &px, &rows, &c, &table, &pd };
        Elementwise(DK.TokenShift, "token_shift_rows_f32", (long)rows * c, a);
    }

    /// <summary>Device address of row <paramref name="row"/> of an fp32 [B, width] tensor.</summary>
    private static ulong RowPointer(Tensor t, int row, int width) => P(t) + ((ulong)row * (ulong)width * sizeof(float));

    private static DecodeTable StateTable(IReadOnlyList<Tensor> states, int first, int rows)
    {
        var table = default(DecodeTable);
        for (int b = 0; b < rows; b++)
        {
            table.First[b] = P(states[first + b]);
        }

        return table;
    }

    /// <summary>Checks B states of one shape [H, N, N] and B·H·N elements in every row tensor; returns (H, N).</summary>
    private static (int Heads, int N) DecodeStates(string op, Tensor r, IReadOnlyList<Tensor> states, params ReadOnlySpan<Tensor> rows)
    {
        DecodeRowChecks.Rows(op, r, states.Count);
        if (states.Count == 0)
        {
            return (0, 0);
        }

        var shape = states[0].Shape;
        if (shape.Length != 3 || shape[1] != shape[2] || shape[0] * shape[1] != r.RowLength
            || states.Any(s => !s.Shape.AsSpan().SequenceEqual(shape)))
        {
            throw new ArgumentException($"{op}: states must all be [H, N, N] with H·N = {r.RowLength} (first is {states[0].ShapeText})");
        }

        RecurrenceInputs(op, (long)states.Count * r.RowLength, rows);
        return (shape[0], shape[1]);
    }

    /// <summary>A recorded step would bake this launch's positions and cache pointers into the graph.</summary>
    private void NotRecordingRows(string op)
    {
        if (backend.Recording)
        {
            throw new InvalidOperationException($"{op} cannot be part of a recorded step: its positions and caches change every step");
        }
    }

    /// <summary>DecodeTable of decode_batch.cu: per sequence two device pointers and an int, passed by value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct DecodeTable
    {
        public fixed ulong First[DecodeRows];
        public fixed ulong Second[DecodeRows];
        public fixed int Value[DecodeRows];
    }

    /// <summary>The kernels of decode_batch.cu, resolved on first use.</summary>
    private sealed class DecodeBatchKernels(KernelLibrary library)
    {
        public nint RopeRows { get; } = library.Function("decode_batch.cu", "rope_rows_f32");

        public nint RopeExpandRows { get; } = library.Function("decode_batch.cu", "rope_expand_rows_f32");

        public nint ScatterRows { get; } = library.Function("decode_batch.cu", "scatter_rows_f32");

        public nint AttentionSplit { get; } = library.Function("decode_batch.cu", "attention_decode_rows_split_f32");

        public nint AttentionCombine { get; } = library.Function("decode_batch.cu", "attention_decode_rows_combine_f32");

        public nint Wkv6 { get; } = library.Function("decode_batch.cu", "wkv6_decode_rows_f32");

        public nint Wkv7 { get; } = library.Function("decode_batch.cu", "wkv7_decode_rows_f32");

        public nint[] Rwkv7RopeKeysWkv7 { get; } = [.. new[] { 1, 2, 4, 8 }.Select(ne => library.Function("decode_batch.cu", $"rwkv7_rope_keys_wkv7_rows_f32_e{ne}"))];

        public nint TokenShift { get; } = library.Function("decode_batch.cu", "token_shift_rows_f32");
    }
}
