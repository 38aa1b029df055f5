using Radlads.Checkpoints;
using Radlads.Native;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// The MLP after its residual norm at decode (IOps.AddRmsNormMlp) as one persistent kernel (kernels/matmul.cu
/// mlp_decode_bf16_*: norm, gate/up + SwiGLU, a grid barrier, down), with the bits of add_rms_norm_f32, gate_up_swiglu
/// and gemv_vec; elsewhere the ops it stands for.
/// </summary>
internal sealed unsafe partial class CudaOps
{
    private readonly Dictionary<(nint Function, int Shared), int> persistentBlocksPerSm = [];

    public void AddRmsNormMlp(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp, Tensor wDown,
        Tensor act, Tensor upScratch, Tensor y)
    {
        FusedOpChecks.ResidualNormMlp(h, branch, normed, wGate, wUp, wDown, act, upScratch, y);
        if (PersistentMlpPlan(h, branch, normWeight, normed, wGate, wUp, wDown, act, upScratch, y) is not { } plan)
        {
            AddRmsNormGateUpSwiGlu(h, branch, normWeight, eps, normed, wGate, wUp, act, upScratch);
            MatMul(act, wDown, null, y);
            return;
        }

        backend.Enter();
        var n = NormArguments(h, branch, normWeight, normed);
        int nt = plan.NormThreads, c = h.RowLength, f = wGate.Shape[0];
        ulong pg = C(wGate).Pointer, pu = C(wUp).Pointer, pd = C(wDown).Pointer, pa = P(act), py = P(y), bar = backend.GridBarrier;
        ulong sk = P(upScratch); // block 0 keeps h + branch here until every block has read h
        void** a = stackalloc void*[] { &n.H, &n.Branch, &n.Weight, &n.WeightType, &eps, &n.Normed, &nt, &c, &pg, &pu, &pd, &pa, &f, &py, &bar, &sk };
        backend.PersistentMlpLaunches++;
        backend.LaunchCooperative(plan.Function, "mlp_decode", plan.Blocks, Threads, plan.SharedBytes, a);
    }

    /// <summary>Whether the memory of two tensors overlaps (y may share branch's, never h's, normed's or act's).</summary>
    private bool Overlaps(Tensor a, Tensor b)
    {
        ulong pa = P(a), pb = P(b);
        return pa < pb + ((ulong)b.ElementCount * sizeof(float)) && pb < pa + ((ulong)a.ElementCount * sizeof(float));
    }

    /// <summary>The persistent kernel's launch for these tensors, or null where it does not apply.</summary>
    private readonly record struct MlpPlan(nint Function, uint Blocks, uint SharedBytes, int NormThreads);

    /// <summary>
    /// Where mlp_decode applies: one row, bf16 weights, C and F multiples of 8 with 16-byte aligned weights and act
    /// (the vector GEMVs' conditions), a gate/up level of at most 2 (blocks of 256 threads, as the down GEMV), the
    /// norm's vector path in a block of 256 (<see cref="FusedNormThreads"/>), y clear of act, h, normed and upScratch
    /// (it may be branch), F ≥ C (upScratch holds h + branch for block 0) and C floats of shared memory. The grid
    /// is every block that fits on the GPU at once (the occupancy the driver reports), as a cooperative launch needs.
    /// </summary>
    private MlpPlan? PersistentMlpPlan(Tensor h, Tensor? branch, Tensor normWeight, Tensor normed, Tensor wGate, Tensor wUp, Tensor wDown,
        Tensor act, Tensor upScratch, Tensor y)
    {
        int c = h.RowLength, f = wGate.Shape[0];
        if (!backend.PersistentMlp || !backend.Device.Driver.HasLaunchEx || h.RowCount != 1 || c == 0 || f == 0 || c % 8 != 0 || f % 8 != 0
            || wGate.DType != DType.BF16 || wUp.DType != DType.BF16 || wDown.DType != DType.BF16
            || C(wGate).Pointer % 16 != 0 || C(wUp).Pointer % 16 != 0 || C(wDown).Pointer % 16 != 0 || P(act) % 16 != 0
            || P(upScratch) % 16 != 0 || f < c)
        {
            return null;
        }

        var (gateUpLevel, _, gateUpThreads) = GateUpGeometry(f);
        uint shared = (uint)c * sizeof(float); // x
        if (gateUpLevel > 2 || gateUpThreads != Threads
            || FusedNormThreads(h, branch, normWeight, normed, Threads, [act, upScratch]) is not { } nt
            || Overlaps(y, act) || Overlaps(y, h) || Overlaps(y, normed) || Overlaps(y, upScratch))
        {
            return null;
        }

        var function = K.MlpDecodeBf16[gateUpLevel][GemvLevel(c)];
        if (!persistentBlocksPerSm.TryGetValue((function, (int)shared), out int perSm))
        {
            var driver = backend.Device.Driver;
            perSm = shared > driver.GetFunctionAttribute(function, FunctionAttribute.MaxDynamicSharedSizeBytes)
                ? 0 : driver.MaxActiveBlocksPerMultiprocessor(function, (int)Threads, (int)shared);
            persistentBlocksPerSm[(function, (int)shared)] = perSm;
        }

        return perSm < 1 ? null : new MlpPlan(function, (uint)(perSm * backend.Device.MultiprocessorCount), shared, nt);
    }
}
