using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// <see cref="IBackwardOps"/> on the GPU (issue #7): the same contract as the CPU reference
/// (<c>CpuBackwardOps</c>): weight gradients accumulate, input gradients are written in full, null outputs are not
/// computed, aliasing as the interface documents. Each method checks its shapes as the CPU does, then queues its
/// kernels (kernels/backward*.cu) on the backend's stream. Weight gradients of per-channel vectors are deterministic
/// column sums (no float atomics); MatMul's dW is one tiled kernel per call, also without atomics. Split by op family
/// like the CPU reference; this file holds the generic ops.
/// </summary>
internal sealed unsafe partial class CudaBackwardOps : IBackwardOps
{
    private const uint Threads = 256;

    private readonly CudaBackend backend;

    public CudaBackwardOps(CudaBackend backend)
    {
        this.backend = backend;
        K = new BackwardKernels(backend.Library);
    }

    private BackwardKernels K { get; }

    private static CudaTensor C(Tensor t) => CudaBackend.Cuda(t);

    private static ulong P(Tensor t) => C(t).Pointer;

    /// <summary>The pointer of an optional fp32 gradient output (0 when null), checked to hold <paramref name="count"/> elements.</summary>
    private static ulong Out(Tensor? t, long count, string op, string name)
    {
        if (t is null)
        {
            return 0;
        }

        if (t.ElementCount != count)
        {
            throw new ArgumentException($"{op}: {name} {t.ShapeText} does not hold {count} elements");
        }

        if (t.DType != DType.F32)
        {
            throw new ArgumentException($"{op}: gradient {name} {t.ShapeText} is {t.DType}; gradient buffers are F32");
        }

        return C(t).Pointer;
    }

    /// <summary>An fp32 activation input, checked to hold <paramref name="count"/> elements.</summary>
    private static ulong In(Tensor t, long count, string op, string name)
    {
        if (t.ElementCount != count)
        {
            throw new ArgumentException($"{op}: {name} {t.ShapeText} does not hold {count} elements");
        }

        if (t.DType != DType.F32)
        {
            throw new ArgumentException($"{op}: {name} {t.ShapeText} is {t.DType}, not F32");
        }

        return C(t).Pointer;
    }

    /// <summary>A small parameter vector of any dtype: its pointer and dtype code, checked to hold <paramref name="length"/> elements.</summary>
    private static (ulong Pointer, int DType) Param(Tensor t, int length, string op, string name)
    {
        if (t.ElementCount != length)
        {
            throw new ArgumentException($"{op}: {name} {t.ShapeText} does not hold {length} elements");
        }

        var c = C(t);
        return (c.Pointer, (int)c.DType);
    }

    /// <summary>Blocks for a grid-stride loop over <paramref name="n"/> elements.</summary>
    private uint Blocks(long n) => (uint)Math.Min((n + Threads - 1) / Threads, backend.Device.MultiprocessorCount * 32L);

    private void Elementwise(nint function, string name, long n, void** arguments)
    {
        if (n > 0)
        {
            backend.Launch(function, name, Blocks(n), 1, Threads, 0, arguments);
        }
    }

    /// <summary>Blocks of 256 threads for one warp per item.</summary>
    private static uint WarpBlocks(long items) => (uint)((items * 32 + Threads - 1) / Threads);

    /// <summary>
    /// out[z, j] += Σ_r a[z, r, j] (⊙ b[z, r, j] when b ≠ 0) for z &lt; batches: the deterministic column sum
    /// (column_sum_f32) behind every per-channel weight gradient. Nothing happens when <paramref name="output"/> is 0
    /// (a gradient passed as null).
    /// </summary>
    private void ColumnSum(ulong a, long aStride, ulong b, long bStride, int rows, int c, ulong output, long outStride, int batches = 1)
    {
        if (output == 0 || rows == 0 || c == 0 || batches == 0)
        {
            return;
        }

        void** args = stackalloc void*[] { &a, &aStride, &b, &bStride, &rows, &c, &output, &outStride };
        backend.Launch(K.ColumnSum, "column_sum_f32", (uint)((c + 31) / 32), (uint)batches, Threads, 0, args);
    }

    /// <summary>An fp32 scratch tensor from the backend's block cache (given back when disposed; stream-ordered).</summary>
    private Tensor Scratch(params int[] shape) => backend.AllocateUninitialized(shape);

    // y = s·x
    public void ScaleBackward(Tensor dy, float s, Tensor dx)
    {
        backend.Enter();
        long n = dy.ElementCount;
        ulong pg = In(dy, n, nameof(ScaleBackward), "dy"), pd = Out(dx, n, nameof(ScaleBackward), "dx");
        void** a = stackalloc void*[] { &pg, &s, &pd, &n };
        Elementwise(K.ScaleBackward, "scale_backward_f32", n, a);
    }

    // y = a ⊙ b
    public void MultiplyBackward(Tensor a, Tensor b, Tensor dy, Tensor? da, Tensor? db)
    {
        backend.Enter();
        const string op = nameof(MultiplyBackward);
        long n = dy.ElementCount;
        ulong pa = In(a, n, op, "a"), pb = In(b, n, op, "b"), pg = In(dy, n, op, "dy");
        ulong pda = Out(da, n, op, "da"), pdb = Out(db, n, op, "db");
        void** args = stackalloc void*[] { &pa, &pb, &pg, &pda, &pdb, &n };
        Elementwise(K.MultiplyBackward, "multiply_backward_f32", n, args);
    }

    // y = tanh(x)
    public void TanhBackward(Tensor y, Tensor dy, Tensor dx) => FromOutput(K.TanhBackward, "tanh_backward_f32", y, dy, dx);

    // y = σ(x)
    public void SigmoidBackward(Tensor y, Tensor dy, Tensor dx) => FromOutput(K.SigmoidBackward, "sigmoid_backward_f32", y, dy, dx);

    private void FromOutput(nint function, string name, Tensor y, Tensor dy, Tensor dx)
    {
        backend.Enter();
        long n = y.ElementCount;
        ulong py = In(y, n, name, "y"), pg = In(dy, n, name, "dy"), pd = Out(dx, n, name, "dx");
        void** args = stackalloc void*[] { &py, &pg, &pd, &n };
        Elementwise(function, name, n, args);
    }

    // y = σ(x + bias): dx as SigmoidBackward, then dBias += Σ_t dx[t] (a column sum of the written dx).
    public void AddSigmoidBackward(Tensor y, Tensor dy, Tensor dx, Tensor? dBias)
    {
        int c = y.RowLength;
        ulong pb = Out(dBias, c, nameof(AddSigmoidBackward), "dBias");
        SigmoidBackward(y, dy, dx);
        ColumnSum(P(dx), 0, 0, 0, y.RowCount, c, pb, 0);
    }

    // y = silu(gate) ⊙ up
    public void SwiGluBackward(Tensor gate, Tensor up, Tensor dy, Tensor? dGate, Tensor? dUp)
    {
        backend.Enter();
        const string op = nameof(SwiGluBackward);
        long n = gate.ElementCount;
        ulong pg = In(gate, n, op, "gate"), pu = In(up, n, op, "up"), pd = In(dy, n, op, "dy");
        ulong pdg = Out(dGate, n, op, "dGate"), pdu = Out(dUp, n, op, "dUp");
        void** args = stackalloc void*[] { &pg, &pu, &pd, &pdg, &pdu, &n };
        Elementwise(K.SwiGluBackward, "swiglu_backward_f32", n, args);
    }

    public void RopeBackward(Tensor dx, int heads, int headDim, int startPosition, float theta)
    {
        backend.Enter();
        if (dx.RowLength != heads * headDim || headDim % 2 != 0)
        {
            throw new ArgumentException($"RopeBackward: {dx.ShapeText} is not [T, {heads}·{headDim}] with an even head dim");
        }

        int tokens = dx.RowCount;
        ulong px = Out(dx, dx.ElementCount, nameof(RopeBackward), "dx");
        void** a = stackalloc void*[] { &px, &tokens, &heads, &headDim, &startPosition, &theta };
        Elementwise(K.RopeBackward, "rope_backward_f32", (long)tokens * heads * (headDim / 2), a);
    }

    // y head h = x head ⌊h / groups⌋
    public void RepeatKvBackward(Tensor dy, int kvHeads, int headDim, int groups, Tensor dx)
    {
        backend.Enter();
        if (dx.RowLength != kvHeads * headDim || dy.RowLength != kvHeads * groups * headDim || dx.RowCount != dy.RowCount)
        {
            throw new ArgumentException($"RepeatKvBackward: dy {dy.ShapeText}, dx {dx.ShapeText} for {kvHeads} KV heads × {groups}");
        }

        int tokens = dx.RowCount;
        ulong pg = In(dy, dy.ElementCount, nameof(RepeatKvBackward), "dy"), pd = Out(dx, dx.ElementCount, nameof(RepeatKvBackward), "dx");
        void** a = stackalloc void*[] { &pg, &tokens, &kvHeads, &headDim, &groups, &pd };
        Elementwise(K.RepeatKvBackward, "repeat_kv_backward_f32", dx.ElementCount, a);
    }

    public void GroupNormBackward(Tensor x, Tensor weight, Tensor dy, int groups, float eps, Tensor? dx, Tensor? dWeight,
        Tensor? dBias)
    {
        backend.Enter();
        const string op = nameof(GroupNormBackward);
        int width = x.RowLength;
        if (groups <= 0 || width % groups != 0 || dy.ElementCount != x.ElementCount || (dx is not null && dx.ElementCount != x.ElementCount))
        {
            throw new ArgumentException($"GroupNormBackward: x {x.ShapeText}, dy {dy.ShapeText}, dx {dx?.ShapeText}, {groups} groups");
        }

        int d = width / groups;
        int rows = x.RowCount;
        var (pw, wType) = Param(weight, width, op, "weight");
        ulong px = In(x, x.ElementCount, op, "x"), pg = In(dy, x.ElementCount, op, "dy");
        ulong pdx = Out(dx, x.ElementCount, op, "dx"), pdw = Out(dWeight, width, op, "dWeight"), pdb = Out(dBias, width, op, "dBias");
        if ((long)rows * width == 0)
        {
            return;
        }

        // dBias first: dx may be written over dy.
        ColumnSum(pg, 0, 0, 0, rows, width, pdb, 0);
        using var terms = dWeight is null ? null : Scratch(rows, width);
        ulong pt = terms is null ? 0 : P(terms);
        if (pdx != 0 || pt != 0)
        {
            void** args = stackalloc void*[] { &px, &pw, &wType, &pg, &rows, &groups, &d, &eps, &pdx, &pt };
            backend.Launch(K.GroupNormBackward, "group_norm_backward_f32", WarpBlocks((long)rows * groups), 1, Threads, 0, args);
        }

        ColumnSum(pt, 0, 0, 0, rows, width, pdw, 0);
    }

    public void TokenShiftBackward(Tensor dDelta, Tensor? dFinalState, Tensor dx, Tensor? dInitialState)
    {
        backend.Enter();
        const string op = nameof(TokenShiftBackward);
        int c = dDelta.RowLength;
        int tokens = dDelta.RowCount;
        if (dx.ElementCount != dDelta.ElementCount || (dFinalState is not null && dFinalState.ElementCount != c)
            || (dInitialState is not null && dInitialState.ElementCount != c))
        {
            throw new ArgumentException($"TokenShiftBackward: dDelta {dDelta.ShapeText}, dx {dx.ShapeText}, " +
                $"dFinalState {dFinalState?.ShapeText}, dInitialState {dInitialState?.ShapeText}");
        }

        long n = dDelta.ElementCount;
        ulong pg = In(dDelta, n, op, "dDelta"), pf = dFinalState is null ? 0 : In(dFinalState, c, op, "dFinalState");
        ulong pd = Out(dx, n, op, "dx"), pi = Out(dInitialState, c, op, "dInitialState");
        if (n == 0)
        {
            // No tokens: the initial state receives nothing (the CPU clears it).
            if (pi != 0)
            {
                Fill(dInitialState!, 0f);
            }

            return;
        }

        // dx[t] reads dDelta[t + 1]: when they share memory, read from a copy.
        using var copy = Overlap(pg, pd, n) ? Scratch(tokens, c) : null;
        if (copy is not null)
        {
            backend.Copy(dDelta, copy);
            pg = P(copy);
        }

        void** a = stackalloc void*[] { &pg, &pf, &pd, &pi, &tokens, &c };
        Elementwise(K.TokenShiftBackward, "token_shift_backward_f32", n, a);
    }

    private static bool Overlap(ulong a, ulong b, long floats)
    {
        ulong bytes = (ulong)floats * sizeof(float);
        return a < b + bytes && b < a + bytes;
    }

    // y = x + delta ⊙ mix
    public void MixShiftBackward(Tensor delta, Tensor mix, Tensor dy, Tensor? dx, Tensor? dDelta, Tensor? dMix)
    {
        backend.Enter();
        const string op = nameof(MixShiftBackward);
        int c = dy.RowLength;
        long n = dy.ElementCount;
        var (pm, mType) = Param(mix, c, op, "mix");
        ulong pdl = In(delta, n, op, "delta"), pg = In(dy, n, op, "dy");
        ulong pdx = Out(dx, n, op, "dx"), pdd = Out(dDelta, n, op, "dDelta"), pdm = Out(dMix, c, op, "dMix");
        // dMix += Σ_t dy ⊙ delta first, as the CPU (before dx or dDelta are written).
        ColumnSum(pg, 0, pdl, 0, dy.RowCount, c, pdm, 0);
        if (pdx != 0 || pdd != 0)
        {
            void** a = stackalloc void*[] { &pg, &pm, &mType, &pdx, &pdd, &n, &c };
            Elementwise(K.MixShiftBackward, "mix_shift_backward_f32", n, a);
        }
    }
}
