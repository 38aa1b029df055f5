using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// The fused ops whose IOps default composes other ops, each one launch here with the same fp32 operations as that
/// composition (so the same bits): RoPE + GQA (kernels/attention.cu rope_expand_f32, expand_kv_f32;
/// decode_batch.cu rope_expand_rows_f32), scale + multiply (elementwise.cu scale_multiply_f32) and the MLP's gate/up GEMVs +
/// SwiGLU (matmul.cu gate_up_swiglu, T = 1). Keys + value residual is in CudaOps.Rwkv7.cs.
/// </summary>
internal sealed unsafe partial class CudaOps
{
    /// <summary>
    /// T = 1 with bf16/f16/f32 weights of one dtype that take 16-byte loads (as <see cref="MatMulShared"/>'s grouped
    /// path): one launch of gate_up_swiglu with the warps per row MatMulShared would pick for the 2F rows, so the sums
    /// and y are the same bits as gemv_group then swiglu_f32. Anything else (prefill, misaligned, mixed dtypes):
    /// MatMulShared into (y, upScratch) then SwiGlu, the interface default.
    /// </summary>
    public void GateUpSwiGlu(Tensor x, Tensor wGate, Tensor wUp, Tensor y, Tensor upScratch)
    {
        backend.Enter();
        FusedOpChecks.GateUpSwiGlu(x, wGate, wUp, y, upScratch);
        int k = x.RowLength;
        int f = wGate.Shape[0];
        var dtype = wGate.DType;
        int perLoad = dtype == DType.F32 ? 4 : 8;
        ulong px = P(x), pg = C(wGate).Pointer, pu = C(wUp).Pointer;
        bool fused = x.RowCount == 1 && f > 0 && k > 0 && wUp.DType == dtype && k % perLoad == 0
            && px % 16 == 0 && pg % 16 == 0 && pu % 16 == 0;
        if (!fused)
        {
            // The bf16 copy of x that AddRmsNorm kept (prefill) is taken here, at this op's one entry, and handed to
            // the GEMMs: the inner call does not enter again (a second entry would make the copy stale), and nothing
            // it does first (bias widening, allocations) can drop a copy it already holds.
            using var copy = TakeBf16CopyOf(x);
            MatMulSharedEntered(x, [wGate, wUp], [null, null], [y, upScratch], copy);
            if (!SwiGluWithBf16Copy(y, upScratch, dtype))
            {
                SwiGlu(y, upScratch, y);
            }

            return;
        }

        // MatMulShared's choice for its 2F rows: the fewest warps per row that still give every SM its blocks.
        var (level, pairs, threads) = GateUpGeometry(f);
        ulong py = P(y);
        void** args = stackalloc void*[] { &px, &k, &pg, &pu, &py, &f };
        backend.Launch(K.GateUpSwiGlu[(int)dtype][level], "gate_up_swiglu", (uint)((f + pairs - 1) / pairs), 1, threads, 0, args);
    }

    /// <summary>
    /// gate_up_swiglu's launch for F rows of each matrix: MatMulShared's warps-per-row level for the 2F rows, the row
    /// pairs a block takes (4, 2, 1, 1 by level) and its threads (2 · pairs · warps per row warps).
    /// </summary>
    private (int Level, int Pairs, uint Threads) GateUpGeometry(int f)
    {
        int level = GemvLevel(2L * f);
        int pairs = level < 3 ? 4 >> level : 1;
        return (level, pairs, (uint)(64 << level) * (uint)pairs);
    }

    /// <summary>
    /// Prefill (T ≥ GemmMinRows with cuBLASLt and bf16 weights): y = SwiGLU(y, up) in place as swiglu_f32 computes it,
    /// plus a bf16 copy of y kept for the MLP's down MatMul (<see cref="Bf16CopyFor"/>): on an H200 at 7B, T = 2048,
    /// swiglu_f32 took 164 µs and the down GEMM's rounding of y another 57 µs a layer. False (nothing queued) where that
    /// does not apply.
    /// </summary>
    private bool SwiGluWithBf16Copy(Tensor y, Tensor up, DType weights)
    {
        if (weights != DType.BF16 || Bf16CopyFor(y) is not { } copy)
        {
            return false;
        }

        long n = y.ElementCount;
        ulong py = P(y), pu = P(up), pyb = copy.Pointer;
        int vec = Quads(py, pu);
        void** a = stackalloc void*[] { &py, &pu, &py, &pyb, &n, &vec };
        Elementwise(K.SwiGluBf16, "swiglu_bf16_f32", n, a);
        backend.KeepBf16Copy(C(y), copy);
        return true;
    }

    /// <summary>
    /// A block for the bf16 copy of <paramref name="y"/> that the op about to write y also writes, when the MatMul that
    /// may read y next would run on cuBLASLt (y has at least GemmMinRows rows and cuBLASLt is there; not while recording
    /// a step): the op queues its kernel, then hands the block to <see cref="CudaBackend.KeepBf16Copy"/>, and that
    /// MatMul takes it instead of rounding y itself (reading 4 bytes and writing 2 per element again). Null otherwise.
    /// </summary>
    private CudaTensor? Bf16CopyFor(Tensor y) =>
        y.RowCount >= backend.GemmMinRows && backend.Gemm is not null && backend.CanKeepBf16Copy && y.Shape.Length == 2
            ? (CudaTensor)backend.AllocateUninitialized(checked((int)((y.ElementCount + 1) / 2)))
            : null;

    /// <summary>The vec argument of the kernels with a bf16 copy: 1 when every fp32 pointer is 16-byte aligned (the copy's block is).</summary>
    private static int Quads(ulong first, ulong second) => first % 16 == 0 && second % 16 == 0 ? 1 : 0;

    public void ScaleMultiply(Tensor a, float s, Tensor b, Tensor y)
    {
        backend.Enter();
        FusedOpChecks.ScaleMultiply(a, b, y);
        long n = a.ElementCount;
        ulong pa = P(a), pb = P(b), py = P(y);
        if (Bf16CopyFor(y) is { } copy)
        {
            // Prefill: o_proj reads y next (Projections.OutputProjection); see Bf16CopyFor.
            ulong pyb = copy.Pointer;
            int vec = Quads(pa, pb) & Quads(py, pyb);
            void** withCopy = stackalloc void*[] { &pa, &s, &pb, &py, &pyb, &n, &vec };
            Elementwise(K.ScaleMultiplyBf16, "scale_multiply_bf16_f32", n, withCopy);
            backend.KeepBf16Copy(C(y), copy);
            return;
        }

        void** args = stackalloc void*[] { &pa, &s, &pb, &py, &n };
        Elementwise(K.ScaleMultiply, "scale_multiply_f32", n, args);
    }

    // rope_expand_f32 with a thread per KV-head pair (per = groups) from this many (token, KV head, pair) threads: enough to fill an H200 (132 SMs × 512) when
    // each also does its group's query heads; decode (a few hundred) keeps a thread per query head.
    private const long RopeExpandKvMinThreads = 65536;

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
        // Prefill-sized calls: a thread per KV-head pair computes the angle once for its whole group (same bits).
        long perKvHead = (long)tokens * kvHeads * half;
        int per = perKvHead >= RopeExpandKvMinThreads ? groups : 1;
        void** a = stackalloc void*[] { &pr, &pk, &pv, &pkh, &pvh, &tokens, &kvHeads, &groups, &headDim, &startPosition, &offset, &theta, &per };
        Elementwise(K.RopeExpand, "rope_expand_f32", perKvHead * groups / per, a);
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
        Elementwise(DK.RopeExpandRows, "rope_expand_rows_f32", (long)rows * kvHeads * groups * (headDim / 2), a);
    }

    /// <summary>The device address of an optional tensor, 0 (a null pointer to the kernel) when absent.</summary>
    private static ulong Pointer(Tensor? t) => t is null ? 0 : P(t);
}
