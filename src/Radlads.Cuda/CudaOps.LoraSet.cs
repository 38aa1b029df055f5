using System.Runtime.InteropServices;
using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// <see cref="IOps.LoraSet"/> (kernels/lora.cu): at decode (T = 1), the branches whose bf16 or f16 factors take 16-byte
/// loads run in two launches — one GEMV over the concatenated columns of every A_i (x read once, K split over blocks,
/// inner on the final write) and one over every B_i (outer on the write). At T = 1 any branch with f32 factors,
/// another dtype than the first such branch, or a rank or width that is not a multiple of 8 (the golden fixtures'
/// ranks 4, 12, 20), runs the composed ops (<see cref="LoraSetReference"/>). Prefill (T ≥ GemmMinRows with cuBLASLt):
/// <see cref="LoraSetGemm"/>, the composed ops' arithmetic with x rounded to bf16 once for every branch; smaller T (or
/// no cuBLASLt) runs the composed ops.
/// </summary>
internal sealed unsafe partial class CudaOps
{
    // LORA_BRANCHES and LORA_THREADS in lora.cu.
    private const int LoraBranches = LoraSetChecks.MaxBranches;
    private const int LoraColumnsPerDownBlock = 256;

    public void LoraSet(Tensor x, ReadOnlySpan<LoraBranch> branches)
    {
        backend.Enter();
        LoraSetChecks.Check(x, branches);
        if (x.RowCount != 1 || x.RowLength == 0)
        {
            if (x.RowCount >= backend.GemmMinRows && x.RowLength > 0 && backend.Gemm is not null)
            {
                // The copy a norm (or AddRmsNormMatMulSharedLoraSet, handing it on) kept of x, if this is the next entry.
                using var copy = TakeBf16CopyOf(x);
                LoraSetGemm(x, branches, copy);
            }
            else
            {
                LoraSetReference.Run(this, x, branches);
            }

            return;
        }

        var (table, dtype, others) = LoraKernelTable(branches);
        if (table.Count > 0)
        {
            LoraDown(x, dtype, ref table);
            LoraUp(dtype, ref table);
        }

        if (others is not null)
        {
            LoraSetReference.Run(this, x, CollectionsMarshal.AsSpan(others));
        }
    }

    /// <summary>
    /// IOps.AddRmsNormMatMulSharedLoraSet. At decode, when gemv_group takes the bf16 q/k/v and every LoRA branch takes
    /// the kernels in bf16 (and the norm is not fused into the GEMV: <see cref="CudaBackend.FuseNormGemv"/>), the norm's
    /// own launch, then one launch (gemv_group_lora_down_bf16_vec*, matmul.cu) of lora_down's blocks and gemv_group's,
    /// then lora_up as in <see cref="LoraSet"/>: the same kernels' code, so the same bits as the two ops, one launch
    /// fewer. Otherwise the two ops.
    /// </summary>
    public void AddRmsNormMatMulSharedLoraSet(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, IReadOnlyList<Tensor> weights,
        IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs, ReadOnlySpan<LoraBranch> branches)
    {
        FusedOpChecks.ResidualNormShared(h, branch, normed, weights, biases, outputs);
        LoraSetChecks.Check(normed, branches);
        var x = normed;
        int k = x.RowLength;
        ulong px = P(x);
        var (table, dtype, others) = x.RowCount == 1 && k > 0 ? LoraKernelTable(branches) : (default, DType.F32, null);
        if (x.RowCount > 1 && x.RowCount >= backend.GemmMinRows && k > 0 && backend.Gemm is not null)
        {
            // Prefill: the norm's bf16 copy of normed (CudaBackend.KeepBf16Copy) serves the q/k/v GEMMs and the LoRA
            // downs alike, where LoraSet on its own would round normed again (7B, T = 2048: f32_to_bf16_pairs, 13.6 µs
            // a layer on an H200). The same bits: the copy is f32_to_bf16's rounding of the same fp32 values.
            // With CudaBackend.ConcurrentLora the LoRA set runs on the backend's second stream beside q/k/v (both only
            // read normed and its copy; their outputs are distinct tensors): q/k/v are queued first, so a GEMM tuned at
            // its first call is timed before the LoRA set's work exists.
            IOps.ResidualNorm(this, h, branch, normWeight, eps, normed);
            backend.Enter();
            var copy = TakeBf16CopyOf(normed);
            try
            {
                if (!backend.ForksPrefill)
                {
                    MatMulSharedEntered(normed, weights, biases, outputs, copy);
                    LoraSetGemm(normed, branches, copy);
                    return;
                }

                backend.Fork();
                try
                {
                    MatMulSharedEntered(normed, weights, biases, outputs, copy);
                    backend.BeginSide();
                    LoraSetGemm(normed, branches, copy);
                }
                finally
                {
                    backend.Join();
                }
            }
            finally
            {
                // This op only read normed: its copy stays valid for the next entry, a LoraSet on normed (RAD-RWKV7's
                // low-rank gate, run beside the recurrence), which would otherwise round normed again (7B, T = 2048:
                // f32_to_bf16_pairs, ~12 µs a layer on an H200). Dropped unused at the entry after that, as any copy.
                if (copy is not null)
                {
                    backend.KeepBf16Copy(C(normed), copy);
                }
            }

            return;
        }

        if (!backend.GroupLoraDown || backend.FuseNormGemv || x.RowCount != 1 || k == 0 || others is not null || table.Count == 0 || dtype != DType.BF16
            || weights[0].DType != DType.BF16 || px % 16 != 0 || !Groups(k, weights, outputs))
        {
            AddRmsNormMatMulShared(h, branch, normWeight, eps, normed, weights, biases, outputs);
            LoraSet(normed, branches);
            return;
        }

        IOps.ResidualNorm(this, h, branch, normWeight, eps, normed);
        backend.Enter();

        var g = GroupArguments(weights, biases, outputs);
        long rows = (long)g.M0 + g.M1 + g.M2;
        int level = GemvLevel(rows);
        int perBlock = 8 >> level;
        long groupBlocks = (rows + perBlock - 1) / perBlock;
        var (tiles, splits, rowsPerSplit) = LoraDownGeometry(k, table.Ranks);
        using var partial = splits > 1 ? backend.AllocateUninitialized(splits, table.Ranks) : null;
        ulong pp = partial is null ? 0 : P(partial), counters = backend.SplitCounters;
        var t = table;
        void** a = stackalloc void*[]
        {
            &px, &k, &g.W0, &g.B0, &g.T0, &g.Y0, &g.M0, &g.W1, &g.B1, &g.T1, &g.Y1, &g.M1, &g.W2, &g.B2, &g.T2, &g.Y2, &g.M2,
            &t, &pp, &counters, &rowsPerSplit, &tiles, &splits,
        };
        backend.GroupLoraLaunches++;
        backend.Launch(K.GemvGroupLoraDownBf16[level], "gemv_group_lora_down", (uint)(groupBlocks + ((long)tiles * splits)), 1, Threads, 0, a);
        LoraUp(dtype, ref table);
    }

    /// <summary>
    /// The branches that take 16-byte loads, in the dtype of the first of them, as the kernels' table (Ranks set); any
    /// other (an odd rank, f32 or another dtype) in others, for the composed ops. Outputs never alias inputs, so the
    /// order is free.
    /// </summary>
    private static (LoraTable Table, DType DType, List<LoraBranch>? Others) LoraKernelTable(ReadOnlySpan<LoraBranch> branches)
    {
        var table = default(LoraTable);
        var dtype = DType.F32;
        List<LoraBranch>? others = null;
        int ranks = 0;
        foreach (var b in branches)
        {
            if (dtype == DType.F32 && b.Down.DType is (DType.BF16 or DType.F16))
            {
                dtype = b.Down.DType;
            }

            if (!LoraFastBranch(b, dtype))
            {
                (others ??= []).Add(b);
                continue;
            }

            int i = table.Count++;
            table.Down[i] = C(b.Down).Pointer;
            table.Up[i] = C(b.Up).Pointer;
            table.Hidden[i] = P(b.Hidden);
            table.Y[i] = P(b.Y);
            table.Rank[i] = b.Down.Shape[1];
            table.Width[i] = b.Up.Shape[1];
            table.Column[i] = ranks;
            table.Inner[i] = (int)b.Inner;
            table.Outer[i] = (int)b.Outer;
            if (b.Offset is { } offset)
            {
                (table.Offset[i], table.OffsetDType[i]) = Param(offset, table.Width[i]);
            }

            ranks += table.Rank[i];
        }

        table.Ranks = ranks;
        return (table, dtype, others);
    }

    /// <summary>
    /// Prefill on cuBLASLt with the arithmetic of <see cref="LoraSetReference"/> on this backend (so the same bits):
    /// x [T, C] is rounded to bf16 once, not once per branch (7B, T = 2048: 13 µs a branch on an H200), or not at all
    /// when <paramref name="copy"/> (its bf16 copy, taken by the caller from the norm that wrote x) is given; each branch
    /// with a bf16 A that cuBLASLt takes multiplies that copy by A; then, where B is bf16 and taken too, one launch
    /// (lora_inner_bf16) applies the inner activation to hidden in place and writes hidden's bf16 copy for the up GEMM
    /// (the reference's Tanh/Sigmoid and its rounding, in one); the outer op as the reference. Other branches run the
    /// reference. The branches' A are separate tensors, so their down GEMMs stay one per branch: one GEMM over the
    /// concatenated columns would need a concatenated copy of the weights, which training (which updates them in
    /// place) would leave stale.
    /// </summary>
    private void LoraSetGemm(Tensor x, ReadOnlySpan<LoraBranch> branches, CudaTensor? copy)
    {
        var gemm = backend.Gemm!;
        int t = x.RowCount, c = x.RowLength;
        List<LoraBranch>? others = null;
        var fast = new List<LoraBranch>(branches.Length);
        foreach (var b in branches)
        {
            var a = C(b.Down);
            int r = b.Down.Shape[1];
            if (a.DType == DType.BF16 && r > 0 && b.Up.Shape[1] > 0 && gemm.Supports(a.Pointer, outIn: false, 0, P(b.Hidden), t, c, r))
            {
                fast.Add(b);
            }
            else
            {
                (others ??= []).Add(b);
            }
        }

        if (fast.Count > 0)
        {
            using (var rounded = copy is null ? ToBf16(P(x), (long)t * c) : null)
            {
                ulong pxb = P(copy ?? rounded!);
                foreach (var b in fast)
                {
                    gemm.MatMul(pxb, C(b.Down).Pointer, outIn: false, 0, P(b.Hidden), t, c, b.Down.Shape[1], backend.Stream);
                }
            }

            foreach (var b in fast)
            {
                LoraUpGemm(b, t);
            }
        }

        if (others is not null)
        {
            LoraSetReference.Run(this, x, CollectionsMarshal.AsSpan(others));
        }
    }

    /// <summary>Branch <paramref name="b"/> after its down GEMM: inner, up (cuBLASLt when it takes B), outer.</summary>
    private void LoraUpGemm(LoraBranch b, int t)
    {
        int r = b.Down.Shape[1], m = b.Up.Shape[1];
        var up = C(b.Up);
        ulong ph = P(b.Hidden), py = P(b.Y);
        if (up.DType == DType.BF16 && backend.Gemm!.Supports(up.Pointer, outIn: false, 0, py, t, r, m))
        {
            long n = (long)t * r;
            using var hb = backend.AllocateUninitialized(checked((int)((n + 1) / 2)));
            ulong phb = P(hb);
            int inner = (int)b.Inner;
            void** a = stackalloc void*[] { &ph, &phb, &n, &inner };
            Elementwise(K.LoraInnerBf16, "lora_inner_bf16", n, a);
            backend.Gemm.MatMul(phb, up.Pointer, outIn: false, 0, py, t, r, m, backend.Stream);
        }
        else
        {
            LoraSetReference.Inner(this, b);
            MatMul(b.Hidden, b.Up, null, b.Y, WeightLayout.InOut);
        }

        LoraSetReference.Outer(this, b);
    }

    /// <summary>
    /// Whether a branch can be one of the kernels' (<paramref name="dtype"/> bf16 or f16): both factors of that dtype,
    /// 16-byte aligned, rank and width non-zero multiples of 8 (a lane's 16-byte load is 8 columns of one branch).
    /// </summary>
    private static bool LoraFastBranch(LoraBranch b, DType dtype)
    {
        int r = b.Down.Shape[1], m = b.Up.Shape[1];
        return dtype is (DType.BF16 or DType.F16) && b.Down.DType == dtype && b.Up.DType == dtype && r > 0 && m > 0 && r % 8 == 0 && m % 8 == 0
            && C(b.Down).Pointer % 16 == 0 && C(b.Up).Pointer % 16 == 0;
    }

    /// <summary>
    /// hidden_i = inner_i(x·A_i): 256 concatenated columns per block; K split over blocks (like <see cref="GemvInOut"/>)
    /// so the few column tiles still give every SM about two blocks; the last block of a tile adds the splits in order.
    /// </summary>
    private void LoraDown(Tensor x, DType dtype, ref LoraTable table)
    {
        int k = x.RowLength;
        var (tiles, splits, rowsPerSplit) = LoraDownGeometry(k, table.Ranks);
        var function = dtype == DType.BF16 ? K.LoraDownBf16 : K.LoraDownF16;
        ulong px = P(x), counters = backend.SplitCounters;
        var t = table;
        if (splits == 1)
        {
            ulong none = 0;
            void** a = stackalloc void*[] { &px, &t, &none, &counters, &k, &rowsPerSplit };
            backend.Launch(function, "lora_down", (uint)tiles, 1, Threads, 0, a);
            return;
        }

        // The splits' partial sums [splits, ΣR]; the last block of each column tile adds them (and resets its counter).
        using var partial = backend.AllocateUninitialized(splits, table.Ranks);
        ulong pp = P(partial);
        void** b = stackalloc void*[] { &px, &t, &pp, &counters, &k, &rowsPerSplit };
        backend.Launch(function, "lora_down", (uint)tiles, (uint)splits, Threads, 0, b);
    }

    /// <summary>lora_down's blocks for x [1, k] and ΣR columns: 256-column tiles × K splits, and the rows of a split.</summary>
    private (int Tiles, int Splits, int RowsPerSplit) LoraDownGeometry(int k, int ranks)
    {
        int tiles = (ranks + LoraColumnsPerDownBlock - 1) / LoraColumnsPerDownBlock;
        var (splits, rowsPerSplit) = SplitK(k, tiles, backend.LoraDownBlocksPerSm);
        return (tiles, splits, rowsPerSplit);
    }

    /// <summary>
    /// y_i = outer_i(hidden_i·B_i): a block covers 8·L columns of one branch; L = 8 when that still gives every SM two
    /// blocks, else L = 4 (twice the blocks, each row slot reading 64 contiguous bytes instead of 128).
    /// </summary>
    private void LoraUp(DType dtype, ref LoraTable table)
    {
        int lanes = LoraUpBlocks(ref table, 8) >= 2L * backend.Device.MultiprocessorCount ? 8 : 4;
        int blocks = LoraUpBlocks(ref table, lanes);
        var function = (dtype, lanes) switch
        {
            (DType.BF16, 8) => K.LoraUpBf16L8,
            (DType.BF16, _) => K.LoraUpBf16L4,
            (_, 8) => K.LoraUpF16L8,
            _ => K.LoraUpF16L4,
        };
        var t = table;
        float scale = Rwkv7DecayScale;
        void** a = stackalloc void*[] { &t, &scale };
        backend.Launch(function, "lora_up", (uint)blocks, 1, Threads, 0, a);
    }

    /// <summary>Fills table.Block (each branch's first block) for 8·<paramref name="lanes"/> columns per block; returns the block count.</summary>
    private static int LoraUpBlocks(ref LoraTable table, int lanes)
    {
        int columns = 8 * lanes;
        int blocks = 0;
        for (int i = 0; i < table.Count; i++)
        {
            table.Block[i] = blocks;
            blocks += (table.Width[i] + columns - 1) / columns;
        }

        return blocks;
    }

    /// <summary>LoraTable of lora.cu, passed by value (280 bytes): five arrays of four u64, seven of four i32, two i32.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct LoraTable
    {
        public fixed ulong Down[LoraBranches];
        public fixed ulong Up[LoraBranches];
        public fixed ulong Offset[LoraBranches];
        public fixed ulong Hidden[LoraBranches];
        public fixed ulong Y[LoraBranches];
        public fixed int Rank[LoraBranches];
        public fixed int Width[LoraBranches];
        public fixed int Column[LoraBranches];
        public fixed int Block[LoraBranches];
        public fixed int Inner[LoraBranches];
        public fixed int Outer[LoraBranches];
        public fixed int OffsetDType[LoraBranches];
        public int Count;
        public int Ranks;
    }
}
