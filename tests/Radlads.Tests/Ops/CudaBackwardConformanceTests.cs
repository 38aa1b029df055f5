using Radlads.Checkpoints;
using Radlads.Cpu;
using Radlads.Cuda;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// Every <see cref="IBackwardOps"/> method of the CUDA backend against the CPU reference (<see cref="CpuBackwardOps"/>)
/// on the same fresh random inputs: T = 1, 2, 5, 17, 37/40 and past several 16-step checkpoints, several heads, head
/// sizes 16–128 for the recurrences, GQA groups, both MatMul layouts with f32/f16/bf16 weights (tiled and T = 1 GEMV
/// paths for dx, several dW tiles), both RAD-RWKV7 key variants and the eps guard, non-zero initial states with and
/// without a final-state gradient, null outputs. Input gradients are poisoned with NaN on both backends (every element
/// must be written); weight gradients start from the same random prior on both (they must be added to). The training
/// ops (loss, fill, sum of squares, AdamW) are checked against float64/fp32 definitions written from the interface's
/// doc comments, and against the CPU once it implements them. Without a GPU every test is skipped with the reason the
/// backend gave.
/// </summary>
public sealed class CudaBackwardConformanceTests : IDisposable
{
    private readonly List<IDisposable> owned = [];
    private readonly CpuBackend cpu = new();
    private readonly CpuBackwardOps cpuOps = new();
    private readonly CudaBackend? cuda;
    private readonly string? unavailable;

    public CudaBackwardConformanceTests()
    {
        try
        {
            cuda = new CudaBackend();
        }
        catch (RadladsException e)
        {
            unavailable = e.Message;
        }
    }

    private CudaBackend Gpu
    {
        get
        {
            if (cuda is null)
            {
                Assert.Skip(unavailable ?? "CUDA unavailable");
            }

            return cuda;
        }
    }

    /// <summary>The same values on the CPU and on the GPU.</summary>
    private sealed record Pair(Tensor Cpu, Tensor Gpu);

    /// <summary>Which side a call runs on: picks that side's tensor of a pair.</summary>
    private sealed class Side(bool gpu)
    {
        public bool IsGpu { get; } = gpu;

        public Tensor this[Pair p] => IsGpu ? p.Gpu : p.Cpu;

        public Tensor? Or(Pair? p) => p is null ? null : this[p];
    }

    private T Own<T>(T d)
        where T : IDisposable
    {
        owned.Add(d);
        return d;
    }

    private Pair In(float[] values, params int[] shape) =>
        new(Own(cpu.FromFloats(values, shape)), Own(Gpu.FromFloats(values, shape)));

    /// <summary>An input-gradient buffer, poisoned with NaN on both sides: every element must be written.</summary>
    private Pair Out(params int[] shape)
    {
        var p = new Pair(Own(cpu.Allocate(shape)), Own(Gpu.Allocate(shape)));
        var nan = Enumerable.Repeat(float.NaN, (int)p.Cpu.ElementCount).ToArray();
        cpu.Upload(nan, p.Cpu);
        Gpu.Upload(nan, p.Gpu);
        return p;
    }

    private Pair? OutIf(bool present, params int[] shape) => present ? Out(shape) : null;

    private Pair Weight(float[] values, DType dtype, params int[] shape)
    {
        var w = Own(new NativeWeight(values, dtype, shape));
        return new Pair(Own(cpu.LoadWeight(w.Data)), Own(Gpu.LoadWeight(w.Data)));
    }

    private float[] Read(IBackend backend, Tensor t)
    {
        var values = new float[t.ElementCount];
        backend.Download(t, values);
        return values;
    }

    /// <summary>Runs <paramref name="call"/> with the CPU reference, then with the CUDA backward.</summary>
    private void Run(Action<IBackwardOps, Side> call)
    {
        var gpuOps = Gpu.BackwardOps;
        call(cpuOps, new Side(false));
        call(gpuOps, new Side(true));
        Gpu.Synchronize();
    }

    /// <summary>The GPU result against the CPU's: |gpu − cpu| ≤ rel·|cpu| + relToMax·max|cpu|, finite everywhere.</summary>
    private void Check(Pair p, string what, bool recurrence = false, bool mayBeZero = false)
    {
        var expected = Read(cpu, p.Cpu).Select(v => (double)v).ToArray();
        Compare.Gradient(expected, Read(Gpu, p.Gpu),
            recurrence ? Tolerances.CudaRecurrenceBackwardRelative : Tolerances.CudaBackwardRelative,
            recurrence ? Tolerances.CudaRecurrenceBackwardRelativeToMax : Tolerances.CudaBackwardRelativeToMax,
            what, mayBeZero: mayBeZero);
    }

    private void CheckIf(Pair? p, string what, bool recurrence = false, bool mayBeZero = false)
    {
        if (p is not null)
        {
            Check(p, what, recurrence, mayBeZero);
        }
    }

    [Theory]
    [InlineData(DType.F32, 1, 5, 3, true, true, true)]
    [InlineData(DType.BF16, 1, 896, 300, true, true, true)]
    [InlineData(DType.F16, 1, 64, 300, false, true, true)]
    [InlineData(DType.F32, 2, 7, 4, false, false, true)]
    [InlineData(DType.BF16, 5, 6, 9, true, false, true)]
    [InlineData(DType.F32, 17, 16, 12, true, true, true)]
    [InlineData(DType.BF16, 37, 33, 17, true, true, false)]
    [InlineData(DType.BF16, 70, 200, 150, true, true, true)]
    [InlineData(DType.F16, 65, 96, 130, false, true, true)]
    [InlineData(DType.F32, 130, 64, 32, false, false, true)]
    [InlineData(DType.BF16, 40, 128, 96, false, true, false)]
    [InlineData(DType.F32, 1030, 33, 40, true, true, false)] // dW split over T (4 splits, the last one short)
    [InlineData(DType.BF16, 2100, 384, 32, false, false, false)] // a LoRA shape: 6 tiles, 8 splits
    [InlineData(DType.F32, 8192, 64, 64, true, false, false)] // one tile, 32 splits of 256 rows
    public void MatMulBackward(DType dtype, int t, int k, int m, bool outIn, bool withBias, bool withDx)
    {
        var data = new TestData(201);
        int[] shape = outIn ? [m, k] : [k, m];
        var x = In(data.Normal(t * k), t, k);
        var weight = Weight(data.Normal(k * m, 0.5f), dtype, shape);
        var g = In(data.Normal(t * m), t, m);
        var dx = OutIf(withDx, t, k);
        var dW = In(data.Normal(k * m), shape);
        var dB = withBias ? In(data.Normal(m), m) : null;
        var layout = outIn ? WeightLayout.OutIn : WeightLayout.InOut;
        Run((ops, s) => ops.MatMulBackward(s[x], s[weight], s[g], s.Or(dx), s[dW], s.Or(dB), layout));
        CheckIf(dx, "matmul dx");
        Check(dW, "matmul dW (accumulated)");
        CheckIf(dB, "matmul db (accumulated)");
    }

    [Fact]
    public void MatMulBackwardWithOnlyOneOutput()
    {
        var data = new TestData(202);
        var x = In(data.Normal(20 * 8), 20, 8);
        var w = Weight(data.Normal(6 * 8), DType.BF16, 6, 8);
        var g = In(data.Normal(20 * 6), 20, 6);
        var dx = Out(20, 8);
        var dB = In(data.Normal(6), 6);
        Run((ops, s) => ops.MatMulBackward(s[x], s[w], s[g], s[dx], null, null));
        Run((ops, s) => ops.MatMulBackward(s[x], s[w], s[g], null, null, s[dB]));
        Check(dx, "matmul dx alone");
        Check(dB, "matmul db alone");
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(5, 67)]
    [InlineData(37, 130)]
    public void ElementwiseBackward(int t, int c)
    {
        var data = new TestData(203);
        var x = data.Normal(t * c, 1.5f);
        var x2 = data.Normal(t * c, 1.5f);
        var y01 = In(data.Uniform(t * c, 0, 1), t, c);
        var yTanh = In(data.Uniform(t * c, -0.999f, 0.999f), t, c);
        var g = In(data.Normal(t * c), t, c);
        var a = In(x, t, c);
        var b = In(x2, t, c);

        var dScale = Out(t, c);
        Run((ops, s) => ops.ScaleBackward(s[g], -0.375f, s[dScale]));
        Check(dScale, "scale dx");

        var (da, db) = (Out(t, c), Out(t, c));
        Run((ops, s) => ops.MultiplyBackward(s[a], s[b], s[g], s[da], s[db]));
        Check(da, "multiply da");
        Check(db, "multiply db");
        var dbOnly = Out(t, c);
        Run((ops, s) => ops.MultiplyBackward(s[a], s[b], s[g], null, s[dbOnly]));
        Check(dbOnly, "multiply db (da null)");

        var dTanh = Out(t, c);
        Run((ops, s) => ops.TanhBackward(s[yTanh], s[g], s[dTanh]));
        Check(dTanh, "tanh dx");

        var dSigmoid = Out(t, c);
        Run((ops, s) => ops.SigmoidBackward(s[y01], s[g], s[dSigmoid]));
        Check(dSigmoid, "sigmoid dx");

        var dAddSigmoid = Out(t, c);
        var dBias = In(data.Normal(c), c);
        Run((ops, s) => ops.AddSigmoidBackward(s[y01], s[g], s[dAddSigmoid], s[dBias]));
        Check(dAddSigmoid, "add_sigmoid dx");
        Check(dBias, "add_sigmoid dbias (accumulated)");

        var (dGate, dUp) = (Out(t, c), Out(t, c));
        Run((ops, s) => ops.SwiGluBackward(s[a], s[b], s[g], s[dGate], s[dUp]));
        Check(dGate, "swiglu dgate");
        Check(dUp, "swiglu dup");
        var dUpOnly = Out(t, c);
        Run((ops, s) => ops.SwiGluBackward(s[a], s[b], s[g], null, s[dUpOnly]));
        Check(dUpOnly, "swiglu dup (dgate null)");
    }

    [Theory]
    [InlineData(1, 2, 8, 0, 1e4)]
    [InlineData(5, 3, 64, 7, 1e4)]
    [InlineData(17, 2, 128, 4093, 1e6)]
    public void RopeBackward(int t, int heads, int n, int start, double theta)
    {
        var d = In(new TestData(204).Normal(t * heads * n), t, heads * n);
        Run((ops, s) => ops.RopeBackward(s[d], heads, n, start, (float)theta));
        Check(d, "rope dx (in place)");
    }

    [Theory]
    [InlineData(1, 1, 4, 1)]
    [InlineData(5, 2, 64, 7)]
    [InlineData(17, 4, 16, 2)]
    public void RepeatKvBackward(int t, int kvHeads, int n, int groups)
    {
        var g = In(new TestData(205).Normal(t * kvHeads * groups * n), t, kvHeads * groups * n);
        var dx = Out(t, kvHeads * n);
        Run((ops, s) => ops.RepeatKvBackward(s[g], kvHeads, n, groups, s[dx]));
        Check(dx, "repeat_kv dx");
    }

    [Theory]
    [InlineData(1, 2, 8, true)]
    [InlineData(5, 4, 64, true)]
    [InlineData(17, 16, 64, false)]
    [InlineData(40, 3, 5, true)]
    public void GroupNormBackward(int t, int groups, int d, bool withDx)
    {
        var data = new TestData(206);
        int width = groups * d;
        var x = In(data.Normal(t * width, 2f).Select(v => v + 0.5f).ToArray(), t, width);
        var w = Weight(data.Normal(width), DType.BF16, width);
        var g = In(data.Normal(t * width), t, width);
        var dx = OutIf(withDx, t, width);
        var dW = In(data.Normal(width), width);
        var dB = In(data.Normal(width), width);
        float eps = d * 1e-5f;
        Run((ops, s) => ops.GroupNormBackward(s[x], s[w], s[g], groups, eps, s.Or(dx), s[dW], s[dB]));
        CheckIf(dx, "group_norm dx");
        Check(dW, "group_norm dweight (accumulated)");
        Check(dB, "group_norm dbias (accumulated)");
    }

    [Theory]
    [InlineData(1, 8, false)]
    [InlineData(2, 3, true)]
    [InlineData(17, 67, true)]
    [InlineData(40, 33, false)]
    public void TokenShiftBackward(int t, int c, bool finalGradient)
    {
        var data = new TestData(207);
        var gv = data.Normal(t * c);
        var g = In(gv, t, c);
        var gs = finalGradient ? In(data.Normal(c), 1, c) : null;
        var dx = Out(t, c);
        var ds0 = Out(1, c);
        Run((ops, s) => ops.TokenShiftBackward(s[g], s.Or(gs), s[dx], s[ds0]));
        Check(dx, "token_shift dx");
        Check(ds0, "token_shift d(initial state)");

        // dx written over dDelta (allowed): the same values.
        var inPlace = In(gv, t, c);
        var ds0InPlace = Out(1, c);
        Run((ops, s) => ops.TokenShiftBackward(s[inPlace], s.Or(gs), s[inPlace], s[ds0InPlace]));
        Check(inPlace, "token_shift dx over dDelta");
        Check(ds0InPlace, "token_shift d(initial state), dx over dDelta");
        Assert.Equal(Read(Gpu, dx.Gpu), Read(Gpu, inPlace.Gpu));
    }

    [Theory]
    [InlineData(1, 9)]
    [InlineData(17, 67)]
    public void MixShiftBackward(int t, int c)
    {
        var data = new TestData(208);
        var delta = In(data.Normal(t * c), t, c);
        var mix = Weight(data.Uniform(c, 0, 1), DType.BF16, c);
        var g = In(data.Normal(t * c), t, c);
        var (dx, dDelta) = (Out(t, c), Out(t, c));
        var dMix = In(data.Normal(c), c);
        Run((ops, s) => ops.MixShiftBackward(s[delta], s[mix], s[g], s[dx], s[dDelta], s[dMix]));
        Check(dx, "mix_shift dx");
        Check(dDelta, "mix_shift ddelta");
        Check(dMix, "mix_shift dmix (accumulated)");
        var dDeltaOnly = Out(t, c);
        Run((ops, s) => ops.MixShiftBackward(s[delta], s[mix], s[g], null, s[dDeltaOnly], null));
        Check(dDeltaOnly, "mix_shift ddelta (others null)");
    }

    [Theory]
    [InlineData(DType.F32, 1, 8, 2, true)]
    [InlineData(DType.BF16, 5, 9, 3, true)]
    [InlineData(DType.BF16, 17, 67, 5, false)]
    [InlineData(DType.F32, 40, 128, 32, true)]
    public void Rwkv6DdlerpBackward(DType dtype, int t, int c, int rank, bool allOutputs)
    {
        var data = new TestData(209);
        var delta = In(data.Normal(t * c), t, c);
        var lora = In(data.Uniform(t * 5 * rank), t, 5 * rank);
        var mixes = Weight(data.Uniform(5 * c), dtype, 5, c);
        var w2 = Weight(data.Normal(5 * rank * c, 0.3f), dtype, 5, rank, c);
        var g = In(data.Normal(5 * t * c), 5 * t, c);
        var dx = OutIf(allOutputs, t, c);
        var dDelta = Out(t, c);
        var dLora = OutIf(allOutputs, t, 5 * rank);
        var dW2 = In(data.Normal(5 * rank * c), 5, rank, c);
        var dMixes = allOutputs ? In(data.Normal(5 * c), 5, c) : null;
        Run((ops, s) => ops.Rwkv6DdlerpBackward(s[delta], s[lora], s[w2], s[mixes], s[g], s.Or(dx), s[dDelta], s.Or(dLora), s[dW2], s.Or(dMixes)));
        CheckIf(dx, "ddlerp dx");
        Check(dDelta, "ddlerp ddelta");
        CheckIf(dLora, "ddlerp dlora");
        Check(dW2, "ddlerp dw2 (accumulated)");
        CheckIf(dMixes, "ddlerp dmixes (accumulated)");
    }

    [Theory]
    [InlineData(3, 40)]
    [InlineData(17, 129)]
    public void Rwkv6DecayBackward(int t, int a)
    {
        var data = new TestData(210);
        // bias + d spans [−8, 4]: both sides of the clamp.
        var d = In(data.Uniform(t * a, -4, 2), t, a);
        var bias = Weight(data.Uniform(a, -4, 2), DType.F32, a);
        var g = In(data.Normal(t * a), t, a);
        var dd = Out(t, a);
        var dBias = In(data.Normal(a), a);
        Run((ops, s) => ops.Rwkv6DecayBackward(s[d], s[bias], s[g], s[dd], s[dBias]));
        Check(dd, "rwkv6_decay dd");
        Check(dBias, "rwkv6_decay dbias (accumulated)");
        Assert.Contains(Read(Gpu, dd.Gpu), v => v == 0f);
    }

    [Fact]
    public void Rwkv6BalanceKeysBackward()
    {
        var data = new TestData(211);
        var k = In(data.Normal(5 * 67), 5, 67);
        var w = In(data.Uniform(5 * 67, 0, 1), 5, 67);
        var g = In(data.Normal(5 * 67), 5, 67);
        var (dk, dw, dkOnly) = (Out(5, 67), Out(5, 67), Out(5, 67));
        Run((ops, s) => ops.Rwkv6BalanceKeysBackward(s[k], s[w], s[g], s[dk], s[dw]));
        Run((ops, s) => ops.Rwkv6BalanceKeysBackward(s[k], s[w], s[g], s[dkOnly], null));
        Check(dk, "balance_keys dk");
        Check(dw, "balance_keys dw");
        Check(dkOnly, "balance_keys dk (dw null)");
    }

    [Theory]
    [InlineData(1, 1, 16, false, true)]
    [InlineData(2, 2, 32, true, true)]
    [InlineData(5, 3, 64, true, true)]
    [InlineData(17, 2, 64, true, false)]
    [InlineData(37, 1, 128, false, true)]
    [InlineData(40, 2, 16, true, true)]
    [InlineData(64, 2, 32, false, true)]
    [InlineData(65, 1, 64, true, true)]
    [InlineData(33, 2, 4, true, true)]
    public void Wkv6Backward(int t, int heads, int n, bool finalGradient, bool initialGradient)
    {
        var data = new TestData(212);
        int a = heads * n;
        var r = In(data.Normal(t * a), t, a);
        var k = In(data.Normal(t * a, 0.5f), t, a);
        var v = In(data.Normal(t * a), t, a);
        var w = In(data.Uniform(t * a, (float)Math.Exp(-5), 1f), t, a);
        var s0 = data.Normal(heads * n * n);
        var state = In(s0, heads, n, n);
        var g = In(data.Normal(t * a), t, a);
        var gs = finalGradient ? In(data.Normal(heads * n * n), heads, n, n) : null;
        var (dr, dk, dv, dw) = (Out(t, a), Out(t, a), Out(t, a), Out(t, a));
        var ds0 = OutIf(initialGradient, heads, n, n);
        float scale = 1f / MathF.Sqrt(n);
        Run((ops, s) => ops.Wkv6Backward(s[r], s[k], s[v], s[w], s[state], scale, s[g], s.Or(gs), s[dr], s[dk], s[dv], s[dw], s.Or(ds0)));
        Assert.Equal(s0, Read(Gpu, state.Gpu));
        Check(dr, "wkv6 dr", recurrence: true);
        Check(dk, "wkv6 dk", recurrence: true);
        Check(dv, "wkv6 dv", recurrence: true);
        Check(dw, "wkv6 dw", recurrence: true);
        CheckIf(ds0, "wkv6 d(initial state)", recurrence: true);
    }

    [Theory]
    [InlineData(2, 24)]
    [InlineData(17, 129)]
    public void Rwkv7DecayBackward(int t, int a)
    {
        var data = new TestData(213);
        var z = In(data.Normal(t * a, 3f), t, a);
        var w0 = Weight(data.Uniform(a, -6, 1), DType.BF16, a);
        var g = In(data.Normal(t * a), t, a);
        var dz = Out(t, a);
        var dW0 = In(data.Normal(a), a);
        Run((ops, s) => ops.Rwkv7DecayBackward(s[z], s[w0], s[g], s[dz], s[dW0]));
        Check(dz, "rwkv7_decay dz");
        Check(dW0, "rwkv7_decay dw0 (accumulated)");
    }

    [Theory]
    [InlineData(true, 1, 1, 8, false)]
    [InlineData(false, 1, 1, 8, false)]
    [InlineData(true, 17, 3, 64, false)]
    [InlineData(false, 17, 3, 64, false)]
    [InlineData(true, 5, 2, 128, false)]
    [InlineData(false, 5, 2, 128, false)]
    [InlineData(true, 2, 2, 16, true)]
    [InlineData(false, 2, 2, 16, true)]
    public void Rwkv7KeysBackward(bool balanced, int t, int heads, int n, bool tinyHead)
    {
        var data = new TestData(214);
        int a = heads * n;
        var kv = data.Normal(t * a);
        if (tinyHead)
        {
            // Every head's key norm ~1e-13, below the eps (1e-12): κ = u/eps and du = dκ/eps (~1e12).
            kv = kv.Select(x => x * 1e-14f).ToArray();
        }

        var k = In(kv, t, a);
        var w = In(data.Uniform(t * a, 0.55f, 1f), t, a);
        var iclr = In(data.Uniform(t * a, 0, 1), t, a);
        var kk = balanced ? null : Weight(data.Uniform(a, 0.5f, 1.2f), DType.BF16, a);
        var ka = balanced ? null : Weight(data.Uniform(a, 0.5f, 1.5f), DType.BF16, a);
        var (gRem, gRep, gTil) = (In(data.Normal(t * a), t, a), In(data.Normal(t * a), t, a), In(data.Normal(t * a), t, a));
        var (dk, dw, da) = (Out(t, a), Out(t, a), Out(t, a));
        var dKk = In(data.Normal(a), a);
        var dKa = In(data.Normal(a), a);
        Run((ops, s) => ops.Rwkv7KeysBackward(s[k], s[w], s[iclr], s.Or(kk), s.Or(ka), n, balanced, s[gRem], s[gRep], s[gTil],
            s[dk], s[dw], s[da], balanced ? null : s[dKk], balanced ? null : s[dKa]));
        string name = $"rwkv7_keys ({(balanced ? "balanced" : "stock")}{(tinyHead ? ", eps guard" : "")})";
        Check(dk, name + " dk");
        Check(dw, name + " dw", mayBeZero: !balanced);
        Check(da, name + " da");
        if (!balanced)
        {
            Check(dKk, name + " dk_k (accumulated)");
            Check(dKa, name + " dk_a (accumulated)");
        }

        // dw may be null.
        var dkNoDw = Out(t, a);
        var daNoDw = Out(t, a);
        Run((ops, s) => ops.Rwkv7KeysBackward(s[k], s[w], s[iclr], s.Or(kk), s.Or(ka), n, balanced, s[gRem], s[gRep], s[gTil],
            s[dkNoDw], null, s[daNoDw], null, null));
        Check(dkNoDw, name + " dk (dw null)");
        Check(daNoDw, name + " da (dw null)");
    }

    [Theory]
    [InlineData(1, 20)]
    [InlineData(17, 67)]
    public void Rwkv7ValueResidualBackward(int t, int c)
    {
        var data = new TestData(215);
        var v = In(data.Normal(t * c), t, c);
        var first = In(data.Normal(t * c), t, c);
        var nu = In(data.Uniform(t * c, 0, 1), t, c);
        var g = In(data.Normal(t * c), t, c);
        var (dv, dNu) = (Out(t, c), Out(t, c));
        var dFirst = In(data.Normal(t * c), t, c);
        Run((ops, s) => ops.Rwkv7ValueResidualBackward(s[v], s[first], s[nu], s[g], s[dv], s[dFirst], s[dNu]));
        Check(dv, "value_residual dv");
        Check(dFirst, "value_residual dv_first (accumulated)");
        Check(dNu, "value_residual dnu");
        var dNuOnly = Out(t, c);
        Run((ops, s) => ops.Rwkv7ValueResidualBackward(s[v], s[first], s[nu], s[g], null, null, s[dNuOnly]));
        Check(dNuOnly, "value_residual dnu (others null)");
    }

    [Theory]
    [InlineData(1, 1, 16, false, true)]
    [InlineData(2, 2, 32, true, true)]
    [InlineData(5, 3, 64, true, true)]
    [InlineData(17, 2, 64, true, false)]
    [InlineData(37, 1, 128, false, true)]
    [InlineData(40, 2, 16, true, true)]
    [InlineData(64, 2, 32, false, true)]
    [InlineData(65, 1, 64, true, true)]
    [InlineData(33, 2, 4, true, true)]
    public void Wkv7Backward(int t, int heads, int n, bool finalGradient, bool initialGradient)
    {
        var data = new TestData(216);
        int a = heads * n;
        // a = −κ and b = κ ⊙ iclr with κ a unit vector per head, as the model feeds them.
        var (removal, replacement) = data.Wkv7Keys(t * a, n);

        var r = In(data.Normal(t * a), t, a);
        var w = In(data.Uniform(t * a, 0.545f, 1f), t, a);
        var k = In(data.Normal(t * a, 0.3f), t, a);
        var v = In(data.Normal(t * a), t, a);
        var ra = In(removal, t, a);
        var rb = In(replacement, t, a);
        var s0 = data.Normal(heads * n * n, 0.5f);
        var state = In(s0, heads, n, n);
        var g = In(data.Normal(t * a), t, a);
        var gs = finalGradient ? In(data.Normal(heads * n * n), heads, n, n) : null;
        var (dr, dw, dk, dv, da, db) = (Out(t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a));
        var ds0 = OutIf(initialGradient, heads, n, n);
        Run((ops, s) => ops.Wkv7Backward(s[r], s[w], s[k], s[v], s[ra], s[rb], s[state], s[g], s.Or(gs),
            s[dr], s[dw], s[dk], s[dv], s[da], s[db], s.Or(ds0)));
        Assert.Equal(s0, Read(Gpu, state.Gpu));
        Check(dr, "wkv7 dr", recurrence: true);
        Check(dw, "wkv7 dw", recurrence: true);
        Check(dk, "wkv7 dk", recurrence: true);
        Check(dv, "wkv7 dv", recurrence: true);
        Check(da, "wkv7 da", recurrence: true);
        Check(db, "wkv7 db", recurrence: true);
        CheckIf(ds0, "wkv7 d(initial state)", recurrence: true);
    }

    /// <summary>
    /// The batched recurrences (training's windows in one launch, grid (H, S)) against the CPU, and against one CUDA
    /// single-sequence call per sequence bit for bit (the same kernel on the same rows). Random initial states per
    /// sequence for the forward; zero for the backward, as training passes them.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 1, 16)]
    [InlineData(3, 17, 2, 32)]
    [InlineData(4, 33, 3, 64)]
    [InlineData(2, 40, 1, 128)]
    [InlineData(5, 16, 2, 4)]
    public void Wkv6Sequences(int sequences, int length, int heads, int n)
    {
        var data = new TestData(218);
        int a = heads * n, t = sequences * length;
        var r = In(data.Normal(t * a), t, a);
        var k = In(data.Normal(t * a, 0.5f), t, a);
        var v = In(data.Normal(t * a), t, a);
        var w = In(data.Uniform(t * a, (float)Math.Exp(-5), 1f), t, a);
        var s0 = data.Normal(sequences * heads * n * n);
        var state = In(s0, sequences * heads, n, n);
        var zero = In(new float[sequences * heads * n * n], sequences * heads, n, n);
        var g = In(data.Normal(t * a), t, a);
        var y = Out(t, a);
        var (dr, dk, dv, dw) = (Out(t, a), Out(t, a), Out(t, a), Out(t, a));
        float scale = 1f / MathF.Sqrt(n);
        Run((ops, s) => ops.Wkv6Sequences(sequences, s[r], s[k], s[v], s[w], s[state], scale, s[y]));
        Run((ops, s) => ops.Wkv6BackwardSequences(sequences, s[r], s[k], s[v], s[w], s[zero], scale, s[g], s[dr], s[dk], s[dv], s[dw]));
        Check(y, "wkv6 sequences y", recurrence: true);
        Check(state, "wkv6 sequences final states", recurrence: true);
        foreach (var (p, name) in new[] { (dr, "dr"), (dk, "dk"), (dv, "dv"), (dw, "dw") })
        {
            if (length == 1 && name == "dw")
            {
                // One token from a zero state: the decay never meets a non-zero state, so its gradient is exactly 0.
                Assert.All(Read(Gpu, p.Gpu), x => Assert.Equal(0f, x));
                continue;
            }

            Check(p, "wkv6 sequences " + name, recurrence: true);
        }

        // One single-sequence CUDA call per sequence gives the same bits.
        var gpu = Gpu;
        var back = gpu.BackwardOps;
        using var one = gpu.FromFloats(s0, sequences * heads, n, n);
        var (y1, dr1, dk1, dv1, dw1) = (Out(t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a));
        for (int i = 0; i < sequences; i++)
        {
            Tensor W(Pair x) => x.Gpu.Rows(i * length, length);
            gpu.Ops.Wkv6(W(r), W(k), W(v), W(w), one.Rows(i * heads, heads), scale, W(y1));
            back.Wkv6Backward(W(r), W(k), W(v), W(w), zero.Gpu.Rows(i * heads, heads), scale, W(g), null, W(dr1), W(dk1), W(dv1), W(dw1), null);
        }

        gpu.Synchronize();
        Assert.Equal(Read(gpu, state.Gpu), Read(gpu, one));
        foreach (var (batched, single) in new[] { (y, y1), (dr, dr1), (dk, dk1), (dv, dv1), (dw, dw1) })
        {
            Assert.Equal(Read(gpu, single.Gpu), Read(gpu, batched.Gpu));
        }
    }

    [Theory]
    [InlineData(1, 1, 1, 16)]
    [InlineData(3, 17, 2, 32)]
    [InlineData(4, 33, 3, 64)]
    [InlineData(2, 40, 1, 128)]
    [InlineData(5, 16, 2, 4)]
    public void Wkv7Sequences(int sequences, int length, int heads, int n)
    {
        var data = new TestData(219);
        int a = heads * n, t = sequences * length;
        var (removal, replacement) = DeltaRuleKeys(data, t, heads, n);
        var r = In(data.Normal(t * a), t, a);
        var w = In(data.Uniform(t * a, 0.545f, 1f), t, a);
        var k = In(data.Normal(t * a, 0.3f), t, a);
        var v = In(data.Normal(t * a), t, a);
        var ra = In(removal, t, a);
        var rb = In(replacement, t, a);
        var s0 = data.Normal(sequences * heads * n * n, 0.5f);
        var state = In(s0, sequences * heads, n, n);
        var zero = In(new float[sequences * heads * n * n], sequences * heads, n, n);
        var g = In(data.Normal(t * a), t, a);
        var y = Out(t, a);
        var (dr, dw, dk, dv, da, db) = (Out(t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a));
        Run((ops, s) => ops.Wkv7Sequences(sequences, s[r], s[w], s[k], s[v], s[ra], s[rb], s[state], s[y]));
        Run((ops, s) => ops.Wkv7BackwardSequences(sequences, s[r], s[w], s[k], s[v], s[ra], s[rb], s[zero], s[g],
            s[dr], s[dw], s[dk], s[dv], s[da], s[db]));
        Check(y, "wkv7 sequences y", recurrence: true);
        Check(state, "wkv7 sequences final states", recurrence: true);
        foreach (var (p, name) in new[] { (dr, "dr"), (dw, "dw"), (dk, "dk"), (dv, "dv"), (da, "da"), (db, "db") })
        {
            if (length == 1 && name is "dw" or "da" or "db")
            {
                // One token from a zero state: S·a = 0 and the decay meets a zero state, so these gradients are exactly 0.
                Assert.All(Read(Gpu, p.Gpu), x => Assert.Equal(0f, x));
                continue;
            }

            Check(p, "wkv7 sequences " + name, recurrence: true);
        }

        var gpu = Gpu;
        var back = gpu.BackwardOps;
        using var one = gpu.FromFloats(s0, sequences * heads, n, n);
        var y1 = Out(t, a);
        var (dr1, dw1, dk1, dv1, da1, db1) = (Out(t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a));
        for (int i = 0; i < sequences; i++)
        {
            Tensor W(Pair x) => x.Gpu.Rows(i * length, length);
            gpu.Ops.Wkv7(W(r), W(w), W(k), W(v), W(ra), W(rb), one.Rows(i * heads, heads), W(y1));
            back.Wkv7Backward(W(r), W(w), W(k), W(v), W(ra), W(rb), zero.Gpu.Rows(i * heads, heads), W(g), null,
                W(dr1), W(dw1), W(dk1), W(dv1), W(da1), W(db1), null);
        }

        gpu.Synchronize();
        Assert.Equal(Read(gpu, state.Gpu), Read(gpu, one));
        foreach (var (batched, single) in new[] { (y, y1), (dr, dr1), (dw, dw1), (dk, dk1), (dv, dv1), (da, da1), (db, db1) })
        {
            Assert.Equal(Read(gpu, single.Gpu), Read(gpu, batched.Gpu));
        }
    }

    /// <summary>a = −κ and b = κ ⊙ iclr with κ a unit vector per head, as the model feeds the delta rule.</summary>
    private static (float[] Removal, float[] Replacement) DeltaRuleKeys(TestData data, int t, int heads, int n)
    {
        int a = heads * n;
        var (removal, replacement) = data.Wkv7Keys(t * a, n);

        return (removal, replacement);
    }

    /// <summary>The aliasing the interface allows (input gradient written over dy) gives the same bits as separate buffers.</summary>
    [Fact]
    public void InPlaceBackwardsEqualOutOfPlace()
    {
        var data = new TestData(217);
        const int T = 5, C = 64;
        var gv = data.Normal(T * C);
        var x = In(data.Normal(T * C), T, C);
        var y01 = In(data.Uniform(T * C, 0, 1), T, C);
        var w = Weight(data.Normal(C), DType.F32, C);
        var ops = Gpu.BackwardOps;

        void Same(string what, Action<Tensor, Tensor> op)
        {
            var separate = Out(T, C);
            var g = In(gv, T, C);
            op(g.Gpu, separate.Gpu);
            var inPlace = In(gv, T, C);
            op(inPlace.Gpu, inPlace.Gpu);
            Assert.True(Read(Gpu, separate.Gpu).SequenceEqual(Read(Gpu, inPlace.Gpu)), what);
        }

        Same("scale", (dy, dx) => ops.ScaleBackward(dy, 0.5f, dx));
        Same("tanh", (dy, dx) => ops.TanhBackward(y01.Gpu, dy, dx));
        Same("sigmoid", (dy, dx) => ops.SigmoidBackward(y01.Gpu, dy, dx));
        Same("add_sigmoid", (dy, dx) => ops.AddSigmoidBackward(y01.Gpu, dy, dx, Out(C).Gpu));
        Same("multiply", (dy, da) => ops.MultiplyBackward(x.Gpu, y01.Gpu, dy, da, Out(T, C).Gpu));
        Same("group_norm", (dy, dx) => ops.GroupNormBackward(x.Gpu, w.Gpu, dy, 4, 8e-5f, dx, Out(C).Gpu, Out(C).Gpu));
        var dFinal = In(data.Normal(C), 1, C);
        Same("token_shift", (dy, dx) => ops.TokenShiftBackward(dy, dFinal.Gpu, dx, Out(1, C).Gpu));
        Same("rwkv6_decay", (dy, dd) => ops.Rwkv6DecayBackward(x.Gpu, w.Gpu, dy, dd, Out(C).Gpu));
        Same("rwkv7_decay", (dy, dz) => ops.Rwkv7DecayBackward(x.Gpu, w.Gpu, dy, dz, Out(C).Gpu));
        Same("balance_keys dk", (dy, dk) => ops.Rwkv6BalanceKeysBackward(x.Gpu, y01.Gpu, dy, dk, null));
        Same("value_residual dv", (dy, dv) => ops.Rwkv7ValueResidualBackward(x.Gpu, y01.Gpu, y01.Gpu, dy, dv, null, Out(T, C).Gpu));
    }

    /// <summary>The per-channel weight gradients are column sums without atomics: the same call twice gives the same bits.</summary>
    [Fact]
    public void WeightGradientsAreDeterministic()
    {
        var data = new TestData(218);
        const int T = 300, K = 96, M = 80;
        var x = In(data.Normal(T * K), T, K);
        var w = Weight(data.Normal(K * M), DType.BF16, M, K);
        var g = In(data.Normal(T * M), T, M);
        var ops = Gpu.BackwardOps;
        float[] Once()
        {
            var dW = Gpu.Allocate(M, K);
            var dB = Gpu.Allocate(M);
            ops.MatMulBackward(x.Gpu, w.Gpu, g.Gpu, null, dW, dB);
            var result = Read(Gpu, dW).Concat(Read(Gpu, dB)).ToArray();
            dW.Dispose();
            dB.Dispose();
            return result;
        }

        Assert.Equal(Once(), Once());
    }

    // ---- Training ops: against definitions written from IBackwardOps' doc comments.

    [Theory]
    [InlineData(1, 8, false)]
    [InlineData(17, 67, false)]
    [InlineData(40, 896, true)]
    public void AlignmentLoss(int t, int c, bool inPlace)
    {
        var data = new TestData(219);
        var teacher = data.Normal(t * c);
        var student = data.Normal(t * c);
        // One token where student = teacher exactly: error 0, gradient 0 (the norm's subgradient).
        Array.Copy(teacher, 0, student, 0, c);
        const float GradScale = 0.0625f;
        var (tg, sg) = (Own(Gpu.FromFloats(teacher, t, c)), Own(Gpu.FromFloats(student, t, c)));
        var ds = inPlace ? sg : Own(Gpu.Allocate(t, c));
        if (!inPlace)
        {
            Gpu.Upload(Enumerable.Repeat(float.NaN, t * c).ToArray(), ds);
        }

        double loss = Gpu.BackwardOps.AlignmentLoss(tg, sg, GradScale, ds);
        double expectedLoss = 0;
        var expectedGrad = new double[t * c];
        for (int row = 0; row < t; row++)
        {
            double sum = 0;
            for (int j = 0; j < c; j++)
            {
                double d = (double)student[(row * c) + j] - teacher[(row * c) + j];
                sum += d * d;
            }

            double norm = Math.Sqrt(sum);
            expectedLoss += norm / Math.Sqrt(c);
            for (int j = 0; j < c; j++)
            {
                expectedGrad[(row * c) + j] = norm == 0 ? 0 : GradScale * ((double)student[(row * c) + j] - teacher[(row * c) + j]) / (norm * Math.Sqrt(c));
            }
        }

        Assert.InRange(Math.Abs(loss - expectedLoss), 0, Tolerances.CudaLossRelative * expectedLoss);
        var grad = Read(Gpu, ds);
        Assert.All(grad.AsSpan(0, c).ToArray(), v => Assert.Equal(0f, v));
        Compare.Close(expectedGrad, grad, Tolerances.CudaLossGradientRelative, 0, "alignment loss dstudent");

        // Without a gradient output the loss is the same.
        Assert.Equal(loss, Gpu.BackwardOps.AlignmentLoss(tg, Own(Gpu.FromFloats(student, t, c)), GradScale, null));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(1000)]
    [InlineData(1_000_003)]
    public void FillAndSumOfSquares(int n)
    {
        var data = new TestData(220);
        var values = data.Normal(n, 3f);
        var x = Own(Gpu.FromFloats(values, n));
        double expected = values.Sum(v => (double)v * v);
        double sum = Gpu.BackwardOps.SumOfSquares(x);
        Assert.InRange(Math.Abs(sum - expected), 0, Tolerances.CudaSumOfSquaresRelative * expected);
        Assert.Equal(sum, Gpu.BackwardOps.SumOfSquares(x));

        Gpu.BackwardOps.Fill(x, -0.25f);
        Assert.All(Read(Gpu, x), v => Assert.Equal(-0.25f, v));
        Assert.Equal(0.0625 * n, Gpu.BackwardOps.SumOfSquares(x));
    }

    /// <summary>The multi-tensor sum (one download per step) equals each tensor's SumOfSquares bit for bit, NaN in its slot only.</summary>
    [Fact]
    public void SumsOfSquaresEqualEachSumOfSquares()
    {
        var gpu = Gpu;
        var sizes = new[] { 1, 1000, 1_000_003, 300, 147_456 };
        var tensors = sizes.Select((n, i) =>
        {
            var values = new TestData(221 + i).Normal(n, 2f);
            if (i == 3)
            {
                values[123] = float.NaN;
            }

            return (Tensor)Own(gpu.FromFloats(values, n));
        }).ToArray();
        var sums = new double[tensors.Length];
        gpu.BackwardOps.SumsOfSquares(tensors, sums);
        for (int i = 0; i < tensors.Length; i++)
        {
            Assert.Equal(gpu.BackwardOps.SumOfSquares(tensors[i]), sums[i]);
            Assert.Equal(i == 3, double.IsNaN(sums[i]));
        }
    }

    [Theory]
    [InlineData(1, 0f, 1f)]
    [InlineData(7, 0.1f, 0.5f)]
    [InlineData(1000, 0.01f, 1f)]
    public void AdamW(int step, float weightDecay, float gradScale)
    {
        var data = new TestData(221);
        const int N = 1031;
        const float Lr = 3e-4f, Beta1 = 0.9f, Beta2 = 0.95f, Eps = 1e-8f;
        var param = data.Normal(N);
        var grad = data.Normal(N, 0.1f);
        var m = data.Normal(N, 0.01f);
        var v = data.Uniform(N, 0, 1e-3f);
        var (pg, gg, mg, vg) = (Own(Gpu.FromFloats(param, N)), Own(Gpu.FromFloats(grad, N)), Own(Gpu.FromFloats(m, N)), Own(Gpu.FromFloats(v, N)));
        Gpu.BackwardOps.AdamW(pg, gg, mg, vg, Lr, Beta1, Beta2, Eps, weightDecay, gradScale, step);

        // The doc comment's formula in fp32, each operation rounded once; the scalars from doubles as torch's Python floats.
        float decay = (float)(1.0 - ((double)Lr * weightDecay));
        float stepSize = (float)(Lr / (1.0 - Math.Pow(Beta1, step)));
        float correction2 = (float)Math.Sqrt(1.0 - Math.Pow(Beta2, step));
        var (ep, em, ev) = (new double[N], new double[N], new double[N]);
        for (int i = 0; i < N; i++)
        {
            float g = gradScale * grad[i];
            float p = param[i] * decay;
            float mi = (Beta1 * m[i]) + ((float)(1.0 - Beta1) * g);
            float vi = (Beta2 * v[i]) + ((float)(1.0 - Beta2) * (g * g));
            float denom = (MathF.Sqrt(vi) / correction2) + Eps;
            (ep[i], em[i], ev[i]) = (p - (stepSize * mi / denom), mi, vi);
        }

        Compare.Close(em, Read(Gpu, mg), Tolerances.CudaAdamWRelative, 0, "adamw m");
        Compare.Close(ev, Read(Gpu, vg), Tolerances.CudaAdamWRelative, 0, "adamw v");
        Compare.Close(ep, Read(Gpu, pg), Tolerances.CudaAdamWRelative, 0, "adamw param");
        Assert.Equal(grad, Read(Gpu, gg));
    }

    /// <summary>
    /// The training ops against the CPU reference: skipped (with the reason) while the CPU versions are not written on
    /// this branch; they run once both exist.
    /// </summary>
    [Fact]
    public void TrainingOpsMatchTheCpu()
    {
        var data = new TestData(222);
        const int T = 9, C = 67;
        var teacher = In(data.Normal(T * C), T, C);
        var student = In(data.Normal(T * C), T, C);
        var (ds, param, m, v) = (Out(T, C), In(data.Normal(T * C), T, C), In(data.Normal(T * C, 0.01f), T, C), In(data.Uniform(T * C, 0, 1e-3f), T, C));
        var grad = In(data.Normal(T * C, 0.1f), T, C);
        double cpuLoss, cpuSum;
        try
        {
            cpuLoss = cpuOps.AlignmentLoss(teacher.Cpu, student.Cpu, 0.5f, ds.Cpu);
            cpuSum = cpuOps.SumOfSquares(grad.Cpu);
            cpuOps.AdamW(param.Cpu, grad.Cpu, m.Cpu, v.Cpu, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.01f, 0.5f, 3);
        }
        catch (NotImplementedException e)
        {
            Assert.Skip("the CPU training ops are not written on this branch yet: " + e.Message);
            throw;
        }

        var ops = Gpu.BackwardOps;
        double gpuLoss = ops.AlignmentLoss(teacher.Gpu, student.Gpu, 0.5f, ds.Gpu);
        double gpuSum = ops.SumOfSquares(grad.Gpu);
        ops.AdamW(param.Gpu, grad.Gpu, m.Gpu, v.Gpu, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.01f, 0.5f, 3);
        Assert.InRange(Math.Abs(gpuLoss - cpuLoss), 0, Tolerances.CudaLossRelative * cpuLoss);
        Assert.InRange(Math.Abs(gpuSum - cpuSum), 0, Tolerances.CudaSumOfSquaresRelative * cpuSum);
        Check(ds, "alignment loss dstudent vs CPU");
        // The CPU may order the same formula differently (torch's lerp form of m, say): a few ulp, and cancellation in
        // β1·m + (1 − β1)·g, hence the floor relative to the largest element too.
        foreach (var (pair, what) in new[] { (param, "adamw param vs CPU"), (m, "adamw m vs CPU"), (v, "adamw v vs CPU") })
        {
            Compare.Gradient(Read(cpu, pair.Cpu).Select(x => (double)x).ToArray(), Read(Gpu, pair.Gpu),
                Tolerances.CudaAdamWRelative, Tolerances.CudaAdamWRelative, what);
        }
    }

    public void Dispose()
    {
        foreach (var d in owned)
        {
            d.Dispose();
        }

        cpu.Dispose();
        cuda?.Dispose();
        GC.SuppressFinalize(this);
    }
}
