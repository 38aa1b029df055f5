using Radlads.Checkpoints;
using Radlads.Cpu;
using Radlads.Ops;
using static Radlads.Tests.Ops.NaiveOps;

namespace Radlads.Tests.Ops;

/// <summary>
/// Every backward op of <see cref="IBackwardOps"/> against central finite differences of its float64 forward in
/// <see cref="NaiveOps"/>: for a random linear functional L = Σ g ⊙ y of the outputs (g is what the op receives as
/// dy), ∂L/∂input by finite differences must equal the op's fp32 gradient. Tiny shapes: T = 1, 2, 5, 17, 37/40 (past
/// the 16-step state checkpoints), several heads, GQA groups, both MatMul layouts, both RAD-RWKV7 key variants,
/// recurrences from a non-zero initial state with and without a gradient on the final state. Input-gradient buffers
/// are poisoned with NaN (they must be written); weight-gradient buffers start at random values (they must be added
/// to). A backend gets the suite by deriving from this class; one that may be missing on a machine (CUDA) passes a
/// factory, and when it throws RadladsException every test reports as skipped with that message.
/// </summary>
public abstract class BackwardTests : IDisposable
{
    private readonly List<IDisposable> owned = [];
    private readonly IBackend? backend;
    private readonly IBackwardOps? backward;
    private readonly string? unavailable;

    protected BackwardTests(IBackend backend, IBackwardOps backward)
    {
        this.backend = backend;
        this.backward = backward;
    }

    protected BackwardTests(Func<IBackend> create)
    {
        try
        {
            backend = create();
            backward = backend.BackwardOps ?? throw new InvalidOperationException($"{backend.Name} has no backward ops");
        }
        catch (RadladsException e)
        {
            unavailable = e.Message;
        }
    }

    /// <summary>The backend under test; skips the running test when it could not be created on this machine.</summary>
    protected IBackend Backend
    {
        get
        {
            if (backend is null)
            {
                Assert.Skip(unavailable ?? "backend unavailable");
            }

            return backend;
        }
    }

    /// <summary>The backward ops under test; skips like <see cref="Backend"/>.</summary>
    protected IBackwardOps Backward
    {
        get
        {
            _ = Backend;
            return backward!;
        }
    }

    private IOps Ops => Backend.Ops;

    private Tensor In(float[] values, params int[] shape)
    {
        var t = Backend.FromFloats(values, shape);
        owned.Add(t);
        return t;
    }

    /// <summary>An input-gradient buffer, poisoned with NaN: every element must be written.</summary>
    private Tensor Out(params int[] shape)
    {
        var t = Backend.Allocate(shape);
        owned.Add(t);
        Backend.Upload(Enumerable.Repeat(float.NaN, (int)t.ElementCount).ToArray(), t);
        return t;
    }

    private Tensor Weight(float[] values, DType dtype, out float[] rounded, params int[] shape)
    {
        var w = new NativeWeight(values, dtype, shape);
        owned.Add(w);
        rounded = w.Values;
        var t = Backend.LoadWeight(w.Data);
        owned.Add(t);
        return t;
    }

    private float[] Read(Tensor t)
    {
        var values = new float[t.ElementCount];
        Backend.Download(t, values);
        return values;
    }

    private void Check(double[] expected, Tensor actual, string what, float[]? prior = null, bool recurrence = false, bool mayBeZero = false) =>
        Compare.Gradient(expected, Read(actual),
            recurrence ? Tolerances.RecurrenceGradientRelative : Tolerances.GradientRelative,
            recurrence ? Tolerances.RecurrenceGradientRelativeToMax : Tolerances.GradientRelativeToMax,
            what, prior, mayBeZero);

    private static double[] Fd(double[] x, Func<double> loss, Func<double, double>? step = null) =>
        FiniteDifferences.Gradient(x, loss, step);

    [Theory]
    [InlineData(DType.F32, 1, 5, 3, true, true)]
    [InlineData(DType.F32, 5, 7, 4, false, true)]
    [InlineData(DType.BF16, 3, 6, 9, true, false)]
    [InlineData(DType.BF16, 2, 9, 5, false, false)]
    [InlineData(DType.F32, 17, 16, 12, true, true)]
    public void MatMulBackward(DType dtype, int t, int k, int m, bool outIn, bool withBias)
    {
        var data = new TestData(101);
        int[] shape = outIn ? [m, k] : [k, m];
        var x = data.Normal(t * k);
        var weight = Weight(data.Normal(k * m, 0.5f), dtype, out var wr, shape);
        var b = data.Normal(m);
        var g = data.Normal(t * m);
        var priorW = data.Normal(k * m);
        var priorB = data.Normal(m);
        var dx = Out(t, k);
        var dW = In(priorW, shape);
        var dB = withBias ? In(priorB, m) : null;
        Backward.MatMulBackward(In(x, t, k), weight, In(g, t, m), dx, dW, dB, outIn ? WeightLayout.OutIn : WeightLayout.InOut);

        var (xd, wd, bd, gd) = (ToDouble(x), ToDouble(wr), ToDouble(b), ToDouble(g));
        double L() => Dot(gd, MatMul(xd, wd, withBias ? bd : null, t, k, m, outIn));
        Check(Fd(xd, L), dx, "matmul dx");
        Check(Fd(wd, L), dW, "matmul dW", priorW);
        if (withBias)
        {
            Check(Fd(bd, L), dB!, "matmul db", priorB);
        }
    }

    [Fact]
    public void MatMulBackwardSkipsGradientsPassedAsNull()
    {
        var data = new TestData(102);
        var x = In(data.Normal(12), 3, 4);
        var w = In(data.Normal(20), 5, 4);
        var dW = In(new float[20], 5, 4);
        Backward.MatMulBackward(x, w, In(data.Normal(15), 3, 5), null, dW, null);
        Assert.Contains(Read(dW), v => v != 0);
    }

    [Fact]
    public void ElementwiseBackward()
    {
        var data = new TestData(103);
        const int T = 3, C = 11;
        const float S = 0.375f;
        var x = data.Normal(T * C, 1.5f);
        var x2 = data.Normal(T * C, 1.5f);
        var bias = data.Normal(C);
        var g = data.Normal(T * C);
        var priorBias = data.Normal(C);
        var (xd, x2d, bd, gd) = (ToDouble(x), ToDouble(x2), ToDouble(bias), ToDouble(g));

        var dx = Out(T, C);
        Backward.ScaleBackward(In(g, T, C), S, dx);
        Check(Fd(xd, () => Dot(gd, Map(xd, v => v * S))), dx, "scale dx");

        var da = Out(T, C);
        var db = Out(T, C);
        Backward.MultiplyBackward(In(x, T, C), In(x2, T, C), In(g, T, C), da, db);
        double Product() => Dot(gd, Zip(xd, x2d, (p, q) => p * q));
        Check(Fd(xd, Product), da, "multiply da");
        Check(Fd(x2d, Product), db, "multiply db");

        var y = Out(T, C);
        Ops.Tanh(In(x, T, C), y);
        Backward.TanhBackward(y, In(g, T, C), dx);
        Check(Fd(xd, () => Dot(gd, Tanh(xd))), dx, "tanh dx");

        Ops.Sigmoid(In(x, T, C), y);
        Backward.SigmoidBackward(y, In(g, T, C), dx);
        Check(Fd(xd, () => Dot(gd, Sigmoid(xd))), dx, "sigmoid dx");

        Ops.AddSigmoid(In(x, T, C), In(bias, C), y);
        var dBias = In(priorBias, C);
        Backward.AddSigmoidBackward(y, In(g, T, C), dx, dBias);
        double AddSigmoidLoss() => Dot(gd, AddSigmoid(xd, bd));
        Check(Fd(xd, AddSigmoidLoss), dx, "add_sigmoid dx");
        Check(Fd(bd, AddSigmoidLoss), dBias, "add_sigmoid dbias", priorBias);

        Backward.SwiGluBackward(In(x, T, C), In(x2, T, C), In(g, T, C), da, db);
        double SwiGluLoss() => Dot(gd, SwiGlu(xd, x2d));
        Check(Fd(xd, SwiGluLoss), da, "swiglu dgate");
        Check(Fd(x2d, SwiGluLoss), db, "swiglu dup");
    }

    [Theory]
    [InlineData(1, 2, 8, 0, 1e4)]
    [InlineData(5, 3, 8, 7, 1e4)]
    [InlineData(3, 1, 16, 4093, 1e6)]
    public void RopeBackward(int t, int heads, int n, int start, double theta)
    {
        var data = new TestData(104);
        var x = data.Normal(t * heads * n);
        var g = data.Normal(t * heads * n);
        var d = In(g, t, heads * n);
        Backward.RopeBackward(d, heads, n, start, (float)theta);
        var (xd, gd) = (ToDouble(x), ToDouble(g));
        Check(Fd(xd, () => Dot(gd, Rope(xd, t, heads, n, start, theta))), d, "rope dx");
    }

    [Theory]
    [InlineData(1, 1, 4, 1)]
    [InlineData(3, 2, 8, 3)]
    [InlineData(2, 4, 4, 2)]
    public void RepeatKvBackward(int t, int kvHeads, int n, int groups)
    {
        var data = new TestData(105);
        var x = data.Normal(t * kvHeads * n);
        var g = data.Normal(t * kvHeads * groups * n);
        var dx = Out(t, kvHeads * n);
        Backward.RepeatKvBackward(In(g, t, kvHeads * groups * n), kvHeads, n, groups, dx);
        var (xd, gd) = (ToDouble(x), ToDouble(g));
        Check(Fd(xd, () => Dot(gd, RepeatKv(xd, t, kvHeads, n, groups))), dx, "repeat_kv dx");
    }

    [Theory]
    [InlineData(1, 2, 8)]
    [InlineData(3, 4, 5)]
    [InlineData(2, 1, 16)]
    public void GroupNormBackward(int t, int groups, int d)
    {
        var data = new TestData(106);
        int width = groups * d;
        var x = data.Normal(t * width, 2f).Select(v => v + 0.5f).ToArray();
        var w = data.Normal(width);
        var b = data.Normal(width);
        var g = data.Normal(t * width);
        var priorW = data.Normal(width);
        var priorB = data.Normal(width);
        float eps = d * 1e-5f;
        var dx = Out(t, width);
        var dW = In(priorW, width);
        var dB = In(priorB, width);
        Backward.GroupNormBackward(In(x, t, width), In(w, width), In(g, t, width), groups, eps, dx, dW, dB);
        var (xd, wd, bd, gd) = (ToDouble(x), ToDouble(w), ToDouble(b), ToDouble(g));
        double L() => Dot(gd, GroupNorm(xd, wd, bd, width, groups, eps));
        Check(Fd(xd, L), dx, "group_norm dx");
        Check(Fd(wd, L), dW, "group_norm dweight", priorW);
        Check(Fd(bd, L), dB, "group_norm dbias", priorB);
    }

    [Theory]
    [InlineData(1, 8, false)]
    [InlineData(2, 3, true)]
    [InlineData(5, 7, true)]
    public void TokenShiftBackward(int t, int c, bool finalGradient)
    {
        var data = new TestData(107);
        var x = data.Normal(t * c);
        var s0 = data.Normal(c);
        var g = data.Normal(t * c);
        var gs = data.Normal(c);
        var dx = Out(t, c);
        var ds0 = Out(1, c);
        Backward.TokenShiftBackward(In(g, t, c), finalGradient ? In(gs, 1, c) : null, dx, ds0);
        var (xd, sd, gd, gsd) = (ToDouble(x), ToDouble(s0), ToDouble(g), ToDouble(gs));
        double L()
        {
            var (delta, final) = TokenShift(xd, sd, t, c);
            return Dot(gd, delta) + (finalGradient ? Dot(gsd, final) : 0);
        }

        Check(Fd(xd, L), dx, "token_shift dx");
        Check(Fd(sd, L), ds0, "token_shift d(initial state)");
    }

    [Fact]
    public void MixShiftBackward()
    {
        var data = new TestData(108);
        const int T = 4, C = 9;
        var x = data.Normal(T * C);
        var delta = data.Normal(T * C);
        var mix = data.Uniform(C, 0, 1);
        var g = data.Normal(T * C);
        var priorMix = data.Normal(C);
        var dx = Out(T, C);
        var dDelta = Out(T, C);
        var dMix = In(priorMix, C);
        Backward.MixShiftBackward(In(delta, T, C), In(mix, C), In(g, T, C), dx, dDelta, dMix);
        var (xd, dd, md, gd) = (ToDouble(x), ToDouble(delta), ToDouble(mix), ToDouble(g));
        double L() => Dot(gd, MixShift(xd, dd, md));
        Check(Fd(xd, L), dx, "mix_shift dx");
        Check(Fd(dd, L), dDelta, "mix_shift ddelta");
        Check(Fd(md, L), dMix, "mix_shift dmix", priorMix);
    }

    [Theory]
    [InlineData(DType.F32, 1, 8, 2)]
    [InlineData(DType.BF16, 4, 9, 3)]
    public void Rwkv6DdlerpBackward(DType dtype, int t, int c, int rank)
    {
        var data = new TestData(109);
        var x = data.Normal(t * c);
        var delta = data.Normal(t * c);
        var lora = data.Uniform(t * 5 * rank);
        var mixes = data.Uniform(5 * c);
        var w2 = Weight(data.Normal(5 * rank * c, 0.3f), dtype, out var w2r, 5, rank, c);
        var g = data.Normal(5 * t * c);
        var priorW2 = data.Normal(5 * rank * c);
        var priorMixes = data.Normal(5 * c);
        var dx = Out(t, c);
        var dDelta = Out(t, c);
        var dLora = Out(t, 5 * rank);
        var dW2 = In(priorW2, 5, rank, c);
        var dMixes = In(priorMixes, 5, c);
        Backward.Rwkv6DdlerpBackward(In(delta, t, c), In(lora, t, 5 * rank), w2, In(mixes, 5, c), In(g, 5 * t, c),
            dx, dDelta, dLora, dW2, dMixes);
        var (xd, dd, ld, wd, md, gd) = (ToDouble(x), ToDouble(delta), ToDouble(lora), ToDouble(w2r), ToDouble(mixes), ToDouble(g));
        double L() => Dot(gd, Rwkv6Ddlerp(xd, dd, ld, wd, md, t, c, rank));
        Check(Fd(xd, L), dx, "ddlerp dx");
        Check(Fd(dd, L), dDelta, "ddlerp ddelta");
        Check(Fd(ld, L), dLora, "ddlerp dlora");
        Check(Fd(wd, L), dW2, "ddlerp dw2", priorW2);
        Check(Fd(md, L), dMixes, "ddlerp dmixes", priorMixes);
    }

    [Fact]
    public void Rwkv6DecayBackwardIsZeroWhereTheClampIsActive()
    {
        var data = new TestData(110);
        const int T = 3, A = 40;
        // bias + d spans [−8, 4]: −exp(·) passes −5 near 1.609, so both sides of the clamp are hit.
        var d = data.Uniform(T * A, -4, 2);
        var bias = data.Uniform(A, -4, 2);
        var g = data.Normal(T * A);
        var priorBias = data.Normal(A);
        var dd = Out(T, A);
        var dBias = In(priorBias, A);
        Backward.Rwkv6DecayBackward(In(d, T, A), In(bias, A), In(g, T, A), dd, dBias);
        var (ddd, bd, gd) = (ToDouble(d), ToDouble(bias), ToDouble(g));
        double L() => Dot(gd, Rwkv6Decay(ddd, bd));
        Check(Fd(ddd, L), dd, "rwkv6_decay dd");
        Check(Fd(bd, L), dBias, "rwkv6_decay dbias", priorBias);

        var got = Read(dd);
        int clamped = 0;
        for (int i = 0; i < got.Length; i++)
        {
            if (-Math.Exp(d[i] + (double)bias[i % A]) < -5)
            {
                Assert.Equal(0f, got[i]);
                clamped++;
            }
            else
            {
                Assert.NotEqual(0f, got[i]);
            }
        }

        Assert.InRange(clamped, 1, got.Length - 1);
    }

    [Fact]
    public void Rwkv6BalanceKeysBackward()
    {
        var data = new TestData(111);
        var k = data.Normal(48);
        var w = data.Uniform(48, 0, 1);
        var g = data.Normal(48);
        var dk = Out(3, 16);
        var dw = Out(3, 16);
        Backward.Rwkv6BalanceKeysBackward(In(k, 3, 16), In(w, 3, 16), In(g, 3, 16), dk, dw);
        var (kd, wd, gd) = (ToDouble(k), ToDouble(w), ToDouble(g));
        double L() => Dot(gd, Rwkv6BalanceKeys(kd, wd));
        Check(Fd(kd, L), dk, "balance_keys dk");
        Check(Fd(wd, L), dw, "balance_keys dw");
    }

    [Theory]
    [InlineData(1, 1, 4, false)]
    [InlineData(2, 2, 4, true)]
    [InlineData(5, 2, 8, true)]
    [InlineData(17, 2, 4, true)]
    [InlineData(40, 2, 8, false)]
    public void Wkv6Backward(int t, int heads, int n, bool finalGradient)
    {
        var data = new TestData(112);
        int a = heads * n;
        var r = data.Normal(t * a);
        var k = data.Normal(t * a, 0.5f);
        var v = data.Normal(t * a);
        var w = data.Uniform(t * a, (float)Math.Exp(-5), 1f);
        var s0 = data.Normal(heads * n * n);
        var g = data.Normal(t * a);
        var gs = data.Normal(heads * n * n);
        float scale = 1f / MathF.Sqrt(n);
        var state = In(s0, heads, n, n);
        var (dr, dk, dv, dw) = (Out(t, a), Out(t, a), Out(t, a), Out(t, a));
        var ds0 = Out(heads, n, n);
        Backward.Wkv6Backward(In(r, t, a), In(k, t, a), In(v, t, a), In(w, t, a), state, scale, In(g, t, a),
            finalGradient ? In(gs, heads, n, n) : null, dr, dk, dv, dw, ds0);
        Assert.Equal(s0, Read(state));

        var (rd, kd, vd, wd, sd, gd, gsd) = (ToDouble(r), ToDouble(k), ToDouble(v), ToDouble(w), ToDouble(s0), ToDouble(g), ToDouble(gs));
        double L()
        {
            var s = (double[])sd.Clone();
            var y = Wkv6(rd, kd, vd, wd, s, t, heads, n, scale);
            return Dot(gd, y) + (finalGradient ? Dot(gsd, s) : 0);
        }

        Check(Fd(rd, L), dr, "wkv6 dr", recurrence: true);
        Check(Fd(kd, L), dk, "wkv6 dk", recurrence: true);
        Check(Fd(vd, L), dv, "wkv6 dv", recurrence: true);
        Check(Fd(wd, L), dw, "wkv6 dw", recurrence: true);
        Check(Fd(sd, L), ds0, "wkv6 d(initial state)", recurrence: true);
    }

    [Fact]
    public void Rwkv7DecayBackward()
    {
        var data = new TestData(113);
        var z = data.Normal(2 * 24, 3f);
        var w0 = data.Uniform(24, -6, 1);
        var g = data.Normal(2 * 24);
        var priorW0 = data.Normal(24);
        var dz = Out(2, 24);
        var dW0 = In(priorW0, 24);
        Backward.Rwkv7DecayBackward(In(z, 2, 24), In(w0, 24), In(g, 2, 24), dz, dW0);
        var (zd, w0d, gd) = (ToDouble(z), ToDouble(w0), ToDouble(g));
        double L() => Dot(gd, Rwkv7Decay(zd, w0d));
        Check(Fd(zd, L), dz, "rwkv7_decay dz");
        Check(Fd(w0d, L), dW0, "rwkv7_decay dw0", priorW0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rwkv7KeysBackward(bool balanced) => KeysCase(balanced, 3, 2, tinyHead: false);

    /// <summary>
    /// A head whose key norm (~3e-14) is below the eps (1e-12): κ = u/eps is linear there, so du = dκ/eps (~1e12).
    /// The finite-difference step is relative (1e-6·|x|) so it stays inside the guard.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rwkv7KeysBackwardThroughTheEpsGuard(bool balanced) => KeysCase(balanced, 1, 1, tinyHead: true);

    private void KeysCase(bool balanced, int t, int heads, bool tinyHead)
    {
        var data = new TestData(tinyHead ? 115 : 114);
        const int N = 8;
        int a = heads * N;
        var k = data.Normal(t * a);
        if (tinyHead)
        {
            k = k.Select(v => v * 1e-14f).ToArray();
        }

        var w = data.Uniform(t * a, 0.55f, 1f);
        var iclr = data.Uniform(t * a, 0, 1);
        var kk = data.Uniform(a, 0.5f, 1.2f);
        var ka = data.Uniform(a, 0.5f, 1.5f);
        var (gRem, gRep, gTil) = (data.Normal(t * a), data.Normal(t * a), data.Normal(t * a));
        var priorKk = data.Normal(a);
        var priorKa = data.Normal(a);
        var dk = Out(t, a);
        var dw = Out(t, a);
        var da = Out(t, a);
        var dKk = In(priorKk, a);
        var dKa = In(priorKa, a);
        Backward.Rwkv7KeysBackward(In(k, t, a), In(w, t, a), In(iclr, t, a), balanced ? null : In(kk, a), balanced ? null : In(ka, a),
            N, balanced, In(gRem, t, a), In(gRep, t, a), In(gTil, t, a), dk, dw, da, balanced ? null : dKk, balanced ? null : dKa);

        var (kd, wd, ad, kkd, kad) = (ToDouble(k), ToDouble(w), ToDouble(iclr), ToDouble(kk), ToDouble(ka));
        var (gRemD, gRepD, gTilD) = (ToDouble(gRem), ToDouble(gRep), ToDouble(gTil));
        if (tinyHead)
        {
            var u = kd.Select((v, i) => v * (balanced ? 1 : kkd[i])).ToArray();
            Assert.True(Math.Sqrt(Dot(u, u)) < 1e-12, "the tiny head must be inside the eps guard");
        }

        double L()
        {
            var (removal, replacement, kTilde) = Rwkv7Keys(kd, wd, ad, balanced ? null : kkd, balanced ? null : kad, a, N, balanced);
            return Dot(gRemD, removal) + Dot(gRepD, replacement) + Dot(gTilD, kTilde);
        }

        Func<double, double>? step = tinyHead ? x => Math.Abs(x) < 1e-10 ? 1e-6 * Math.Abs(x) : FiniteDifferences.Step(x) : null;
        string name = $"rwkv7_keys ({(balanced ? "balanced" : "stock")}{(tinyHead ? ", eps guard" : "")})";
        Check(Fd(kd, L, step), dk, name + " dk");
        Check(Fd(ad, L, step), da, name + " da");
        if (!balanced)
        {
            Check(Fd(kkd, L, step), dKk, name + " dk_k", priorKk);
        }

        // dw = −dk̃ ⊙ k and dk_a = Σ dk̃ ⊙ k ⊙ (a − 1) do not pass through the normalisation. In the eps-guard case they
        // are ~1e-14, below what a finite difference of L (~0.1) resolves in double; the normal case checks them.
        if (!tinyHead)
        {
            Check(Fd(wd, L, step), dw, name + " dw", mayBeZero: !balanced);
            if (!balanced)
            {
                Check(Fd(kad, L, step), dKa, name + " dk_a", priorKa);
            }
        }
    }

    [Fact]
    public void Rwkv7ValueResidualBackwardAccumulatesIntoVFirst()
    {
        var data = new TestData(116);
        var v = data.Normal(40);
        var first = data.Normal(40);
        var nu = data.Uniform(40, 0, 1);
        var g = data.Normal(40);
        var priorFirst = data.Normal(40);
        var dv = Out(2, 20);
        var dFirst = In(priorFirst, 2, 20);
        var dNu = Out(2, 20);
        Backward.Rwkv7ValueResidualBackward(In(v, 2, 20), In(first, 2, 20), In(nu, 2, 20), In(g, 2, 20), dv, dFirst, dNu);
        var (vd, fd, nd, gd) = (ToDouble(v), ToDouble(first), ToDouble(nu), ToDouble(g));
        double L() => Dot(gd, Rwkv7ValueResidual(vd, fd, nd));
        Check(Fd(vd, L), dv, "value_residual dv");
        Check(Fd(fd, L), dFirst, "value_residual dv_first", priorFirst);
        Check(Fd(nd, L), dNu, "value_residual dnu");
    }

    [Theory]
    [InlineData(1, 1, 4, false)]
    [InlineData(2, 2, 4, true)]
    [InlineData(5, 2, 8, true)]
    [InlineData(17, 2, 4, true)]
    [InlineData(37, 1, 8, false)]
    public void Wkv7Backward(int t, int heads, int n, bool finalGradient)
    {
        var data = new TestData(117);
        int a = heads * n;
        var r = data.Normal(t * a);
        var w = data.Uniform(t * a, 0.545f, 1f);
        var k = data.Normal(t * a, 0.3f);
        var v = data.Normal(t * a);
        // a = −κ and b = κ ⊙ iclr with κ a unit vector per head, as the model feeds them.
        var (removal, replacement) = data.Wkv7Keys(t * a, n);

        var s0 = data.Normal(heads * n * n, 0.5f);
        var g = data.Normal(t * a);
        var gs = data.Normal(heads * n * n);
        var state = In(s0, heads, n, n);
        var (dr, dw, dk, dv, da, db) = (Out(t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a));
        var ds0 = Out(heads, n, n);
        Backward.Wkv7Backward(In(r, t, a), In(w, t, a), In(k, t, a), In(v, t, a), In(removal, t, a), In(replacement, t, a), state,
            In(g, t, a), finalGradient ? In(gs, heads, n, n) : null, dr, dw, dk, dv, da, db, ds0);
        Assert.Equal(s0, Read(state));

        var (rd, wd, kd, vd, ad, bd) = (ToDouble(r), ToDouble(w), ToDouble(k), ToDouble(v), ToDouble(removal), ToDouble(replacement));
        var (sd, gd, gsd) = (ToDouble(s0), ToDouble(g), ToDouble(gs));
        double L()
        {
            var s = (double[])sd.Clone();
            var y = Wkv7(rd, wd, kd, vd, ad, bd, s, t, heads, n);
            return Dot(gd, y) + (finalGradient ? Dot(gsd, s) : 0);
        }

        Check(Fd(rd, L), dr, "wkv7 dr", recurrence: true);
        Check(Fd(wd, L), dw, "wkv7 dw", recurrence: true);
        Check(Fd(kd, L), dk, "wkv7 dk", recurrence: true);
        Check(Fd(vd, L), dv, "wkv7 dv", recurrence: true);
        Check(Fd(ad, L), da, "wkv7 da", recurrence: true);
        Check(Fd(bd, L), db, "wkv7 db", recurrence: true);
        Check(Fd(sd, L), ds0, "wkv7 d(initial state)", recurrence: true);
    }

    /// <summary>
    /// The step-1 loss Σ_t ‖s_t − t_t‖₂/√C against its float64 definition, and its gradient (scaled by gradScale) against
    /// finite differences; rows of one token and of several, an odd width, and a row whose difference is exactly zero
    /// (loss 0 for that row, gradient 0: the subgradient torch takes). The gradient may be written over the student.
    /// </summary>
    [Theory]
    [InlineData(1, 7)]
    [InlineData(5, 16)]
    [InlineData(9, 33)]
    public void AlignmentLoss(int t, int c)
    {
        var data = new TestData(119);
        var teacher = data.Normal(t * c);
        var student = data.Normal(t * c);
        int zeroRow = t > 1 ? t / 2 : -1; // a single row stays non-zero, else nothing would be checked
        if (zeroRow >= 0)
        {
            Array.Copy(teacher, zeroRow * c, student, zeroRow * c, c);
        }

        const float Scale = 0.125f;
        var dStudent = Out(t, c);
        double loss = Backward.AlignmentLoss(In(teacher, t, c), In(student, t, c), Scale, dStudent);
        double expected = NaiveOps.AlignmentLoss(ToDouble(teacher), ToDouble(student), c);
        Assert.Equal(expected, loss, expected * Tolerances.OpRelative);
        Assert.Equal(loss, Backward.AlignmentLoss(In(teacher, t, c), In(student, t, c), Scale, null));

        var sd = ToDouble(student);
        var td = ToDouble(teacher);
        double L() => Scale * NaiveOps.AlignmentLoss(td, sd, c);
        var fd = Fd(sd, L);
        // The zero row is the norm's kink: finite differences see ±|h|, the op takes the subgradient 0.
        var gradient = Read(dStudent);
        if (zeroRow >= 0)
        {
            Array.Clear(fd, zeroRow * c, c);
            Assert.All(gradient.AsSpan(zeroRow * c, c).ToArray(), e => Assert.Equal(0f, e));
        }

        Check(fd, dStudent, "alignment loss dStudent");

        var aliased = In(student, t, c);
        Assert.Equal(loss, Backward.AlignmentLoss(In(teacher, t, c), aliased, Scale, aliased));
        Assert.Equal(gradient, Read(aliased));
    }

    [Fact]
    public void AlignmentLossIsZeroWhenTheOutputsAreEqual()
    {
        var data = new TestData(120);
        var x = data.Normal(4 * 8);
        var d = Out(4, 8);
        Assert.Equal(0.0, Backward.AlignmentLoss(In(x, 4, 8), In(x, 4, 8), 1f, d));
        Assert.All(Read(d), e => Assert.Equal(0f, e));
    }

    /// <summary>The aliasing the interface allows (input gradient written over dy) gives the same bits as separate buffers.</summary>
    [Fact]
    public void InPlaceBackwardsEqualOutOfPlace()
    {
        var data = new TestData(118);
        const int T = 3, C = 16;
        var x = data.Normal(T * C);
        var x2 = data.Uniform(T * C, 0, 1);
        var g = data.Normal(T * C);
        var bias = data.Normal(C);

        void Same(string what, Action<Tensor, Tensor> op)
        {
            var separate = Out(T, C);
            op(In(g, T, C), separate);
            var inPlace = In(g, T, C);
            op(inPlace, inPlace);
            Assert.True(Read(separate).SequenceEqual(Read(inPlace)), what);
        }

        Same("scale", (dy, dx) => Backward.ScaleBackward(dy, 0.5f, dx));
        Same("tanh", (dy, dx) => Backward.TanhBackward(In(x2, T, C), dy, dx));
        Same("sigmoid", (dy, dx) => Backward.SigmoidBackward(In(x2, T, C), dy, dx));
        Same("add_sigmoid", (dy, dx) => Backward.AddSigmoidBackward(In(x2, T, C), dy, dx, null));
        Same("multiply", (dy, da) => Backward.MultiplyBackward(In(x, T, C), In(x2, T, C), dy, da, Out(T, C)));
        Same("group_norm", (dy, dx) => Backward.GroupNormBackward(In(x, T, C), In(bias, C), dy, 2, 8e-5f, dx, null, null));
        Same("token_shift", (dy, dx) => Backward.TokenShiftBackward(dy, In(bias, 1, C), dx, Out(1, C)));
        Same("rwkv6_decay", (dy, dd) => Backward.Rwkv6DecayBackward(In(x, T, C), In(bias, C), dy, dd, null));
        Same("rwkv7_decay", (dy, dz) => Backward.Rwkv7DecayBackward(In(x, T, C), In(bias, C), dy, dz, null));
        Same("balance_keys dk", (dy, dk) => Backward.Rwkv6BalanceKeysBackward(In(x, T, C), In(x2, T, C), dy, dk, null));
        Same("value_residual dv", (dy, dv) => Backward.Rwkv7ValueResidualBackward(In(x, T, C), In(bias.Concat(bias).Concat(bias).ToArray(), T, C),
            In(x2, T, C), dy, dv, null, Out(T, C)));
    }

    public void Dispose()
    {
        foreach (var d in owned)
        {
            d.Dispose();
        }

        backend?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The CPU reference backward against finite differences.</summary>
public sealed class CpuBackwardTests() : BackwardTests(new CpuBackend(), new CpuBackwardOps());

/// <summary>
/// The CUDA backward against the same finite differences (the GPU machine); skipped with the backend's reason where
/// there is no GPU, driver or NVRTC.
/// </summary>
public sealed class CudaBackwardTests() : BackwardTests(() => new Radlads.Cuda.CudaBackend());
