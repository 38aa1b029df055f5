using System.Runtime.InteropServices;
using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaOps
{
    // log w = −e^−0.5 · σ(z), rounded to fp32 as the CPU reference rounds it.
    private static readonly float Rwkv7DecayScale = (float)-Math.Exp(-0.5);

    // wkv7_decode_f32 keeps up to 8 elements of a state row per lane.
    private const int Wkv7DecodeMaxHeadDim = 256;

    // rwkv7_keys_vres_f32 keeps up to 8 elements of a head per lane.
    private const int KeysMaxHeadDim = 256;

    /// <summary>
    /// (token, head) items from which rwkv7_keys_vres_f32 runs eight warps a block: a 0.5B layer's 2,048-token prefill
    /// (28,672 items) took 35 µs in one-warp blocks, ~2× its bytes at the copy bandwidth (H200, nineteenth session).
    /// </summary>
    internal const long KeysWarpBlocksFrom = 1024;

    public void Rwkv7Decay(Tensor z, Tensor w0, Tensor w)
    {
        backend.Enter();
        int width = z.RowLength;
        var (pb, bType) = Param(w0, width);
        long n = z.ElementCount;
        Fits(w, n, nameof(Rwkv7Decay));
        ulong pz = P(z), pw = P(w);
        float scale = Rwkv7DecayScale;
        void** a = stackalloc void*[] { &pz, &pb, &bType, &scale, &pw, &n, &width };
        Elementwise(K.Rwkv7Decay, "rwkv7_decay_f32", n, a);
    }

    public void Rwkv7Keys(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor removal, Tensor replacement, Tensor kTilde)
    {
        backend.Enter();
        int width = k.RowLength;
        if (headDim <= 0 || width % headDim != 0 || w.ElementCount != k.ElementCount || a.ElementCount != k.ElementCount)
        {
            throw new ArgumentException($"Rwkv7Keys: k {k.ShapeText}, w {w.ShapeText}, a {a.ShapeText}, head dim {headDim}");
        }

        if (!balanced && (keyScale is null || iclrMix is null))
        {
            throw new ArgumentException("Rwkv7Keys: stock keys need k_k and k_a");
        }

        var (pkk, kkType) = balanced ? (0UL, 0) : Param(keyScale!, width);
        var (pka, kaType) = balanced ? (0UL, 0) : Param(iclrMix!, width);
        long n = k.ElementCount;
        Fits(removal, n, nameof(Rwkv7Keys));
        Fits(replacement, n, nameof(Rwkv7Keys));
        Fits(kTilde, n, nameof(Rwkv7Keys));
        int tokens = k.RowCount;
        long warps = (long)tokens * (width / headDim);
        if (warps == 0)
        {
            return;
        }

        ulong pk = P(k), pw = P(w), pa = P(a), prem = P(removal), prep = P(replacement), pkt = P(kTilde);
        int isBalanced = balanced ? 1 : 0;
        void** args = stackalloc void*[] { &pk, &pw, &pa, &pkk, &kkType, &pka, &kaType, &tokens, &width, &headDim, &isBalanced, &prem, &prep, &pkt };
        const uint block = 128;
        backend.Launch(K.Rwkv7Keys, "rwkv7_keys_f32", (uint)((warps * 32 + block - 1) / block), 1, block, 0, args);
    }

    /// <summary>
    /// Keys and value residual in one launch (rwkv7_keys_vres_f32: a warp per (token, head), k held in registers; one
    /// warp a block below <see cref="KeysWarpBlocksFrom"/> items, eight from there), the same bits as
    /// <see cref="Rwkv7Keys"/> then <see cref="Rwkv7ValueResidual"/>. Head dims above 256 (more than 8 elements a lane)
    /// run as those two ops.
    /// </summary>
    public void Rwkv7KeysValueResidual(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor removal, Tensor replacement, Tensor kTilde, Tensor v, Tensor? vFirst, Tensor? nu)
    {
        backend.Enter();
        FusedOpChecks.KeysValueResidual(k, w, a, keyScale, iclrMix, headDim, balanced, v, vFirst, nu);
        if (headDim > KeysMaxHeadDim)
        {
            Rwkv7Keys(k, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde);
            if (vFirst is not null)
            {
                Rwkv7ValueResidual(v, vFirst, nu!, v);
            }

            return;
        }

        int width = k.RowLength;

        var (pkk, kkType) = balanced ? (0UL, 0) : Param(keyScale!, width);
        var (pka, kaType) = balanced ? (0UL, 0) : Param(iclrMix!, width);
        long n = k.ElementCount;
        Fits(removal, n, nameof(Rwkv7KeysValueResidual));
        Fits(replacement, n, nameof(Rwkv7KeysValueResidual));
        Fits(kTilde, n, nameof(Rwkv7KeysValueResidual));
        int tokens = k.RowCount;
        long items = (long)tokens * (width / headDim);
        if (items == 0)
        {
            return;
        }

        ulong pk = P(k), pw = P(w), pa = P(a), prem = P(removal), prep = P(replacement), pkt = P(kTilde), pv = P(v);
        ulong pf = vFirst is null ? 0UL : P(vFirst), pn = nu is null ? 0UL : P(nu);
        int isBalanced = balanced ? 1 : 0, hasResidual = vFirst is null ? 0 : 1;
        void** args = stackalloc void*[] { &pk, &pw, &pa, &pkk, &kkType, &pka, &kaType, &tokens, &width, &headDim, &isBalanced,
            &prem, &prep, &pkt, &pv, &pf, &pn, &hasResidual };
        uint warps = items >= KeysWarpBlocksFrom ? 8u : 1u;
        backend.Launch(K.Rwkv7KeysValueResidual, "rwkv7_keys_vres_f32", (uint)((items + warps - 1) / warps), 1, 32 * warps, 0, args);
    }

    /// <summary>
    /// One launch of rwkv7_rope_keys_rows_f32 per 64 rows (a 32-thread block per row and query head): the same bits as
    /// RopeExpandRows then Rwkv7KeysValueResidual; k is only read. One row may be recorded (a batch-1 step: its position
    /// comes from the step buffer, as Rope's); several may not. Head dims above KeysMaxHeadDim run the two ops.
    /// </summary>
    public void Rwkv7RopeKeysValueResidualRows(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions,
        float theta, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor kh, Tensor vh, Tensor removal,
        Tensor replacement, Tensor kTilde, Tensor? vFirst, Tensor? nu)
    {
        backend.Enter();
        FusedOpChecks.RopeKeysValueResidualRows(r, k, v, heads, kvHeads, headDim, positions, w, a, keyScale, iclrMix, balanced, kh, vh,
            vFirst, nu);
        if (headDim > KeysMaxHeadDim)
        {
            RopeExpandRows(r, k, v, heads, kvHeads, headDim, positions, theta, kh, vh);
            Rwkv7KeysValueResidual(kh, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde, vh, vFirst, nu);
            return;
        }

        int width = heads * headDim, kvWidth = kvHeads * headDim;
        long n = (long)r.RowCount * width;
        Fits(removal, n, nameof(Rwkv7RopeKeysValueResidualRows));
        Fits(replacement, n, nameof(Rwkv7RopeKeysValueResidualRows));
        Fits(kTilde, n, nameof(Rwkv7RopeKeysValueResidualRows));
        if (positions.Length > 1)
        {
            NotRecordingRows(nameof(Rwkv7RopeKeysValueResidualRows));
        }

        var (pkk, kkType) = balanced ? (0UL, 0) : Param(keyScale!, width);
        var (pka, kaType) = balanced ? (0UL, 0) : Param(iclrMix!, width);
        int groups = heads / kvHeads;
        int isBalanced = balanced ? 1 : 0, hasResidual = vFirst is null ? 0 : 1;
        int rows = 0;
        var table = default(RowPositions);
        ulong offset = 0, pr = 0, pk = 0, pv = 0, pkh = 0, pvh = 0, pw = 0, pa = 0, prem = 0, prep = 0, pkt = 0, pf = 0, pn = 0;
        void** args = stackalloc void*[] { &pr, &pk, &pv, &pkh, &pvh, &rows, &kvHeads, &groups, &headDim, &table, &offset, &theta,
            &pw, &pa, &pkk, &kkType, &pka, &kaType, &isBalanced, &prem, &prep, &pkt, &pf, &pn, &hasResidual };
        for (int first = 0; first < positions.Length; first += DecodeRows)
        {
            rows = Math.Min(DecodeRows, positions.Length - first);
            offset = RowPositionTable(positions, first, rows, new Span<int>(table.Value, rows));

            (pr, pk, pv) = (RowPointer(r, first, width), RowPointer(k, first, kvWidth), RowPointer(v, first, kvWidth));
            (pkh, pvh, pw, pa) = (RowPointer(kh, first, width), RowPointer(vh, first, width), RowPointer(w, first, width), RowPointer(a, first, width));
            (prem, prep, pkt) = (RowPointer(removal, first, width), RowPointer(replacement, first, width), RowPointer(kTilde, first, width));
            pf = vFirst is null ? 0UL : RowPointer(vFirst, first, width);
            pn = nu is null ? 0UL : RowPointer(nu, first, width);
            backend.Launch(K.Rwkv7RopeKeysRows, "rwkv7_rope_keys_rows_f32", (uint)(rows * heads), 1, 32, 0, args);
        }
    }

    /// <summary>
    /// Positions [first, first + rows) into a kernel's position table; returns the step-buffer offset pointer a lone row
    /// adds to its position (as Rope: a recorded step reads the replay's position from there; 0 outside a recording).
    /// </summary>
    private ulong RowPositionTable(ReadOnlySpan<int> positions, int first, int rows, Span<int> table)
    {
        ulong offset = 0;
        for (int b = 0; b < rows; b++)
        {
            int position = positions[first + b];
            if (rows == 1)
            {
                offset = backend.PositionOffset(ref position);
            }

            table[b] = position;
        }

        return offset;
    }

    /// <summary>RowPositions of rwkv7.cu: the positions of up to DecodeRows rows, passed by value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct RowPositions
    {
        public fixed int Value[DecodeRows];
    }

    public void Rwkv7ValueResidual(Tensor v, Tensor vFirst, Tensor nu, Tensor y)
    {
        backend.Enter();
        SameCount(v, vFirst, nameof(Rwkv7ValueResidual));
        SameCount(v, nu, nameof(Rwkv7ValueResidual));
        long n = v.ElementCount;
        Fits(y, n, nameof(Rwkv7ValueResidual));
        ulong pv = P(v), pf = P(vFirst), pn = P(nu), py = P(y);
        void** a = stackalloc void*[] { &pv, &pf, &pn, &py, &n };
        Elementwise(K.Rwkv7ValueResidual, "rwkv7_value_residual_f32", n, a);
    }

    /// <summary>
    /// Queues Wkv7 for T &gt; 1 and head dim ≤ 256 over `sequences` sequences of `tokens` rows (grid y; states heads·n·n
    /// apart): the chunked kernels where they apply (<see cref="TakesWkv7Chunked"/>: long prompts at head dims 64 and 128),
    /// otherwise wkv7_tile_f32 (a thread holds R rows × 32·NE/L keys, L lanes a row), bit-identical to T calls of the
    /// decode kernel.
    /// </summary>
    internal static void LaunchWkv7Prefill(CudaBackend backend, ulong pr, ulong pw, ulong pk, ulong pv, ulong pa, ulong pb,
        ulong ps, int tokens, int heads, int n, ulong py, int sequences)
    {
        if (TakesWkv7Chunked(backend, tokens, n, [pr, pw, pk, pv, pa, pb, ps, py]))
        {
            LaunchWkv7Chunked(backend, pr, pw, pk, pv, pa, pb, ps, tokens, heads, n, py, sequences);
            return;
        }

        var tile = Wkv7TileGeometry(heads, n, backend.Wkv7TileRows, backend.Wkv7TileLanes);
        int tileChunk = tile.Chunk;
        void** args = stackalloc void*[] { &pr, &pw, &pk, &pv, &pa, &pb, &ps, &tokens, &heads, &n, &tileChunk, &py };
        // Launched plainly (see CudaBackend.Launch's programmatic): its blocks are one latency-bound wave.
        backend.Launch(backend.Kernels.Wkv7Tile[tile.Kernel], "wkv7_tile_f32", tile.Blocks, (uint)sequences, Wkv7TileThreads,
            tile.SharedBytes, args, programmatic: false);
    }

    // WKV7_TILE_WARPS in rwkv7.cu.
    private const int Wkv7TileThreads = 128;

    /// <summary>The wkv7_tile_f32 instantiations in rwkv7.cu (WKV7_TILE(NE, R, L)): keys per virtual lane, rows a thread, lanes a row.</summary>
    internal static readonly (int Ne, int Rows, int Lanes)[] Wkv7TileKernels =
    [
        (1, 1, 8), (2, 1, 8), (4, 1, 8), (8, 1, 8), (1, 2, 8), (2, 2, 8), (4, 2, 8), (8, 2, 8), (2, 2, 16), (4, 2, 16), (8, 2, 16),
    ];

    /// <summary>
    /// wkv7_tile_f32's launch: NE = the power of two with 32·NE ≥ n; L = 16 lanes a row where asked for, the rows a
    /// thread are 2 and 32·NE ≤ 128 (a lane then holds 2·NE keys, read as float4: NE ≥ 2; otherwise 8); blocks of
    /// (32/L)·R·4 rows of one head; chunks of 16 tokens (8 at head dim &gt; 128) double-buffered: 2 · chunk · (5 · 32·NE
    /// + rows) floats.
    /// </summary>
    internal static ((int Ne, int Rows, int Lanes) Kernel, uint Blocks, int Chunk, uint SharedBytes) Wkv7TileGeometry(int heads, int n,
        int rowsPerThread, int lanesPerRow)
    {
        int ne = 1;
        while (32 * ne < n)
        {
            ne *= 2;
        }

        int lanes = 8;
        if (lanesPerRow == 16 && rowsPerThread == 2 && ne <= 4)
        {
            ne = Math.Max(ne, 2);
            lanes = 16;
        }

        int padded = 32 * ne;
        int rows = 32 / lanes * rowsPerThread * (Wkv7TileThreads / 32);
        int chunk = padded <= 128 ? 16 : 8;
        uint shared = (uint)(2 * chunk * ((5 * padded) + rows) * sizeof(float));
        return ((ne, rowsPerThread, lanes), (uint)(heads * ((n + rows - 1) / rows)), chunk, shared);
    }

    public void Wkv7(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state, Tensor y)
    {
        backend.Enter();
        int width = r.RowLength;
        int tokens = r.RowCount;
        if (state.Shape.Length != 3 || state.Shape[1] != state.Shape[2] || state.Shape[0] * state.Shape[1] != width)
        {
            throw new ArgumentException($"Wkv7: state {state.ShapeText} does not match rows of {width}");
        }

        int heads = state.Shape[0];
        int n = state.Shape[1];
        RecurrenceInputs("Wkv7", tokens * (long)width, r, w, k, v, a, b, y);
        if (tokens == 0 || heads == 0)
        {
            return;
        }

        ulong pr = P(r), pw = P(w), pk = P(k), pv = P(v), pa = P(a), pb = P(b), ps = P(state), py = P(y);
        if (tokens == 1 && n <= Wkv7DecodeMaxHeadDim)
        {
            LaunchWkv7Decode([pr, pw, pk, pv, pa, pb, ps, py], heads, n, 1f, 0);
            return;
        }

        if (n <= Wkv7DecodeMaxHeadDim)
        {
            // Prefill: the decode kernel's per-row arithmetic over the tokens (bit-identical to T decode calls).
            LaunchWkv7Prefill(backend, pr, pw, pk, pv, pa, pb, ps, tokens, heads, n, py, 1);
            return;
        }

        // Head dims past 256: a block per head, the state in shared memory (the only kernel whose shared memory grows
        // with N²: it is checked here, where it runs).
        uint shared = RecurrenceShared("Wkv7", n, ((long)n * (n + 1)) + (5L * n));
        void** args = stackalloc void*[] { &pr, &pw, &pk, &pv, &pa, &pb, &ps, &tokens, &heads, &n, &py };
        backend.Launch(K.Wkv7, "wkv7_f32", (uint)heads, 1, (uint)n, shared, args);
    }

    /// <summary>
    /// Decode (one token): wkv7_decode_f32, a warp per value row, H·N warps. p: r, w, k, v, a, b, state, y. A gate
    /// pointer (not 0) makes y (y · scale) ⊙ gate in the same launch (IOps.Wkv7DecodeScaleGate).
    /// </summary>
    private void LaunchWkv7Decode(ReadOnlySpan<ulong> p, int heads, int n, float scale, ulong gate)
    {
        ulong pr = p[0], pw = p[1], pk = p[2], pv = p[3], pa = p[4], pb = p[5], ps = p[6], py = p[7];
        void** d = stackalloc void*[] { &pr, &pw, &pk, &pv, &pa, &pb, &ps, &heads, &n, &py, &scale, &gate };
        long warps = (long)heads * n;
        backend.Launch(K.Wkv7Decode, "wkv7_decode_f32", (uint)((warps * 32 + Threads - 1) / Threads), 1, Threads, 0, d);
    }
}
