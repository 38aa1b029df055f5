using Radlads.Ops;

namespace Radlads.Ilgpu;

/// <summary>
/// The MLP's residual norm fused into its gate/up (<see cref="Kernels.FusedKernels.NormGateUpSwiGlu{TW}"/>): one launch
/// instead of AddRmsNorm then GateUpSwiGlu, the same bits. <see cref="IOps.AddRmsNormMatMulShared"/> keeps the interface
/// default here (ILGPU runs q/k/v as one GEMV launch each, with no grouped kernel to fold the norm into).
/// </summary>
internal sealed partial class IlgpuOps
{
    public void AddRmsNormGateUpSwiGlu(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp,
        Tensor y, Tensor upScratch)
    {
        FusedOpChecks.ResidualNorm(nameof(AddRmsNormGateUpSwiGlu), h, branch, normed, [y, upScratch]);
        FusedOpChecks.GateUpSwiGlu(normed, wGate, wUp, y, upScratch);
        int k = h.RowLength;
        int f = wGate.Shape[0];
        var g = I(wGate);
        var u = I(wUp);
        var (fused, perRow, pairs) = GateUpPlan(normed, g, u, k, f);
        if (!fused || h.RowCount != 1 || k > Kernels.FusedKernels.MaxNormGemvC || normWeight.ElementCount < k)
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
