using Radlads.Checkpoints;
using Radlads.Native;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// The MLP after its residual norm (IOps.AddRmsNormMlp): at decode optionally one persistent kernel (kernels/matmul.cu
/// mlp_decode_bf16_*: norm, gate/up + SwiGLU, a grid barrier, down), with the bits of add_rms_norm_f32, gate_up_swiglu
/// and gemv_vec; at prefill on cuBLASLt with bf16 intermediates (<see cref="Bf16PrefillMlp"/>); elsewhere the ops it
/// stands for.
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
            if (Bf16PrefillMlp(h, branch, normWeight, eps, normed, wGate, wUp, wDown, act, upScratch, y))
            {
                return;
            }

            AddRmsNormGateUpSwiGlu(h, branch, normWeight, eps, normed, wGate, wUp, act, upScratch);
            MatMul(act, wDown, null, y);
            return;
        }

        backend.Enter();
        var n = NormArguments(h, branch, normWeight, normed);
        int nt = plan.NormThreads, c = h.RowLength, f = wGate.Shape[0], stages = plan.Stages;
        ulong pg = C(wGate).Pointer, pu = C(wUp).Pointer, pd = C(wDown).Pointer, pa = P(act), py = P(y), bar = backend.GridBarrier;
        ulong sk = P(upScratch); // block 0 keeps h + branch here until every block has read h
        void** a = stackalloc void*[] { &n.H, &n.Branch, &n.Weight, &n.WeightType, &eps, &n.Normed, &nt, &c, &pg, &pu, &pd, &pa, &f, &py, &bar, &sk, &stages };
        if (stages > 0)
        {
            backend.StreamMlpLaunches++;
            backend.LaunchCooperative(plan.Function, "mlp_stream", plan.Blocks, StreamThreads, plan.SharedBytes, a, backend.StreamPdl);
            return;
        }

        backend.PersistentMlpLaunches++;
        backend.LaunchCooperative(plan.Function, "mlp_decode", plan.Blocks, Threads, plan.SharedBytes, a);
    }

    /// <summary>
    /// Prefill on cuBLASLt with bf16 weights (T ≥ GemmMinRows, not recording, <see cref="CudaBackend.Bf16Mlp"/>): the
    /// residual norm (which keeps a bf16 copy of normed, else normed is rounded here), the gate and up GEMMs written in
    /// bf16 into upScratch's memory (gate in its first 2·T·F bytes, up in the next), swiglu_bf16_bf16 into act's memory,
    /// and the down GEMM from there into y. Against the ops it stands for (gate and up in fp32, SwiGLU writing act in fp32 and a bf16 copy), a 7B
    /// layer at T = 2048 moves ~465 MB less. Gate and up are rounded to bf16 before the SwiGLU, which the composition
    /// does not do: y is within bf16 rounding of it, not the same bits. False (nothing queued) where it does not apply.
    /// </summary>
    private bool Bf16PrefillMlp(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp, Tensor wDown,
        Tensor act, Tensor upScratch, Tensor y)
    {
        int t = h.RowCount, c = h.RowLength, f = wGate.Shape[0];
        var gemm = backend.Gemm;
        if (!backend.Bf16Mlp || gemm is null || t < backend.GemmMinRows || backend.Recording || c == 0 || f == 0
            || wGate.DType != DType.BF16 || wUp.DType != DType.BF16 || wDown.DType != DType.BF16 || P(act) % 256 != 0)
        {
            return false;
        }

        ulong pg = C(wGate).Pointer, pu = C(wUp).Pointer, pd = C(wDown).Pointer, py = P(y), pa = P(act);
        ulong gateBf16 = P(upScratch), upBf16 = gateBf16 + ((ulong)t * (ulong)f * 2);
        if (!gemm.Supports(pg, true, 0, gateBf16, t, c, f, bf16Out: true) || !gemm.Supports(pu, true, 0, upBf16, t, c, f, bf16Out: true)
            || !gemm.Supports(pd, true, 0, py, t, f, c))
        {
            return false;
        }

        IOps.ResidualNorm(this, h, branch, normWeight, eps, normed);
        backend.Enter();
        using var copy = TakeBf16CopyOf(normed);
        using var rounded = copy is null ? ToBf16(P(normed), (long)t * c) : null;
        ulong px = copy?.Pointer ?? P(rounded!);
        gemm.MatMul(px, pg, true, 0, gateBf16, t, c, f, backend.Stream, bf16Out: true);
        gemm.MatMul(px, pu, true, 0, upBf16, t, c, f, backend.Stream, bf16Out: true);
        long n = (long)t * f;
        int vec = n % 8 == 0 && gateBf16 % 16 == 0 && upBf16 % 16 == 0 ? 1 : 0;
        void** a = stackalloc void*[] { &gateBf16, &upBf16, &pa, &n, &vec };
        Elementwise(K.SwiGluBf16Bf16, "swiglu_bf16_bf16", n, a);
        gemm.MatMul(pa, pd, true, 0, py, t, f, c, backend.Stream);
        backend.Bf16MlpLaunches++;
        return true;
    }

    /// <summary>Whether the memory of two tensors overlaps (y may share branch's, never h's, normed's or act's).</summary>
    private bool Overlaps(Tensor a, Tensor b)
    {
        ulong pa = P(a), pb = P(b);
        return pa < pb + ((ulong)b.ElementCount * sizeof(float)) && pb < pa + ((ulong)a.ElementCount * sizeof(float));
    }

    /// <summary>
    /// The persistent kernel's launch for these tensors, or null where it does not apply. Stages &gt; 0: mlp_stream with
    /// that many ring stages (its extra argument); 0: mlp_decode.
    /// </summary>
    private readonly record struct MlpPlan(nint Function, uint Blocks, uint SharedBytes, int NormThreads, int Stages = 0);

    /// <summary>mlp_stream's block on sm_90: two groups of 256 consumer threads and one producer warp (STREAM_CONSUMERS + 32 in matmul.cu).</summary>
    private const uint StreamThreads = 544;

    /// <summary>Bytes of one ring stage (STREAM_STAGE in matmul.cu).</summary>
    private const int StreamStageBytes = 16384;

    /// <summary>The fewest and most ring stages worth a launch (also RADLADS_STREAM_STAGES's range, <see cref="CudaBackend.StreamStages"/>).</summary>
    internal const int StreamMinStages = 4, StreamMaxStages = 16;

    /// <summary>
    /// Where mlp_decode applies: one row, bf16 weights, C and F multiples of 8 with 16-byte aligned weights and act
    /// (the vector GEMVs' conditions), a gate/up level of at most 2 (blocks of 256 threads, as the down GEMV), the
    /// norm's vector path in a block of 256 (<see cref="FusedNormThreads"/>), y clear of act, h, normed and upScratch
    /// (it may be branch), F ≥ C (upScratch holds h + branch for block 0) and C floats of shared memory. The grid
    /// is every block that fits on the GPU at once (the occupancy the driver reports), as a cooperative launch needs.
    /// mlp_stream (<see cref="CudaBackend.StreamMlp"/>, tried first) needs the same, sm_90 and room for at least
    /// <see cref="StreamMinStages"/> ring stages beside max(C, F) floats; its grid is one block an SM.
    /// </summary>
    private MlpPlan? PersistentMlpPlan(Tensor h, Tensor? branch, Tensor normWeight, Tensor normed, Tensor wGate, Tensor wUp, Tensor wDown,
        Tensor act, Tensor upScratch, Tensor y)
    {
        int c = h.RowLength, f = wGate.Shape[0];
        if (!(backend.PersistentMlp || backend.StreamMlp) || !backend.Device.Driver.HasLaunchEx || h.RowCount != 1 || c == 0 || f == 0 || c % 8 != 0 || f % 8 != 0
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

        if (backend.StreamMlp && backend.Device.ComputeMajor >= 9)
        {
            // The ring: as many 16 KB stages as fit beside x (max(C, F) floats) and two mbarriers a stage; one block a SM.
            var function = K.MlpStreamBf16[gateUpLevel][GemvLevel(c)];
            int xBytes = Math.Max(c, f) * sizeof(float);
            int room = backend.Device.Driver.GetFunctionAttribute(function, FunctionAttribute.MaxDynamicSharedSizeBytes) - xBytes;
            int stages = Math.Min(backend.StreamStages ?? StreamMaxStages, room / (StreamStageBytes + 16));
            uint streamShared = (uint)((stages * (StreamStageBytes + 16)) + xBytes);
            if (stages >= StreamMinStages && BlocksPerSm(function, StreamThreads, streamShared) >= 1)
            {
                return new MlpPlan(function, (uint)backend.Device.MultiprocessorCount, streamShared, nt, stages);
            }
        }

        if (!backend.PersistentMlp)
        {
            return null;
        }

        var decode = K.MlpDecodeBf16[gateUpLevel][GemvLevel(c)];
        int perSm = BlocksPerSm(decode, Threads, shared);
        return perSm < 1 ? null : new MlpPlan(decode, (uint)(perSm * backend.Device.MultiprocessorCount), shared, nt);
    }

    /// <summary>Blocks of a persistent kernel that fit on one SM (the driver's occupancy; 0 past its shared memory), cached.</summary>
    private int BlocksPerSm(nint function, uint threads, uint shared)
    {
        if (!persistentBlocksPerSm.TryGetValue((function, (int)shared), out int perSm))
        {
            var driver = backend.Device.Driver;
            perSm = shared > driver.GetFunctionAttribute(function, FunctionAttribute.MaxDynamicSharedSizeBytes)
                ? 0 : driver.MaxActiveBlocksPerMultiprocessor(function, (int)threads, (int)shared);
            persistentBlocksPerSm[(function, (int)shared)] = perSm;
        }

        return perSm;
    }
}
