using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// The residual norm fused into the decode GEMVs after it (kernels/matmul.cu norm_gemv_group_*,
/// norm_gate_up_swiglu_*; the trade-off is described there): one launch instead of add_rms_norm_f32 then gemv_group
/// (or gate_up_swiglu), with the same bits. Where the fused kernel does not apply, the two ops as before.
/// </summary>
internal sealed unsafe partial class CudaOps
{
    public void AddRmsNormMatMulShared(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed,
        IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
    {
        FusedOpChecks.ResidualNormShared(h, branch, normed, weights, biases, outputs);

        int k = h.RowLength;
        if (!backend.FuseNormGemv || h.RowCount != 1 || !Groups(k, weights, outputs)
            || FusedNormThreads(h, branch, normWeight, normed, Threads, outputs) is not { } nt)
        {
            IOps.ResidualNorm(this, h, branch, normWeight, eps, normed);
            MatMulShared(normed, weights, biases, outputs);
            return;
        }

        backend.Enter();
        var n = NormArguments(h, branch, normWeight, normed);
        var g = GroupArguments(weights, biases, outputs);
        long rows = (long)g.M0 + g.M1 + g.M2;
        int level = GemvLevel(rows);
        int perBlock = 8 >> level;
        void** a = stackalloc void*[]
        {
            &n.H, &n.Branch, &n.Weight, &n.WeightType, &eps, &n.Normed, &n.Counter, &nt, &k,
            &g.W0, &g.B0, &g.T0, &g.Y0, &g.M0, &g.W1, &g.B1, &g.T1, &g.Y1, &g.M1, &g.W2, &g.B2, &g.T2, &g.Y2, &g.M2,
        };
        backend.NormGemvLaunches++;
        backend.Launch(K.NormGemvGroup[(int)weights[0].DType][level], "norm_gemv_group", (uint)((rows + perBlock - 1) / perBlock), 1, Threads,
            (uint)k * sizeof(float), a);
    }

    public void AddRmsNormGateUpSwiGlu(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp,
        Tensor y, Tensor upScratch)
    {
        FusedOpChecks.ResidualNormGateUp(h, branch, normed, wGate, wUp, y, upScratch);
        int k = h.RowLength;
        int f = wGate.Shape[0];
        var dtype = wGate.DType;
        int perLoad = dtype == DType.F32 ? 4 : 8;
        var (level, pairs, threads) = GateUpGeometry(f);
        if (!backend.FuseNormGemv || h.RowCount != 1 || f == 0 || k == 0 || wUp.DType != dtype || k % perLoad != 0
            || C(wGate).Pointer % 16 != 0 || C(wUp).Pointer % 16 != 0
            || FusedNormThreads(h, branch, normWeight, normed, threads, [y, upScratch]) is not { } nt)
        {
            IOps.ResidualNorm(this, h, branch, normWeight, eps, normed);
            GateUpSwiGlu(normed, wGate, wUp, y, upScratch);
            return;
        }

        backend.Enter();
        var n = NormArguments(h, branch, normWeight, normed);
        ulong pg = C(wGate).Pointer, pu = C(wUp).Pointer, py = P(y);
        void** a = stackalloc void*[] { &n.H, &n.Branch, &n.Weight, &n.WeightType, &eps, &n.Normed, &n.Counter, &nt, &k, &pg, &pu, &py, &f };
        backend.NormGemvLaunches++;
        backend.Launch(K.NormGateUpSwiGlu[(int)dtype][level], "norm_gate_up_swiglu", (uint)((f + pairs - 1) / pairs), 1, threads,
            (uint)k * sizeof(float), a);
    }

    /// <summary>
    /// add_rms_norm_f32's block size for this row when the fused kernel (blocks of <paramref name="blockThreads"/>) can
    /// do its threads' work: the norm's vector path (C % 4 == 0, 16-byte aligned h, branch and normed; see
    /// <see cref="NormGeometry"/>) with no more threads than the block has, a weight as long as the row, and no output
    /// overlapping h, branch or normed (their blocks write while others read). Null: use the two ops.
    /// </summary>
    private int? FusedNormThreads(Tensor h, Tensor? branch, Tensor normWeight, Tensor normed, uint blockThreads, IReadOnlyList<Tensor> outputs)
    {
        int c = h.RowLength;
        if (c == 0 || normWeight.ElementCount < c || normed.ElementCount != c)
        {
            return null;
        }

        ulong ph = P(h), pn = P(normed), pb = branch is null ? ph : P(branch);
        if (pn == ph)
        {
            return null;
        }

        foreach (var y in outputs)
        {
            ulong py = P(y), end = py + ((ulong)y.ElementCount * sizeof(float));
            foreach (var p in new[] { ph, pb, pn })
            {
                if (p < end && py < p + ((ulong)c * sizeof(float)))
                {
                    return null;
                }
            }
        }

        var (threads, vector) = NormGeometry(c, ph, pb, pn);
        return vector == 1 && threads <= blockThreads ? (int)threads : null;
    }

    /// <summary>The norm's kernel arguments: h, branch (0 for none), weight and its dtype, normed, the block counter.</summary>
    private struct NormArgs
    {
        public ulong H, Branch, Weight, Normed, Counter;
        public int WeightType;
    }

    private NormArgs NormArguments(Tensor h, Tensor? branch, Tensor normWeight, Tensor normed)
    {
        var w = C(normWeight);
        return new NormArgs
        {
            H = P(h),
            Branch = branch is null ? 0 : P(branch),
            Weight = w.Pointer,
            WeightType = (int)w.DType,
            Normed = P(normed),
            Counter = backend.NormCounter,
        };
    }
}
