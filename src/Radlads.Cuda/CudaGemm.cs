using Radlads.Native;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// The prefill GEMMs on cuBLASLt: y[T, M] (fp32, or bf16 where asked) = x[T, K] (bf16) · Wᵀ (OutIn, W [M, K] bf16) or
/// x · W (InOut, W [K, M]), fp32 accumulation on the tensor cores, + an fp32 bias through the BIAS epilogue. One handle and one
/// 32 MiB workspace per backend; a plan (descriptor, layouts, the heuristic's algorithm) per shape, kept for the
/// backend's life (a model has a handful of shapes per prompt length). A plan's algorithm is the heuristic's first
/// choice, except for large GEMMs (<see cref="TuneMinFlops"/>), where the first call outside a graph recording times
/// the heuristic's top <see cref="TuneCandidates"/> and keeps the fastest (<see cref="Tune"/>): the heuristic's first
/// choice was 2–11 % slower than the best of its own list for most Qwen2.5 prefill shapes (H200, nineteenth session,
/// bench/prototypes/cublaslt-algos). The choice (a place in the heuristic's list) is kept process-wide per device,
/// shape and power-of-two bucket of T: every backend of a process computes a shape with the same algorithm (the same
/// bits), and a server seeing many prompt lengths times each matrix at most once a bucket; another process may choose
/// another one (any of them is within fp32 accumulation of the others). cuBLASLt is column-major: a row-major
/// y [T, M] is a column-major M × T matrix, so D = op(A)·B with A = W (K × M column-major for OutIn, transposed;
/// M × K for InOut, as is) and B = x (K × T column-major).
/// </summary>
internal sealed unsafe class CudaGemm : IDisposable
{
    /// <summary>NVIDIA's recommendation for Hopper (cuBLAS docs, cublasSetWorkspace); smaller GPUs need less.</summary>
    public const long WorkspaceBytes = 32L << 20;

    private const int MaxPlans = 512;

    /// <summary>The heuristic's algorithms a large GEMM's first call times (best first).</summary>
    public const int TuneCandidates = 8;

    /// <summary>
    /// GEMMs of at least this many FLOPs (2·T·K·M) are tuned. A timed shape costs 32 calls of itself once a process
    /// (~12 ms for a 7B down projection at T = 2,048, ~0.4 ms at this threshold); below it the saving could not repay that.
    /// </summary>
    public const double DefaultTuneMinFlops = 8e9;

    /// <summary>
    /// <see cref="DefaultTuneMinFlops"/> unless RADLADS_CUBLASLT_TUNE_MIN_GFLOP sets another threshold (in GFLOP, 0 to
    /// 10⁶; 0 tunes every GEMM with more than one candidate).
    /// </summary>
    public double TuneMinFlops { get; set; } = DefaultTuneMinFlops;

    /// <summary>RADLADS_CUBLASLT_TUNE_MIN_GFLOP (null when unset) as FLOPs; other text is an error that names the range.</summary>
    internal static double? ParseTuneMinFlops(string? text) =>
        TuningVariable.Number("RADLADS_CUBLASLT_TUNE_MIN_GFLOP", text, 0, minExcluded: false, 1e6, "a number of GFLOP from 0 to 1000000") * 1e9;

    // (device ordinal, shape with T rounded up to a power of two) → the place of the fastest in the heuristic's list, for
    // every CudaGemm of the process. Another T of the bucket takes the same place in its own list (always an algorithm
    // the heuristic offered for that T, so always valid) without timing.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int Device, PlanKey Bucket), int> Chosen = new();

    private static PlanKey Bucket(PlanKey key) => key with { T = (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)key.T), int.MaxValue) };

    private readonly CudaDevice device;

    private readonly CublasLt lt;
    private readonly nint handle;
    private readonly nint preference;
    private readonly Dictionary<PlanKey, Plan?> plans = [];
    private readonly DeviceMemory workspace;
    private DeviceMemory? sideWorkspace;
    private nint sideStream;
    private bool disposed;

    private CudaGemm(CudaDevice device, CublasLt lt)
    {
        this.device = device;
        this.lt = lt;
        handle = lt.Create();
        try
        {
            preference = lt.MatmulPreferenceCreate();
            lt.MatmulPreferenceSetAttribute(preference, MatmulPreferenceAttribute.MaxWorkspaceBytes, (ulong)WorkspaceBytes);
            // Up front, not at the first GEMM: a decode step recorded as a graph must not allocate, and the memory a
            // model holds is then all there after loading.
            workspace = new DeviceMemory(device, WorkspaceBytes);
        }
        catch
        {
            if (preference != 0)
            {
                lt.MatmulPreferenceDestroy(preference);
            }

            lt.Destroy(handle);
            throw;
        }
    }

    /// <summary>
    /// cuBLASLt for <paramref name="device"/>, or null with <paramref name="status"/> saying why (library missing,
    /// too old, or a GPU before Ampere, whose tensor cores have no bf16); on success <paramref name="status"/> names
    /// the library and its version.
    /// </summary>
    public static CudaGemm? TryCreate(CudaDevice device, out string status)
    {
        if (Environment.GetEnvironmentVariable("RADLADS_CUBLASLT") == "0")
        {
            status = "cuBLASLt off (RADLADS_CUBLASLT=0): prefill uses the built-in tiled matmul";
            return null;
        }

        if (device.ComputeMajor < 8)
        {
            status = $"cuBLASLt not used: sm_{device.ComputeCapability} has no bf16 tensor cores; prefill uses the built-in tiled matmul";
            return null;
        }

        if (!CublasLt.TryGet(out var lt, out var reason))
        {
            status = reason + "; prefill uses the built-in tiled matmul";
            return null;
        }

        try
        {
            var gemm = new CudaGemm(device, lt!);
            status = $"cuBLASLt {lt!.Version} ({lt.LibraryName})";
            return gemm;
        }
        catch (CudaException e)
        {
            status = $"cuBLASLt ({lt!.LibraryName}) could not start: {e.Message}; prefill uses the built-in tiled matmul";
            return null;
        }
    }

    /// <summary>
    /// Whether large GEMMs time the heuristic's candidates at their first call (default; RADLADS_CUBLASLT_TUNE=0 keeps
    /// the heuristic's first choice, the same in every process).
    /// </summary>
    public bool Tune { get; set; } = true;

    /// <summary>Shapes this instance has timed (tests check when tuning runs).</summary>
    public long Tunings { get; private set; }

    private readonly record struct PlanKey(int T, int K, int M, bool OutIn, bool Bias, int AlignX, int AlignW, int AlignY, int AlignBias, bool Bf16Out);

    private sealed class Plan
    {
        public nint Desc;
        public nint A;
        public nint B;
        public nint D;
        public PlanKey Key;

        // The heuristic's algorithms, best first, and the place of the one the plan runs.
        public CublasLtHeuristicResult[] Candidates = [];
        public int Choice;

        // Whether Algo is final: the shape is small, has one candidate, or has been timed (here or by another instance).
        public bool Settled;
    }

    /// <summary>The largest power of two (at most 256) that divides the pointer: what the heuristic may assume.</summary>
    private static int Alignment(ulong pointer) => pointer == 0 ? 256 : (int)Math.Min(256UL, pointer & (~pointer + 1));

    /// <summary>
    /// Whether cuBLASLt has a kernel for this shape with x in a fresh (256-byte aligned) block: false when the
    /// heuristic has none for it (the caller then uses its own kernel). Plans are kept, so asking again is cheap.
    /// </summary>
    public bool Supports(ulong w, bool outIn, ulong bias, ulong y, int t, int k, int m, bool bf16Out = false) =>
        Find(256, w, outIn, bias, y, t, k, m, bf16Out) is not null;

    /// <summary>
    /// Queues y = x·op(W) (+ bias) on <paramref name="stream"/>; <see cref="Supports"/> said yes for this shape.
    /// <paramref name="x"/> holds bf16 [T, K], <paramref name="w"/> bf16, <paramref name="bias"/> fp32 [M] or 0; y is
    /// written in bf16 (rounded from the fp32 sums by cuBLASLt) when <paramref name="bf16Out"/>.
    /// </summary>
    public void MatMul(ulong x, ulong w, bool outIn, ulong bias, ulong y, int t, int k, int m, nint stream, bool bf16Out = false)
    {
        var plan = Find(Alignment(x), w, outIn, bias, y, t, k, m, bf16Out)
            ?? throw new InvalidOperationException($"cuBLASLt has no kernel for T {t}, K {k}, M {m}: ask Supports first");
        if (bias != 0)
        {
            lt.MatmulDescSetAttribute(plan.Desc, MatmulDescAttribute.BiasPointer, bias);
        }

        if (!plan.Settled && Tune && !device.Driver.IsCapturing(stream))
        {
            Settle(plan, x, w, y, stream);
        }

        Queue(plan, plan.Choice, x, w, y, stream);
    }

    private void Queue(Plan plan, int candidate, ulong x, ulong w, ulong y, nint stream)
    {
        var c = plan.Candidates[candidate];
        ulong space = stream == sideStream && sideWorkspace is { } side ? side.Pointer : workspace.Pointer;
        lt.Matmul(handle, plan.Desc, 1f, w, plan.A, x, plan.B, 0f, y, plan.D, y, plan.D, c.Algo, space, c.WorkspaceSize, stream);
    }

    /// <summary>
    /// GEMMs queued on <paramref name="stream"/> (the backend's second stream, which runs beside the main one) get a
    /// workspace of their own: two GEMMs running at once must not share one (split-K partials live there). Allocated at
    /// the first call (prefill only: a recorded decode step never runs on the second stream).
    /// </summary>
    internal void UseSideStream(nint stream)
    {
        sideWorkspace ??= new DeviceMemory(device, WorkspaceBytes);
        sideStream = stream;
    }

    /// <summary>
    /// Times each candidate on this call's own operands (one warm-up, then three calls between two events; y is
    /// overwritten by the call that follows) and keeps the fastest; a candidate cuBLASLt refuses at run time is passed
    /// over. Waits for the stream once a candidate: only the first call of a shape pays it.
    /// </summary>
    private void Settle(Plan plan, ulong x, ulong w, ulong y, nint stream)
    {
        using var start = new CudaEvent(device);
        using var end = new CudaEvent(device);
        int best = 0;
        float bestMs = float.PositiveInfinity;
        for (int i = 0; i < plan.Candidates.Length; i++)
        {
            try
            {
                Queue(plan, i, x, w, y, stream);
                device.Driver.RecordEvent(start.Handle, stream);
                for (int r = 0; r < 3; r++)
                {
                    Queue(plan, i, x, w, y, stream);
                }

                device.Driver.RecordEvent(end.Handle, stream);
                end.Synchronize();
            }
            catch (CudaException) when (i > 0)
            {
                continue; // this algorithm does not run here; the heuristic's first choice always did
            }

            float ms = end.MillisecondsSince(start);
            if (ms < bestMs)
            {
                (best, bestMs) = (i, ms);
            }
        }

        Choose(plan, best);
        Chosen[(device.Ordinal, Bucket(plan.Key))] = best;
        Tunings++;
    }

    private static void Choose(Plan plan, int index)
    {
        plan.Choice = index;
        plan.Settled = true;
    }

    private Plan? Find(int alignX, ulong w, bool outIn, ulong bias, ulong y, int t, int k, int m, bool bf16Out)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var key = new PlanKey(t, k, m, outIn, bias != 0, alignX, Alignment(w), Alignment(y), Alignment(bias), bf16Out);
        if (!plans.TryGetValue(key, out var plan))
        {
            if (plans.Count >= MaxPlans)
            {
                // Many prompt lengths (a server): start over rather than grow without bound. Descriptors are host
                // objects that cublasLtMatmul reads when called, so queued GEMMs do not need them.
                DestroyPlans();
            }

            plan = CreatePlan(key, bias);
            plans[key] = plan;
        }

        return plan;
    }

    private Plan? CreatePlan(PlanKey key, ulong bias)
    {
        var plan = new Plan();
        bool keep = false;
        try
        {
            plan.Desc = lt.MatmulDescCreate(CublasComputeType.Compute32F, CudaDataType.R32F);
            lt.MatmulDescSetAttribute(plan.Desc, MatmulDescAttribute.TransA, (int)(key.OutIn ? CublasOperation.Transpose : CublasOperation.None));
            lt.MatmulDescSetAttribute(plan.Desc, MatmulDescAttribute.TransB, (int)CublasOperation.None);
            if (key.Bias)
            {
                lt.MatmulDescSetAttribute(plan.Desc, MatmulDescAttribute.Epilogue, (uint)CublasLtEpilogue.Bias);
                lt.MatmulDescSetAttribute(plan.Desc, MatmulDescAttribute.BiasPointer, bias);
            }

            // OutIn: W [M, K] row-major is K × M column-major (ld K), used transposed; InOut: W [K, M] is M × K (ld M).
            plan.A = key.OutIn
                ? lt.MatrixLayoutCreate(CudaDataType.R16BF, (ulong)key.K, (ulong)key.M, key.K)
                : lt.MatrixLayoutCreate(CudaDataType.R16BF, (ulong)key.M, (ulong)key.K, key.M);
            plan.B = lt.MatrixLayoutCreate(CudaDataType.R16BF, (ulong)key.K, (ulong)key.T, key.K);
            plan.D = lt.MatrixLayoutCreate(key.Bf16Out ? CudaDataType.R16BF : CudaDataType.R32F, (ulong)key.M, (ulong)key.T, key.M);
            lt.MatmulPreferenceSetAttribute(preference, MatmulPreferenceAttribute.MinAlignmentABytes, (uint)key.AlignW);
            lt.MatmulPreferenceSetAttribute(preference, MatmulPreferenceAttribute.MinAlignmentBBytes, (uint)key.AlignX);
            lt.MatmulPreferenceSetAttribute(preference, MatmulPreferenceAttribute.MinAlignmentCBytes, (uint)key.AlignY);
            lt.MatmulPreferenceSetAttribute(preference, MatmulPreferenceAttribute.MinAlignmentDBytes, (uint)key.AlignY);
            plan.Key = key;
            plan.Candidates = lt.MatmulAlgoGetHeuristics(handle, plan.Desc, plan.A, plan.B, plan.D, plan.D, preference, TuneCandidates);
            if (plan.Candidates.Length == 0)
            {
                return null;
            }

            // Choice 0 (the heuristic's first) until timed, or the process's choice for this bucket.
            if (Tune && Chosen.TryGetValue((device.Ordinal, Bucket(key)), out int index) && index < plan.Candidates.Length)
            {
                Choose(plan, index);
            }
            else
            {
                plan.Settled = plan.Candidates.Length == 1 || 2.0 * key.T * key.K * key.M < TuneMinFlops;
            }

            keep = true;
            return plan;
        }
        finally
        {
            if (!keep)
            {
                Destroy(plan);
            }
        }
    }

    private void DestroyPlans()
    {
        foreach (var plan in plans.Values)
        {
            if (plan is not null)
            {
                Destroy(plan);
            }
        }

        plans.Clear();
    }

    private void Destroy(Plan plan)
    {
        if (plan.A != 0)
        {
            lt.MatrixLayoutDestroy(plan.A);
        }

        if (plan.B != 0)
        {
            lt.MatrixLayoutDestroy(plan.B);
        }

        if (plan.D != 0)
        {
            lt.MatrixLayoutDestroy(plan.D);
        }

        if (plan.Desc != 0)
        {
            lt.MatmulDescDestroy(plan.Desc);
        }
    }

    /// <summary>Frees the plans, the workspace and the handle; the caller has synchronised the stream.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        DestroyPlans();
        workspace.Dispose();
        sideWorkspace?.Dispose();
        lt.MatmulPreferenceDestroy(preference);
        lt.Destroy(handle);
    }
}
