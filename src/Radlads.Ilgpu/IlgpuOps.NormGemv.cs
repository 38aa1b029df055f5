using Radlads.Ops;

namespace Radlads.Ilgpu;

/// <summary>
/// The residual norms fused into the decode GEMVs after them, the same bits as the two ops: the MLP's into its gate/up
/// (<see cref="Kernels.FusedKernels.NormGateUpSwiGlu{TW}"/>), the mixer's into its first projection
/// (<see cref="Kernels.FusedKernels.NormGemvOutIn{TW}"/>; ILGPU runs q, k and v as one GEMV launch each, and k and v
/// read the normed row). One launch fewer each. Elsewhere the interface default (the two ops).
/// </summary>
internal sealed partial class IlgpuOps
{
    public void AddRmsNormMatMulShared(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed,
        IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
    {
        FusedOpChecks.ResidualNormShared(h, branch, normed, weights, biases, outputs);

        int k = h.RowLength;
        var w = I(weights[0]);
        int m = w.Shape.Length == 2 ? w.Shape[0] : 0;
        bool fused = FusesNorm(h, normWeight, k) && w.Shape.Length == 2 && w.Shape[1] == k && m > 0 && VectorLoads(I(normed), w, k)
            && outputs[0].RowCount == 1 && outputs[0].RowLength == m;
        if (!fused)
        {
            IOps.ResidualNorm(this, h, branch, normWeight, eps, normed);
            ((IOps)this).MatMulShared(normed, weights, biases, outputs);
            return;
        }

        var bias = biases[0] is { } b ? Param(b, m) : None;
        int perRow = GemvWarpsPerRow(m);
        int rowsPerGroup = GroupSize / Device.WarpSize / perRow;
        using (backend.Enter())
        {
            backend.NormGemvLaunches++;
            K.NormGemvOutIn[(int)w.DType](S, Groups((m + rowsPerGroup - 1) / rowsPerGroup, nameof(AddRmsNormMatMulShared)), F(h), F(branch ?? h),
                branch is null ? 0 : 1, I(normWeight).Weight(Device), eps, F(normed), backend.NormCounter, w.Bytes.Cast<Kernels.Words4>(), bias,
                biases[0] is null ? 0 : 1, k, m, perRow, F(outputs[0]));
        }

        for (int i = 1; i < weights.Count; i++)
        {
            MatMul(normed, weights[i], biases[i], outputs[i]);
        }
    }

    /// <summary>
    /// Whether the fused norm kernels take this row: the warp kernels (not the CPU's thread-per-output ones, the
    /// baseline or RADLADS_ILGPU_FUSED=0), one row, C within the shared x and a weight as long as the row.
    /// </summary>
    private bool FusesNorm(Tensor h, Tensor normWeight, int k) =>
        backend.FuseNormGemv && !backend.Unfused && !backend.ThreadPerOutputKernels && !backend.Baseline && h.RowCount == 1 && k > 0
        && k <= Kernels.FusedKernels.MaxNormGemvC && normWeight.ElementCount >= k;

    /// <summary>
    /// Whether <see cref="AddRmsNormGateUpSwiGlu"/> runs as one launch for these shapes on this device: GateUpSwiGlu's own
    /// plan must fuse (on a GPU with many SMs a small F takes eight warps a row, one row slot a group, and stays two
    /// GEMVs), and the norm must fit (tests ask, since it depends on the device).
    /// </summary>
    internal bool FusesNormGateUp(Tensor h, Tensor normWeight, Tensor wGate, Tensor wUp) =>
        GateUpPlan(h, I(wGate), I(wUp), h.RowLength, wGate.Shape[0]).Fused && FusesNorm(h, normWeight, h.RowLength);

    public void AddRmsNormGateUpSwiGlu(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp,
        Tensor y, Tensor upScratch)
    {
        FusedOpChecks.ResidualNormGateUp(h, branch, normed, wGate, wUp, y, upScratch);
        int k = h.RowLength;
        int f = wGate.Shape[0];
        var g = I(wGate);
        var u = I(wUp);
        var (fused, perRow, pairs) = GateUpPlan(normed, g, u, k, f);
        if (!fused || !FusesNorm(h, normWeight, k))
        {
            IOps.ResidualNorm(this, h, branch, normWeight, eps, normed);
            GateUpSwiGlu(normed, wGate, wUp, y, upScratch);
            return;
        }

        using var scope = backend.Enter();
        backend.NormGemvLaunches++;
        K.NormGateUpSwiGlu[(int)g.DType](S, Groups((f + pairs - 1) / pairs, nameof(AddRmsNormGateUpSwiGlu)), F(h), F(branch ?? h),
            branch is null ? 0 : 1, I(normWeight).Weight(Device), eps, F(normed), backend.NormCounter, g.Bytes.Cast<Kernels.Words4>(),
            u.Bytes.Cast<Kernels.Words4>(), k, f, perRow, F(y));
    }
}
