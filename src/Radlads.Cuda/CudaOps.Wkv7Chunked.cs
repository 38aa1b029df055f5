namespace Radlads.Cuda;

/// <summary>
/// Wkv7 prefill in chunks of <see cref="Wkv7ChunkTokens"/> tokens (kernels/wkv7_chunked.cu): the chunked (WY) form of
/// the delta rule, whose sequential part is T/16 matrix steps per head instead of T dependent row reductions. Not
/// bit-identical to T decode steps (it sums in another order); within fp32 rounding of the recurrence.
/// </summary>
internal sealed unsafe partial class CudaOps
{
    /// <summary>The head dims wkv7_chunk_{prep,scan}_f32_n{N} are compiled for (WKV7_CHUNKED(N)): every Qwen2.5 size.</summary>
    internal static readonly int[] Wkv7ChunkedHeadDims = [64, 128];

    // WKV7C_L and WKV7C_PREP_THREADS in wkv7_chunked.cu.
    internal const int Wkv7ChunkTokens = 16;
    private const int Wkv7ChunkPrepThreads = 256;

    /// <summary>The state rows a scan block can hold (Wkv7cScan&lt;N, R&gt;: wkv7_chunk_scan_f32_n{N} and _n{N}_r16).</summary>
    internal static readonly int[] Wkv7ChunkScanRowChoices = [32, 16];

    /// <summary>
    /// WKV7C_RECORD(N) (Wkv7cRecord&lt;N&gt;::SIZE): floats of one chunk's record, in the scan's shared-memory layout
    /// (rows padded by 4 words): [P | R′]ᵀ [2L][N + 4], [B̃ ; K̃]ᵀ [N][2L + 4], [Q | W′]ᵀ [2L][L + 4], γ_L [N], flag + 3.
    /// </summary>
    internal static int Wkv7ChunkRecord(int n)
    {
        const int l = Wkv7ChunkTokens;
        return (2 * l * (n + 4)) + (n * ((2 * l) + 4)) + (2 * l * (l + 4)) + n + 4;
    }

    /// <summary>WKV7C_PREP_SHARED(N) in bytes: r (then R′ᵀ), γ, k, a, b and Pᵀ [L][N + 4], six [L][L + 1] matrices, the chunk's flag.</summary>
    internal static uint Wkv7ChunkPrepShared(int n) =>
        (uint)(((6 * Wkv7ChunkTokens * (n + 4)) + (6 * Wkv7ChunkTokens * (Wkv7ChunkTokens + 1)) + 1) * sizeof(float));

    /// <summary>
    /// WKV7C_SCAN_SHARED(G) in bytes for a block of <paramref name="rows"/> state rows in <paramref name="threads"/>
    /// threads: two staged buffers (a record, then v [R][L + 4]), S [R][N + 4], u [R][L + 4] as TF32 hi and lo, y [L][R],
    /// phase A's partial sums (every warp's D fragments of its row tile's 2L/8 column tiles: 32 lanes × 4 floats each)
    /// and two mbarriers (4 floats).
    /// </summary>
    internal static uint Wkv7ChunkScanShared(int n, int rows, int threads)
    {
        const int l = Wkv7ChunkTokens;
        int buffer = Wkv7ChunkRecord(n) + (rows * (l + 4));
        int partial = threads / 32 * (2 * l / 8) * 32 * 4;
        return (uint)(((2 * buffer) + (rows * (n + 4)) + (2 * rows * (l + 4)) + (l * rows) + partial + 4) * sizeof(float));
    }

    /// <summary>
    /// Wkv7cScan::KG: the key groups of a row tile (warps / (rows / 16)), whose partial sums of phase A are added in
    /// their order: two row choices with the same count sum in the same order.
    /// </summary>
    internal static int Wkv7ChunkScanKeyGroups(int rows, int threads) => threads / 32 / (rows / 16);

    /// <summary>
    /// Whether a Wkv7 prefill of <paramref name="tokens"/> tokens at head dim <paramref name="n"/> takes the chunked
    /// kernels: switched on (<see cref="CudaBackend.Wkv7Chunked"/>), at least <see cref="CudaBackend.Wkv7ChunkedMinTokens"/>
    /// tokens, a head dim they are compiled for, TF32 mma (sm_80 and later), and every tensor 16-byte aligned (they move
    /// float4s).
    /// </summary>
    internal static bool TakesWkv7Chunked(CudaBackend backend, int tokens, int n, ReadOnlySpan<ulong> pointers)
    {
        if (!backend.Wkv7Chunked || tokens < backend.Wkv7ChunkedMinTokens || Array.IndexOf(Wkv7ChunkedHeadDims, n) < 0
            || backend.Device.ComputeMajor < 8)
        {
            return false;
        }

        foreach (ulong p in pointers)
        {
            if (p % 16 != 0)
            {
                return false;
            }
        }

        // Both kernels keep everything in dynamic shared memory (no static part to leave room for).
        int rows = backend.Wkv7ChunkScanRows;
        return Wkv7ChunkScanShared(n, rows, backend.Kernels.Wkv7ChunkScanThreads[(n, rows)]) <= backend.Kernels.MaxDynamicShared
            && Wkv7ChunkPrepShared(n) <= backend.Kernels.MaxDynamicShared;
    }

    /// <summary>
    /// Queues the chunked Wkv7 over `sequences` sequences of `tokens` rows (layout as <see cref="LaunchWkv7Prefill"/>):
    /// wkv7_chunk_prep_f32 (a block per chunk, head and sequence) writes every chunk's record into scratch, then
    /// wkv7_chunk_scan_f32 (a block per <see cref="CudaBackend.Wkv7ChunkScanRows"/> state rows of a head) carries the
    /// state across the chunks.
    /// </summary>
    internal static void LaunchWkv7Chunked(CudaBackend backend, ulong pr, ulong pw, ulong pk, ulong pv, ulong pa, ulong pb,
        ulong ps, int tokens, int heads, int n, ulong py, int sequences)
    {
        int chunks = (tokens + Wkv7ChunkTokens - 1) / Wkv7ChunkTokens;
        using var records = backend.AllocateUninitialized(sequences * heads * chunks, Wkv7ChunkRecord(n));
        ulong precords = P(records);
        void** prep = stackalloc void*[] { &pr, &pw, &pk, &pa, &pb, &tokens, &heads, &precords };
        backend.Launch(backend.Kernels.Wkv7ChunkPrep[n], "wkv7_chunk_prep_f32", (uint)chunks, (uint)heads, Wkv7ChunkPrepThreads,
            Wkv7ChunkPrepShared(n), prep, gridZ: (uint)sequences);
        LaunchWkv7ChunkScan(backend, pr, pw, pk, pv, pa, pb, precords, ps, tokens, heads, n, py, sequences);
    }

    /// <summary>Blocks of wkv7_chunk_scan_f32 a sequence: one per <see cref="CudaBackend.Wkv7ChunkScanRows"/> state rows of each head.</summary>
    internal static int Wkv7ChunkScanBlocks(CudaBackend backend, int heads, int n) => heads * (n / backend.Wkv7ChunkScanRows);

    /// <summary>
    /// Queues wkv7_chunk_scan_f32 over <paramref name="sequences"/> sequences on the records at <paramref name="precords"/>
    /// (<see cref="Wkv7ChunkScanBlocks"/> blocks each), r … b as the token-by-token path of a flagged chunk reads them.
    /// Launched plainly, like wkv7_tile_f32: its blocks are one latency-bound wave that must spread over the SMs.
    /// </summary>
    private static void LaunchWkv7ChunkScan(CudaBackend backend, ulong pr, ulong pw, ulong pk, ulong pv, ulong pa, ulong pb, ulong precords,
        ulong ps, int tokens, int heads, int n, ulong py, int sequences)
    {
        int rows = backend.Wkv7ChunkScanRows, threads = backend.Kernels.Wkv7ChunkScanThreads[(n, rows)];
        void** scan = stackalloc void*[] { &pr, &pw, &pk, &pv, &pa, &pb, &precords, &ps, &tokens, &heads, &py };
        backend.Launch(backend.Kernels.Wkv7ChunkScan[(n, rows)], "wkv7_chunk_scan_f32", (uint)Wkv7ChunkScanBlocks(backend, heads, n),
            (uint)sequences, (uint)threads, Wkv7ChunkScanShared(n, rows, threads), scan, programmatic: false);
        backend.Wkv7ChunkedLaunches++;
    }
}
