using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaOps
{
    private const int Tile = 64;

    public void MatMul(Tensor x, Tensor weight, Tensor? bias, Tensor y, WeightLayout layout = WeightLayout.OutIn) =>
        MatMul(x, weight, bias, y, layout, gemmLibrary: true);

    /// <summary>
    /// MatMul with the choice of cuBLASLt made by the caller: <paramref name="gemmLibrary"/> false keeps fp32 activations
    /// (the built-in kernels) whatever the row count. The backward's dx = dy·W takes this path, because cuBLASLt would
    /// round the gradient rows to bf16 (the trainer keeps fp32 gradients, as the CPU reference does).
    /// </summary>
    internal void MatMul(Tensor x, Tensor weight, Tensor? bias, Tensor y, WeightLayout layout, bool gemmLibrary)
    {
        backend.Enter();
        var w = C(weight);
        if (weight.Shape.Length != 2)
        {
            throw new ArgumentException($"MatMul: weight must be 2-D, got {weight.ShapeText}");
        }

        int k = x.RowLength;
        int t = x.RowCount;
        (int m, int kw) = layout == WeightLayout.OutIn ? (weight.Shape[0], weight.Shape[1]) : (weight.Shape[1], weight.Shape[0]);
        if (kw != k || y.RowLength != m || y.RowCount != t)
        {
            throw new ArgumentException($"MatMul: x {x.ShapeText}, weight {weight.ShapeText} ({layout}), y {y.ShapeText} do not fit");
        }

        var (pb, bType) = bias is null ? (0UL, 0) : Param(bias, m);
        if (t == 0 || m == 0)
        {
            return;
        }

        ulong px = P(x), pw = w.Pointer, py = P(y);
        int dtype = (int)w.DType;
        if (t == 1 && layout == WeightLayout.OutIn)
        {
            GemvOutIn(w, px, pb, bType, py, k, m);
            return;
        }

        if (t == 1)
        {
            GemvInOut(w, px, pb, bType, py, k, m);
            return;
        }

        if (gemmLibrary && UsesGemmLibrary(w, t))
        {
            // The bf16 copy of x that the op which wrote x kept for this call (SwiGLU before the MLP down projection), if any.
            using var copy = backend.TakeBf16Copy(C(x));
            if (TryGemm([w], [bias], [py], layout, px, t, k, [m], copy?.Pointer ?? 0))
            {
                return;
            }
        }

        var tiled = layout == WeightLayout.OutIn ? K.MatMulOutIn[dtype] : K.MatMulInOut[dtype];
        // gridDim.y is at most 65535: very long prefills go in slices of rows.
        const int maxRowsPerLaunch = 65535 * Tile;
        ulong xs = px, ys = py;
        int rows = 0;
        void** a = stackalloc void*[] { &xs, &pw, &pb, &bType, &ys, &rows, &k, &m };
        for (int start = 0; start < t; start += maxRowsPerLaunch)
        {
            rows = Math.Min(maxRowsPerLaunch, t - start);
            xs = px + ((ulong)start * (ulong)k * sizeof(float));
            ys = py + ((ulong)start * (ulong)m * sizeof(float));
            backend.Launch(tiled, "matmul_tiled", (uint)((m + Tile - 1) / Tile), (uint)((rows + Tile - 1) / Tile), Threads, 0, a);
        }
    }

    /// <summary>Whether a MatMul of <paramref name="rows"/> rows with this weight goes to cuBLASLt (bf16 weights, enough rows).</summary>
    private bool UsesGemmLibrary(CudaTensor w, int rows) =>
        w.DType == DType.BF16 && rows >= backend.GemmMinRows && backend.Gemm is not null;

    /// <summary>
    /// Prefill on cuBLASLt: x [T, K] is rounded to bf16 once (into a scratch block; or <paramref name="pxb"/>, when
    /// not 0, already holds those bits in a 256-byte aligned block) and multiplied by each bf16 weight with fp32
    /// accumulation; a bias that is not fp32 is widened first (the epilogue reads fp32 for an fp32 output). Returns
    /// false, having queued nothing, when cuBLASLt has no kernel for one of the shapes.
    /// </summary>
    private bool TryGemm(ReadOnlySpan<CudaTensor> weights, ReadOnlySpan<Tensor?> biases, ReadOnlySpan<ulong> outputs, WeightLayout layout,
        ulong px, int t, int k, ReadOnlySpan<int> ms, ulong pxb = 0)
    {
        var gemm = backend.Gemm!;
        if (k == 0)
        {
            return false;
        }

        bool outIn = layout == WeightLayout.OutIn;
        Span<ulong> biasPointers = stackalloc ulong[weights.Length];
        var scratch = new List<Tensor>(weights.Length + 1);
        try
        {
            for (int i = 0; i < weights.Length; i++)
            {
                biasPointers[i] = biases[i] is { } b ? FloatBias(b, ms[i], scratch) : 0;
                if (!gemm.Supports(weights[i].Pointer, outIn, biasPointers[i], outputs[i], t, k, ms[i]))
                {
                    return false;
                }
            }

            if (pxb == 0)
            {
                var xb = ToBf16(px, (long)t * k);
                scratch.Add(xb);
                pxb = P(xb);
            }

            for (int i = 0; i < weights.Length; i++)
            {
                gemm.MatMul(pxb, weights[i].Pointer, outIn, biasPointers[i], outputs[i], t, k, ms[i], backend.Stream);
            }

            return true;
        }
        finally
        {
            // Back to the backend's cache: later work on the stream runs after the GEMMs that read them.
            foreach (var s in scratch)
            {
                s.Dispose();
            }
        }
    }

    /// <summary>
    /// x (fp32, <paramref name="n"/> elements at <paramref name="px"/>) rounded to bf16 (nearest even) into a new
    /// block of ⌈n / 2⌉ floats (the cache hands out 256-byte aligned blocks); the caller disposes it.
    /// </summary>
    private Tensor ToBf16(ulong px, long n)
    {
        var xb = backend.AllocateUninitialized(checked((int)((n + 1) / 2)));
        ulong pxb = P(xb);
        if (n % 2 == 0 && px % 8 == 0)
        {
            long pairs = n / 2;
            void** a = stackalloc void*[] { &px, &pxb, &pairs };
            Elementwise(K.ToBf16Pairs, "f32_to_bf16_pairs", pairs, a);
        }
        else
        {
            void** a = stackalloc void*[] { &px, &pxb, &n };
            Elementwise(K.ToBf16, "f32_to_bf16", n, a);
        }

        return xb;
    }

    /// <summary>The bias as fp32 on the device: its own memory when it is fp32, else a widened copy in <paramref name="scratch"/>.</summary>
    private ulong FloatBias(Tensor bias, int m, List<Tensor> scratch)
    {
        var (pb, bType) = Param(bias, m);
        if (bType == (int)DType.F32)
        {
            return pb;
        }

        var copy = backend.AllocateUninitialized(m);
        scratch.Add(copy);
        ulong py = P(copy);
        void** a = stackalloc void*[] { &pb, &bType, &py, &m };
        Elementwise(K.ParamToF32, "param_to_f32", m, a);
        return py;
    }

    /// <summary>
    /// Decode, W [M, K]: 16-byte streaming loads where K and the pointers allow, with 1, 2, 4 or 8 warps per row:
    /// the fewest that still give every SM about eight blocks, so a few rows (k/v projections) fill the GPU too.
    /// </summary>
    private void GemvOutIn(CudaTensor w, ulong px, ulong pb, int bType, ulong py, int k, int m)
    {
        ulong pw = w.Pointer;
        int dtype = (int)w.DType;
        int perLoad = w.DType == DType.F32 ? 4 : 8;
        void** g = stackalloc void*[] { &px, &pw, &pb, &bType, &py, &k, &m };
        if (k % perLoad != 0 || pw % 16 != 0 || px % 16 != 0)
        {
            const int rowsPerBlock = (int)Threads / 32;
            backend.Launch(K.GemvScalar[dtype], "gemv_scalar", (uint)((m + rowsPerBlock - 1) / rowsPerBlock), 1, Threads, 0, g);
            return;
        }

        int level = GemvLevel(m);
        int rows = 8 >> level;
        backend.Launch(K.GemvVector[dtype][level], "gemv_vec", (uint)((m + rows - 1) / rows), 1, Threads, 0, g);
    }

    /// <summary>The blocks a SM gemv_inout's split over K aims at (lora_down's: <see cref="CudaBackend.LoraDownBlocksPerSm"/>).</summary>
    internal const double SplitKBlocksPerSm = 2;

    /// <summary>
    /// K split over blocks for a decode in×out GEMV of <paramref name="tiles"/> column tiles (gemv_inout, lora_down):
    /// enough splits for about <paramref name="blocksPerSm"/> blocks a SM (<see cref="SplitKBlocksPerSm"/>; lora_down
    /// passes <see cref="CudaBackend.LoraDownBlocksPerSm"/>), and the rows of a split.
    /// </summary>
    private (int Splits, int RowsPerSplit) SplitK(int k, int tiles, double blocksPerSm = SplitKBlocksPerSm) =>
        SplitK(k, tiles, blocksPerSm, backend.Device.MultiprocessorCount);

    /// <summary>
    /// The split-K geometry on <paramref name="multiprocessors"/> SMs: ⌈blocksPerSm · SMs / tiles⌉ splits, at most one
    /// per 32 rows, none for K ≤ 256 or more tiles than split counters; then the rows of a split, and the split count
    /// those rows need. (At two blocks a SM this is the integer formula the kernels were first measured with: 7B's LoRA
    /// set, K 3,584 and 3 tiles on 132 SMs, 88 splits of 41 rows; at lora_down's default of one, 44 of 82; 0.5B's, K 896
    /// and one tile, 28 of 32 at either.)
    /// </summary>
    internal static (int Splits, int RowsPerSplit) SplitK(int k, int tiles, double blocksPerSm, int multiprocessors)
    {
        int splits = 1;
        if (k > 256 && tiles <= CudaBackend.SplitCounterCount)
        {
            long wanted = (long)Math.Ceiling(blocksPerSm * multiprocessors / tiles);
            splits = (int)Math.Clamp(wanted, 1, (k + 31) / 32);
        }

        int rowsPerSplit = (k + splits - 1) / splits;
        return ((k + rowsPerSplit - 1) / rowsPerSplit, rowsPerSplit);
    }

    /// <summary>
    /// Decode, W [K, M] (LoRA factors): each lane takes 8 (f32: 4) adjacent columns with one 16-byte load per row
    /// when M and the pointers allow; K is split over blocks when there are few columns, and the last block of each
    /// column tile adds the splits in a fixed order.
    /// </summary>
    private void GemvInOut(CudaTensor w, ulong px, ulong pb, int bType, ulong py, int k, int m)
    {
        ulong pw = w.Pointer;
        int dtype = (int)w.DType;
        int per = w.DType == DType.F32 ? 4 : 8;
        bool vector = m % per == 0 && pw % 16 == 0;
        if (!vector)
        {
            per = 1;
        }

        int columnsPerBlock = 32 * per;
        int tiles = (m + columnsPerBlock - 1) / columnsPerBlock;
        var (splits, rowsPerSplit) = SplitK(k, tiles);
        var function = vector ? K.GemvInOutVector[dtype] : K.GemvInOutScalar[dtype];
        ulong counters = backend.SplitCounters;
        if (splits == 1)
        {
            ulong none = 0;
            void** a = stackalloc void*[] { &px, &pw, &pb, &bType, &py, &none, &counters, &k, &m, &rowsPerSplit };
            backend.Launch(function, "gemv_inout", (uint)tiles, 1, Threads, 0, a);
            return;
        }

        // The partial sums of the splits; the last block of each column tile adds them (and resets its counter).
        using var partial = backend.AllocateUninitialized(splits, m);
        ulong pp = P(partial);
        void** b = stackalloc void*[] { &px, &pw, &pb, &bType, &py, &pp, &counters, &k, &m, &rowsPerSplit };
        backend.Launch(function, "gemv_inout", (uint)tiles, (uint)splits, Threads, 0, b);
    }

    /// <summary>
    /// Decode (T = 1) with up to three bf16/f16/f32 weights of one dtype that take 16-byte loads: one launch over
    /// all their rows (q/k/v, gate/up), so small matrices ride with large ones. Prefill on cuBLASLt: x rounded to bf16
    /// once for all of them, or the bf16 copy of x that the norm which wrote x kept (<see cref="RmsNorm"/>). Anything
    /// else: one MatMul each.
    /// </summary>
    public void MatMulShared(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
    {
        backend.Enter();
        using var copy = TakeBf16CopyOf(x);
        MatMulSharedEntered(x, weights, biases, outputs, copy);
    }

    /// <summary>
    /// The bf16 copy of <paramref name="x"/> kept by the op of the previous entry, taken right after this op's own
    /// <see cref="CudaBackend.Enter"/> (the caller disposes it). Only at T &gt; 1: decode makes none, and its path
    /// stays as it was.
    /// </summary>
    private CudaTensor? TakeBf16CopyOf(Tensor x) => x.RowCount > 1 ? backend.TakeBf16Copy(C(x)) : null;

    /// <summary>
    /// <see cref="MatMulShared"/> inside an op that has already entered the backend, with the bf16 copy of x that op
    /// took (or null). Not an entry of its own: another <see cref="CudaBackend.Enter"/> here would count and make a
    /// kept copy stale (<see cref="GateUpSwiGlu"/> runs this at prefill).
    /// </summary>
    private void MatMulSharedEntered(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs,
        CudaTensor? copy)
    {
        int count = weights.Count;
        if (count != biases.Count || count != outputs.Count || count == 0)
        {
            throw new ArgumentException($"MatMulShared: {weights.Count} weights, {biases.Count} biases, {outputs.Count} outputs");
        }

        int k = x.RowLength;
        var dtype = weights[0].DType;
        ulong px = P(x);
        bool grouped = x.RowCount == 1 && px % 16 == 0 && Groups(k, weights, outputs);
        if (!grouped && x.RowCount >= backend.GemmMinRows && backend.Gemm is not null && SharedGemm(x, weights, biases, outputs, copy))
        {
            return;
        }

        if (!grouped)
        {
            for (int i = 0; i < count; i++)
            {
                MatMul(x, weights[i], biases[i], outputs[i]);
            }

            return;
        }

        var g = GroupArguments(weights, biases, outputs);
        long rows = (long)g.M0 + g.M1 + g.M2;
        int level = GemvLevel(rows);
        int perBlock = 8 >> level;
        void** a = stackalloc void*[] { &px, &k, &g.W0, &g.B0, &g.T0, &g.Y0, &g.M0, &g.W1, &g.B1, &g.T1, &g.Y1, &g.M1, &g.W2, &g.B2, &g.T2, &g.Y2, &g.M2 };
        backend.Launch(K.GemvGroup[(int)dtype][level], "gemv_group", (uint)((rows + perBlock - 1) / perBlock), 1, Threads, 0, a);
    }

    /// <summary>
    /// Whether gemv_group takes these (x [1, <paramref name="k"/>]): up to three OutIn weights of one dtype, [M, K] with
    /// M &gt; 0, 16-byte aligned, K a multiple of a 16-byte load, outputs [1, M]. x's own alignment is the caller's.
    /// </summary>
    private bool Groups(int k, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> outputs)
    {
        int count = weights.Count;
        var dtype = weights[0].DType;
        int perLoad = dtype == DType.F32 ? 4 : 8;
        bool grouped = count <= 3 && k % perLoad == 0;
        for (int i = 0; grouped && i < count; i++)
        {
            var w = weights[i];
            grouped = w.DType == dtype && w.Shape.Length == 2 && w.Shape[1] == k && C(w).Pointer % 16 == 0
                && outputs[i].RowCount == 1 && outputs[i].RowLength == w.Shape[0] && w.Shape[0] > 0;
        }

        return grouped;
    }

    /// <summary>The pointers, bias dtypes and row counts of gemv_group's three matrices (absent ones 0).</summary>
    private struct GroupArgs
    {
        public ulong W0, W1, W2, B0, B1, B2, Y0, Y1, Y2;
        public int T0, T1, T2, M0, M1, M2;
    }

    private GroupArgs GroupArguments(IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
    {
        var g = default(GroupArgs);
        for (int i = 0; i < weights.Count; i++)
        {
            int m = weights[i].Shape[0];
            var (pb, bType) = biases[i] is { } b ? Param(b, m) : (0UL, 0);
            ulong pw = C(weights[i]).Pointer, py = P(outputs[i]);
            switch (i)
            {
                case 0: (g.W0, g.B0, g.T0, g.Y0, g.M0) = (pw, pb, bType, py, m); break;
                case 1: (g.W1, g.B1, g.T1, g.Y1, g.M1) = (pw, pb, bType, py, m); break;
                default: (g.W2, g.B2, g.T2, g.Y2, g.M2) = (pw, pb, bType, py, m); break;
            }
        }

        return g;
    }

    /// <summary>
    /// log2 of the warps per row of a decode GEMV over <paramref name="rows"/> rows: the fewest (1, 2, 4, 8) that still
    /// give every SM <see cref="CudaBackend.GemvBlocksPerSm"/> blocks of 8 warps.
    /// </summary>
    private int GemvLevel(long rows)
    {
        long wanted = (long)backend.GemvBlocksPerSm * backend.Device.MultiprocessorCount;
        int level = 0;
        while (level < 3 && (rows + (8 >> level) - 1) / (8 >> level) < wanted)
        {
            level++;
        }

        return level;
    }

    /// <summary>
    /// Several rows with bf16 weights that all take x [T, K] as OutIn: x is rounded to bf16 once for all of them, or
    /// <paramref name="copy"/> (its bf16 bits, already written) is read instead. False (nothing queued) when a weight
    /// does not qualify or cuBLASLt has no kernel for its shape.
    /// </summary>
    private bool SharedGemm(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs,
        CudaTensor? copy)
    {
        int count = weights.Count;
        int k = x.RowLength, t = x.RowCount;
        var ws = new CudaTensor[count];
        var ys = new ulong[count];
        var ms = new int[count];
        for (int i = 0; i < count; i++)
        {
            var w = C(weights[i]);
            if (w.DType != DType.BF16 || w.Shape.Length != 2 || w.Shape[1] != k || w.Shape[0] == 0
                || outputs[i].RowCount != t || outputs[i].RowLength != w.Shape[0])
            {
                return false;
            }

            ws[i] = w;
            ys[i] = P(outputs[i]);
            ms[i] = w.Shape[0];
        }

        return TryGemm(ws, biases.ToArray(), ys, WeightLayout.OutIn, P(x), t, k, ms, copy?.Pointer ?? 0);
    }
}
