using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// One harness for every backend (ggml's test-backend-ops): each op runs on fresh seeded random inputs at
/// shapes that hit edge cases (T = 1, odd widths, several heads, GQA groups, non-zero start positions) and is
/// compared with the float64 definition in <see cref="NaiveOps"/>. Output buffers are poisoned with NaN first,
/// so an element the op forgot to write fails. A backend gets the whole suite by deriving from this class.
/// A backend that may be missing on a machine (CUDA) passes a factory: when it throws RadladsException, every test
/// reports as skipped with that message instead of failing.
/// </summary>
public abstract partial class OpConformanceTests : IDisposable
{
    private readonly List<IDisposable> owned = [];
    private readonly IBackend? backend;
    private readonly string? unavailable;

    protected OpConformanceTests(IBackend backend) => this.backend = backend;

    protected OpConformanceTests(Func<IBackend> create)
    {
        try
        {
            backend = create();
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

    private IOps Ops => Backend.Ops;

    private Tensor In(float[] values, params int[] shape) => Own(Backend.FromFloats(values, shape));

    private Tensor Out(params int[] shape)
    {
        var t = Own(Backend.Allocate(shape));
        Backend.Upload(Enumerable.Repeat(float.NaN, (int)t.ElementCount).ToArray(), t);
        return t;
    }

    private Tensor Weight(float[] values, DType dtype, out float[] rounded, params int[] shape)
    {
        var w = new NativeWeight(values, dtype, shape);
        owned.Add(w);
        rounded = w.Values;
        return Own(Backend.LoadWeight(w.Data));
    }

    private T Own<T>(T d)
        where T : IDisposable
    {
        owned.Add(d);
        return d;
    }

    private float[] Read(Tensor t)
    {
        var values = new float[t.ElementCount];
        Backend.Download(t, values);
        return values;
    }

    private void Check(double[] expected, Tensor actual, string what, bool recurrence = false) =>
        Compare.Close(expected, Read(actual),
            recurrence ? Tolerances.RecurrenceRelative : Tolerances.OpRelative,
            recurrence ? Tolerances.RecurrenceAbsolute : Tolerances.OpAbsolute, what);

    private static double[] Map(float[] x, Func<double, double> f) => x.Select(v => f(v)).ToArray();

    [Theory]
    [InlineData(DType.BF16, 1, 8)]
    [InlineData(DType.F16, 5, 67)]
    [InlineData(DType.F32, 3, 64)]
    public void Embedding(DType dtype, int t, int c)
    {
        var data = new TestData(1);
        var table = Weight(data.Uniform(50 * c), dtype, out var rounded, 50, c);
        var ids = data.Ints(t, 50);
        var y = Out(t, c);
        Ops.Embedding(table, ids, y);
        var expected = ids.SelectMany(id => rounded.Skip(id * c).Take(c).Select(v => (double)v)).ToArray();
        Check(expected, y, "embedding");
    }

    [Fact]
    public void EmbeddingRejectsIdsOutsideTheVocabulary()
    {
        var table = Weight(new TestData(2).Uniform(40), DType.BF16, out _, 10, 4);
        var y = Out(1, 4);
        var e = Assert.Throws<RadladsException>(() => Ops.Embedding(table, [10], y));
        Assert.Contains("10", e.Message, StringComparison.Ordinal);
    }

    // C % 4 == 0 takes CUDA's register-held float4 path (block sized to C/16 threads: 896 → 64, 3,584 → 224,
    // 16,384 → 1,024, its largest); 67 and 16,388 (past the largest) take the strided loop.
    [Theory]
    [InlineData(1, 8, 1e-6, DType.F32)]
    [InlineData(4, 67, 1e-5, DType.F32)]
    [InlineData(3, 256, 1e-6, DType.F32)]
    [InlineData(1, 896, 1e-6, DType.BF16)]
    [InlineData(2, 3584, 1e-6, DType.BF16)]
    [InlineData(1, 3588, 1e-6, DType.F16)]
    [InlineData(1, 16384, 1e-6, DType.F32)]
    [InlineData(2, 16388, 1e-6, DType.BF16)]
    public void RmsNorm(int t, int c, double eps, DType dtype)
    {
        var data = new TestData(3);
        var x = data.Normal(t * c, 3f);
        var w = Weight(data.Uniform(c, 0.5f, 1.5f), dtype, out var wr, c);
        var y = Out(t, c);
        Ops.RmsNorm(In(x, t, c), w, (float)eps, y);
        Check(NaiveOps.RmsNorm(x, wr, c, eps), y, "rms_norm");

        // In place (y = x), as the final norm runs.
        var inPlace = In(x, t, c);
        Ops.RmsNorm(inPlace, w, (float)eps, inPlace);
        Check(NaiveOps.RmsNorm(x, wr, c, eps), inPlace, "rms_norm in place");
    }

    // The residual add fused into the norm: h comes back as h + b exactly (one float add per element on every
    // backend), y as RmsNorm(h + b); and it equals Add then RmsNorm on the same backend bit for bit (CUDA's two
    // kernels share the reduction order).
    [Theory]
    [InlineData(1, 8, DType.F32, false)]
    [InlineData(3, 67, DType.BF16, false)]
    [InlineData(1, 896, DType.BF16, true)]
    [InlineData(1, 3584, DType.BF16, false)]
    [InlineData(5, 3584, DType.F16, true)]
    [InlineData(2, 16388, DType.F32, false)]
    public void AddRmsNorm(int t, int c, DType dtype, bool intoBranch)
    {
        var data = new TestData(31);
        var h = data.Normal(t * c, 2f);
        var b = data.Normal(t * c, 1f);
        var w = Weight(data.Uniform(c, 0.5f, 1.5f), dtype, out var wr, c);
        var sum = h.Zip(b, (p, q) => p + q).ToArray();
        var ht = In(h, t, c);
        var bt = In(b, t, c);
        var y = intoBranch ? bt : Out(t, c);
        Ops.AddRmsNorm(ht, bt, w, 1e-6f, y);
        Assert.Equal(sum, Read(ht));
        Check(NaiveOps.RmsNorm(sum, wr, c, 1e-6), y, "add_rms_norm");

        var h2 = In(h, t, c);
        var y2 = Out(t, c);
        Ops.Add(h2, In(b, t, c), h2);
        Ops.RmsNorm(h2, w, 1e-6f, y2);
        Assert.Equal(Read(y2), Read(y));
    }

    [Fact]
    public void AddRmsNormRejectsAnOutputOverTheResidual()
    {
        var h = In(new float[8], 1, 8);
        var e = Assert.Throws<ArgumentException>(() => Ops.AddRmsNorm(h, In(new float[8], 1, 8), In(new float[8], 8), 1e-6f, h));
        Assert.Contains("alias", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(DType.BF16, 1, 64, 96, true, true)]
    [InlineData(DType.BF16, 7, 33, 17, true, false)]
    [InlineData(DType.F16, 2, 64, 300, false, true)]
    [InlineData(DType.F32, 1, 5, 513, false, false)]
    [InlineData(DType.F32, 19, 128, 40, true, true)]
    [InlineData(DType.BF16, 3, 40, 5, false, false)]
    // Several 64×64 output tiles in both layouts, and T = 1 rows long enough for vectorised (16-byte) weight loads.
    [InlineData(DType.BF16, 70, 200, 150, true, true)]
    [InlineData(DType.F16, 65, 96, 130, false, true)]
    [InlineData(DType.BF16, 1, 896, 300, true, true)]
    [InlineData(DType.F16, 1, 512, 70, true, false)]
    [InlineData(DType.F32, 1, 128, 77, true, true)]
    // T = 1 at decode shapes: few rows (several warps per row), LoRA factors in×out with K split over blocks,
    // wide in×out rows, and odd sizes that take the scalar paths.
    [InlineData(DType.BF16, 1, 4096, 24, true, true)]
    [InlineData(DType.F16, 1, 1024, 1000, true, false)]
    [InlineData(DType.BF16, 1, 3584, 96, false, false)]
    [InlineData(DType.BF16, 1, 96, 3584, false, true)]
    [InlineData(DType.F16, 1, 1000, 40, false, true)]
    [InlineData(DType.F32, 1, 700, 36, false, true)]
    [InlineData(DType.BF16, 1, 513, 37, false, true)]
    [InlineData(DType.BF16, 1, 4000, 7, true, false)]
    public void MatMul(DType dtype, int t, int k, int m, bool outIn, bool withBias)
    {
        var data = new TestData(4);
        var x = data.Normal(t * k);
        var w = Weight(data.Normal(k * m, 0.2f), dtype, out var wr, outIn ? [m, k] : [k, m]);
        var b = withBias ? data.Normal(m) : null;
        var y = Out(t, m);
        Ops.MatMul(In(x, t, k), w, b is null ? null : In(b, m), y, outIn ? WeightLayout.OutIn : WeightLayout.InOut);
        Check(NaiveOps.MatMul(x, wr, b, t, k, m, outIn), y, $"matmul {(outIn ? "out×in" : "in×out")}");
    }

    [Theory]
    // q/k/v at a decode shape (one launch on a GPU), gate/up, odd row counts, and shapes that fall back to one
    // MatMul each (several rows; K not a multiple of the vector width).
    [InlineData(DType.BF16, 1, 896, new[] { 896, 128, 128 }, true)]
    [InlineData(DType.F16, 1, 64, new[] { 5, 300 }, false)]
    [InlineData(DType.F32, 1, 128, new[] { 7, 1, 33 }, true)]
    [InlineData(DType.BF16, 1, 2048, new[] { 3000 }, false)]
    [InlineData(DType.BF16, 3, 64, new[] { 40, 24, 8 }, true)]
    [InlineData(DType.F16, 1, 13, new[] { 9, 4 }, true)]
    public void MatMulShared(DType dtype, int t, int k, int[] ms, bool withBias)
    {
        var data = new TestData(21);
        var x = data.Normal(t * k);
        var weights = new List<Tensor>();
        var rounded = new List<float[]>();
        var biases = new List<float[]?>();
        var outputs = new List<Tensor>();
        foreach (int m in ms)
        {
            weights.Add(Weight(data.Normal(k * m, 0.2f), dtype, out var wr, m, k));
            rounded.Add(wr);
            biases.Add(withBias ? data.Normal(m) : null);
            outputs.Add(Out(t, m));
        }

        Ops.MatMulShared(In(x, t, k), weights, biases.Select(b => b is null ? null : In(b, b.Length)).ToArray(), outputs);
        for (int i = 0; i < ms.Length; i++)
        {
            Check(NaiveOps.MatMul(x, rounded[i], biases[i], t, k, ms[i], true), outputs[i], $"matmul shared {i}");
        }
    }

    [Fact]
    public void ElementwiseOps()
    {
        var data = new TestData(5);
        var a = data.Normal(3 * 37, 2f);
        var b = data.Normal(3 * 37, 2f);
        var bias = data.Normal(37);
        var y = Out(3, 37);
        Ops.Add(In(a, 3, 37), In(b, 3, 37), y);
        Check(a.Zip(b, (p, q) => (double)p + q).ToArray(), y, "add");
        Ops.Multiply(In(a, 3, 37), In(b, 3, 37), y);
        Check(a.Zip(b, (p, q) => (double)p * q).ToArray(), y, "multiply");
        Ops.Scale(In(a, 3, 37), 0.25f, y);
        Check(Map(a, v => v * 0.25), y, "scale");
        Ops.Tanh(In(a, 3, 37), y);
        Check(Map(a, Math.Tanh), y, "tanh");
        Ops.Sigmoid(In(a, 3, 37), y);
        Check(Map(a, NaiveOps.Sigmoid), y, "sigmoid");
        Ops.AddSigmoid(In(a, 3, 37), In(bias, 37), y);
        Check(a.Select((v, i) => NaiveOps.Sigmoid(v + bias[i % 37])).ToArray(), y, "add_sigmoid");
        Ops.SwiGlu(In(a, 3, 37), In(b, 3, 37), y);
        Check(a.Zip(b, (g, u) => g * NaiveOps.Sigmoid(g) * u).ToArray(), y, "swiglu");
    }

    [Fact]
    public void TanhIsExactAtZeroAndAccurateForSmallInputs()
    {
        // RAD-RWKV LoRA hidden values start at exactly 0 (zero A matrices) and stay small early in training: tanh must
        // keep its relative accuracy there, and tanh(0) must be 0 for a converted student's token shift to be a no-op.
        var a = new[] { 0f, -0f, 1e-30f, -1e-12f, 3e-9f, -2e-7f, 1e-5f, -7e-4f, 0.01f, -0.05f, 0.0625f, -0.07f, 0.3f, 2f, -9f };
        var x = In(a, 1, a.Length);
        var y = Out(1, a.Length);
        Ops.Tanh(x, y);
        var values = Read(y);
        Assert.Equal(0f, values[0]);
        Assert.Equal(0f, values[1]);
        Compare.Close(Map(a, Math.Tanh), values, Tolerances.OpRelative, 0, "tanh of small inputs");
        Ops.Tanh(x, x);
        Compare.Close(Map(a, Math.Tanh), Read(x), Tolerances.OpRelative, 0, "tanh of small inputs in place");
    }

    [Fact]
    public void ElementwiseOpsMayWriteOverTheirInput()
    {
        var data = new TestData(6);
        var a = data.Normal(64);
        var x = In(a, 4, 16);
        Ops.Tanh(x, x);
        Check(Map(a, Math.Tanh), x, "tanh in place");
    }

    [Theory]
    [InlineData(1, 2, 16, 0, 1e6)]
    [InlineData(5, 3, 8, 0, 10000)]
    [InlineData(3, 1, 128, 4093, 1e6)]
    public void Rope(int t, int heads, int n, int start, double theta)
    {
        var x = new TestData(7).Normal(t * heads * n);
        var tensor = In(x, t, heads * n);
        Ops.Rope(tensor, heads, n, start, (float)theta);
        Check(NaiveOps.Rope(x, t, heads, n, start, theta), tensor, "rope");
    }

    [Theory]
    [InlineData(1, 1, 4, 1)]
    [InlineData(3, 2, 8, 3)]
    [InlineData(2, 4, 16, 7)]
    public void RepeatKv(int t, int kvHeads, int n, int groups)
    {
        var x = new TestData(8).Normal(t * kvHeads * n);
        var y = Out(t, kvHeads * groups * n);
        Ops.RepeatKv(In(x, t, kvHeads * n), kvHeads, n, groups, y);
        var expected = new double[t * kvHeads * groups * n];
        for (int p = 0; p < t; p++)
        {
            for (int h = 0; h < kvHeads * groups; h++)
            {
                for (int i = 0; i < n; i++)
                {
                    expected[(p * kvHeads * groups * n) + (h * n) + i] = x[(p * kvHeads * n) + (h / groups * n) + i];
                }
            }
        }

        Check(expected, y, "repeat_kv");
    }

    [Theory]
    [InlineData(1, 4, 16)]
    [InlineData(3, 28, 4)]
    [InlineData(2, 1, 33)]
    public void GroupNorm(int t, int groups, int d)
    {
        var data = new TestData(9);
        var x = data.Normal(t * groups * d, 2f).Select(v => v + 0.5f).ToArray();
        var w = data.Normal(groups * d);
        var b = data.Normal(groups * d);
        var y = Out(t, groups * d);
        float eps = d * 1e-5f;
        Ops.GroupNorm(In(x, t, groups * d), In(w, groups * d), In(b, groups * d), groups, eps, y);
        Check(NaiveOps.GroupNorm(x, w, b, groups * d, groups, eps), y, "group_norm");
    }

    [Theory]
    [InlineData(1, 0, 2, 2, 8)]
    [InlineData(4, 0, 4, 2, 16)]
    [InlineData(1, 37, 4, 1, 16)]
    [InlineData(6, 11, 6, 3, 8)]
    // Head dim 128 (several elements per lane on a GPU) against a cache of a few hundred positions.
    [InlineData(3, 300, 4, 2, 128)]
    // One query row (decode, split over the cache): short and long caches, head dims 64 and 128.
    [InlineData(1, 2000, 4, 2, 64)]
    [InlineData(1, 777, 2, 1, 128)]
    [InlineData(1, 5, 3, 3, 40)]
    // The live length at and one past ILGPU's decode split (256 positions a group), spare cache rows making one more
    // split than live.
    [InlineData(1, 255, 2, 1, 16)]
    [InlineData(1, 256, 2, 1, 16)]
    // Head dims below a group's thread count (ILGPU's CPU simulator: 8): the fused kernel splits each block of
    // positions into ⌊threads / N⌋ slices (N = 4: two; N = 6: one, with idle threads); several blocks of positions.
    [InlineData(3, 9, 2, 1, 4)]
    [InlineData(2, 20, 4, 2, 6)]
    [InlineData(1, 30, 2, 2, 2)]
    // Prefill on a GPU (T > 1: blocks of 16 query rows against tiles of 32 keys): GQA groups 1, 2 and 7, a partial
    // last block of rows (17, 65, 33, 20), cache offsets not a multiple of a tile, odd head dims, a long causal walk.
    [InlineData(2, 0, 4, 4, 16)]
    [InlineData(17, 5, 4, 2, 32)]
    [InlineData(64, 0, 7, 1, 16)]
    [InlineData(65, 3, 7, 1, 8)]
    [InlineData(20, 3, 14, 2, 40)]
    [InlineData(100, 0, 1, 1, 16)]
    [InlineData(33, 40, 2, 1, 128)]
    // CUDA's tensor-core prefill (64 query rows per block, key tiles of 64; head dims 16, 32, 64, 128): the models'
    // head dims and GQA 7, row blocks and key tiles ±1, cache offsets inside a tile and a whole tile (the full model
    // shapes are in CudaOpConformanceTests: they take ILGPU's CPU simulator half a minute).
    [InlineData(65, 70, 4, 2, 64)]
    [InlineData(130, 3, 7, 1, 128)]
    [InlineData(63, 64, 7, 1, 64)]
    [InlineData(129, 1, 2, 2, 64)]
    public void Attention(int t, int start, int heads, int kvHeads, int n) => CheckAttention(t, start, heads, kvHeads, n);

    /// <summary>The tolerance of Attention (relative, absolute) at this shape on this backend: fp32 unless overridden.</summary>
    protected virtual (double Relative, double Absolute) AttentionTolerance(int tokens, int headDim) => (Tolerances.OpRelative, Tolerances.OpAbsolute);

    /// <summary>IOps.Attention on fresh normal q, k, v against the float64 definition, at <see cref="AttentionTolerance"/>.</summary>
    protected void CheckAttention(int t, int start, int heads, int kvHeads, int n)
    {
        var data = new TestData(10);
        int length = start + t;
        var q = data.Normal(t * heads * n);
        var k = data.Normal(length * kvHeads * n);
        var v = data.Normal(length * kvHeads * n);
        var y = Out(t, heads * n);
        // The cache has spare rows past the used ones, as a real cache does; they must be ignored.
        var kc = In([.. k, .. data.Normal(3 * kvHeads * n, 100f)], length + 3, kvHeads * n);
        var vc = In([.. v, .. data.Normal(3 * kvHeads * n, 100f)], length + 3, kvHeads * n);
        Ops.Attention(In(q, t, heads * n), kc, vc, heads, kvHeads, n, start, y);
        var (relative, absolute) = AttentionTolerance(t, n);
        Compare.Close(NaiveOps.Attention(q, k, v, t, heads, kvHeads, n, start), Read(y), relative, absolute, "attention");
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(5, 67)]
    public void TokenShiftAndMixShift(int t, int c)
    {
        var data = new TestData(11);
        var x = data.Normal(t * c);
        var shift = data.Normal(c);
        var mix = data.Uniform(c, 0, 1);
        var state = In(shift, 1, c);
        var delta = Out(t, c);
        Ops.TokenShift(In(x, t, c), state, delta);
        var expected = new double[t * c];
        for (int p = 0; p < t; p++)
        {
            for (int i = 0; i < c; i++)
            {
                double previous = p == 0 ? shift[i] : x[((p - 1) * c) + i];
                expected[(p * c) + i] = previous - x[(p * c) + i];
            }
        }

        Check(expected, delta, "token_shift delta");
        Check(x.Skip((t - 1) * c).Select(v => (double)v).ToArray(), state, "token_shift state");
        var y = Out(t, c);
        var deltaValues = Read(delta);
        Ops.MixShift(In(x, t, c), delta, In(mix, c), y);
        Check(x.Select((v, i) => v + ((double)deltaValues[i] * mix[i % c])).ToArray(), y, "mix_shift");
    }

    [Theory]
    [InlineData(DType.BF16, 1, 16, 3)]
    [InlineData(DType.F32, 4, 33, 8)]
    public void Rwkv6Ddlerp(DType dtype, int t, int c, int rank)
    {
        var data = new TestData(12);
        var x = data.Normal(t * c);
        var delta = data.Normal(t * c);
        var lora = data.Uniform(t * 5 * rank);
        var mixes = data.Uniform(5 * c);
        var w2 = Weight(data.Normal(5 * rank * c, 0.3f), dtype, out var w2r, 5, rank, c);
        var y = Out(5 * t, c);
        Ops.Rwkv6Ddlerp(In(x, t, c), In(delta, t, c), In(lora, t, 5 * rank), w2, In(mixes, 5, c), y);
        var expected = new double[5 * t * c];
        for (int i = 0; i < 5; i++)
        {
            for (int p = 0; p < t; p++)
            {
                for (int j = 0; j < c; j++)
                {
                    double m = mixes[(i * c) + j];
                    for (int r = 0; r < rank; r++)
                    {
                        m += (double)lora[(p * 5 * rank) + (i * rank) + r] * w2r[(((i * rank) + r) * c) + j];
                    }

                    expected[(((i * t) + p) * c) + j] = x[(p * c) + j] + (delta[(p * c) + j] * m);
                }
            }
        }

        Check(expected, y, "rwkv6_ddlerp");
    }

    [Fact]
    public void Rwkv6DecayClampsTheLogDecayAtMinusFive()
    {
        var data = new TestData(13);
        // d + bias spans [−8, 4]: −exp(·) passes −5 near 1.609, so both sides of the clamp are hit.
        var d = data.Uniform(3 * 40, -4, 2);
        var bias = data.Uniform(40, -4, 2);
        var y = Out(3, 40);
        Ops.Rwkv6Decay(In(d, 3, 40), In(bias, 40), y);
        var expected = d.Select((v, i) => Math.Exp(Math.Max(-Math.Exp(v + bias[i % 40]), -5))).ToArray();
        Assert.Contains(expected, e => e == Math.Exp(-5));
        Assert.Contains(expected, e => e > Math.Exp(-5));
        Check(expected, y, "rwkv6_decay");
    }

    [Fact]
    public void Rwkv6BalanceKeys()
    {
        var data = new TestData(14);
        var k = data.Normal(48);
        var w = data.Uniform(48, 0, 1);
        var y = Out(3, 16);
        Ops.Rwkv6BalanceKeys(In(k, 3, 16), In(w, 3, 16), y);
        Check(k.Select((v, i) => v * (1.0 - w[i])).ToArray(), y, "rwkv6_balance_keys");
    }

    [Theory]
    [InlineData(1, 1, 4)]
    [InlineData(17, 3, 8)]
    [InlineData(64, 2, 16)]
    [InlineData(5, 2, 64)]
    [InlineData(4, 2, 128)]
    // T > 1 on a GPU: a warp per value column (wkv6_rows_f32); head dims below, at and above a warp, one not a
    // multiple of 32 (idle lanes), chunks of tokens around 64, a long scan (N = 128 × 300 is in CudaRecurrenceTests: ILGPU's CPU
    // simulator would take a minute).
    [InlineData(2, 3, 16)]
    [InlineData(65, 2, 32)]
    [InlineData(17, 2, 40)]
    [InlineData(64, 4, 32)]
    [InlineData(2, 2, 128)]
    [InlineData(300, 2, 32)]
    // Around the staged token chunk of wkv6_rows_f32 (32 tokens at N ≤ 64 but 30 at N = 64, 15 at N = 128), idle warps (N = 20).
    [InlineData(33, 2, 20)]
    [InlineData(31, 1, 64)]
    [InlineData(16, 1, 128)]
    public void Wkv6(int t, int heads, int n)
    {
        var data = new TestData(15);
        int a = heads * n;
        var r = data.Normal(t * a);
        var k = data.Normal(t * a, 0.5f);
        var v = data.Normal(t * a);
        var w = data.Uniform(t * a, (float)Math.Exp(-5), 1f);
        var s0 = data.Normal(heads * n * n);
        var state = In(s0, heads, n, n);
        var y = Out(t, a);
        double scale = 1 / Math.Sqrt(n);
        Ops.Wkv6(In(r, t, a), In(k, t, a), In(v, t, a), In(w, t, a), state, (float)scale, y);
        var expectedState = s0.Select(x => (double)x).ToArray();
        var expected = NaiveOps.Wkv6(r, k, v, w, expectedState, t, heads, n, scale);
        Check(expected, y, "wkv6 output", recurrence: true);
        Check(expectedState, state, "wkv6 state", recurrence: true);
    }

    [Fact]
    public void Rwkv7Decay()
    {
        var data = new TestData(16);
        var z = data.Normal(2 * 24, 3f);
        var w0 = data.Uniform(24, -6, 1);
        var y = Out(2, 24);
        Ops.Rwkv7Decay(In(z, 2, 24), In(w0, 24), y);
        var expected = z.Select((v, i) => Math.Exp(-Math.Exp(-0.5) * NaiveOps.Sigmoid(v + w0[i % 24]))).ToArray();
        Assert.All(expected, e => Assert.InRange(e, Math.Exp(-Math.Exp(-0.5)), 1));
        Check(expected, y, "rwkv7_decay");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rwkv7Keys(bool balanced)
    {
        var data = new TestData(17);
        const int T = 3, H = 2, N = 8, A = H * N;
        var k = data.Normal(T * A);
        k[3] = 0; // a whole zero head below exercises the eps guard
        Array.Clear(k, N, N);
        var w = data.Uniform(T * A, 0.55f, 1f);
        var a = data.Uniform(T * A, 0, 1);
        var kk = data.Uniform(A, 0.5f, 1.2f);
        var ka = data.Uniform(A, 0.5f, 1.5f);
        var removal = Out(T, A);
        var replacement = Out(T, A);
        var kTilde = Out(T, A);
        Ops.Rwkv7Keys(In(k, T, A), In(w, T, A), In(a, T, A), balanced ? null : In(kk, A), balanced ? null : In(ka, A), N, balanced,
            removal, replacement, kTilde);
        var eRemoval = new double[T * A];
        var eReplacement = new double[T * A];
        var eTilde = new double[T * A];
        for (int p = 0; p < T; p++)
        {
            for (int h = 0; h < H; h++)
            {
                int o = (p * A) + (h * N);
                var kappa = Enumerable.Range(0, N).Select(i => (double)k[o + i] * (balanced ? 1 : kk[(h * N) + i])).ToArray();
                double norm = Math.Max(Math.Sqrt(kappa.Sum(x => x * x)), 1e-12);
                for (int i = 0; i < N; i++)
                {
                    int j = o + i;
                    eRemoval[j] = -kappa[i] / norm;
                    eReplacement[j] = kappa[i] / norm * a[j];
                    eTilde[j] = balanced ? k[j] * (1.0 - w[j] + a[j]) : k[j] * (1.0 + ((a[j] - 1.0) * ka[(h * N) + i]));
                }
            }
        }

        Check(eRemoval, removal, "rwkv7_keys removal");
        Check(eReplacement, replacement, "rwkv7_keys replacement");
        Check(eTilde, kTilde, "rwkv7_keys k~");
    }

    [Fact]
    public void Rwkv7ValueResidual()
    {
        var data = new TestData(18);
        var v = data.Normal(40);
        var first = data.Normal(40);
        var nu = data.Uniform(40, 0, 1);
        var y = Out(2, 20);
        Ops.Rwkv7ValueResidual(In(v, 2, 20), In(first, 2, 20), In(nu, 2, 20), y);
        Check(v.Select((x, i) => x + ((first[i] - (double)x) * nu[i])).ToArray(), y, "rwkv7_value_residual");
    }

    [Theory]
    [InlineData(1, 1, 4)]
    [InlineData(16, 2, 8)]
    [InlineData(17, 3, 16)]
    [InlineData(70, 1, 8)]
    [InlineData(3, 2, 64)]
    [InlineData(4, 2, 128)]
    // One token (the decode kernel: a warp per state row), head dims below, at and above a warp.
    [InlineData(1, 3, 64)]
    [InlineData(1, 2, 128)]
    [InlineData(1, 2, 40)]
    // T > 1 on a GPU: the decode kernel's per-row arithmetic looped over the tokens (wkv7_tile_f32); head dims below, at
    // and above a warp, one not a multiple of 32 (idle lanes), chunks of tokens around 64, a long scan (N = 128 × 300 is in CudaRecurrenceTests: ILGPU's CPU
    // simulator would take a minute).
    [InlineData(2, 3, 16)]
    [InlineData(65, 2, 32)]
    [InlineData(17, 2, 40)]
    [InlineData(64, 4, 32)]
    [InlineData(2, 2, 128)]
    [InlineData(300, 2, 32)]
    // Around the staged token chunk of wkv7_tile_f32 (16 tokens at N ≤ 128, 8 above; y reduced 8 tokens at a time),
    // rows past N in a block (N = 20), keys past N in a lane (N = 20, 40, 200).
    [InlineData(33, 2, 20)]
    [InlineData(10, 1, 128)]
    [InlineData(17, 1, 128)]
    [InlineData(9, 1, 200)]
    public void Wkv7(int t, int heads, int n)
    {
        var data = new TestData(19);
        int a = heads * n;
        var r = data.Normal(t * a);
        var w = data.Uniform(t * a, 0.545f, 1f);
        var k = data.Normal(t * a, 0.3f);
        var v = data.Normal(t * a);
        // a = −κ and b = κ ⊙ iclr with κ a unit vector per head, as the model feeds them.
        var (removal, replacement) = data.Wkv7Keys(t * a, n);

        var s0 = data.Normal(heads * n * n, 0.5f);
        var state = In(s0, heads, n, n);
        var y = Out(t, a);
        Ops.Wkv7(In(r, t, a), In(w, t, a), In(k, t, a), In(v, t, a), In(removal, t, a), In(replacement, t, a), state, y);
        var expectedState = s0.Select(x => (double)x).ToArray();
        var expected = NaiveOps.Wkv7(r, w, k, v, removal, replacement, expectedState, t, heads, n);
        Check(expected, y, "wkv7 output", recurrence: true);
        Check(expectedState, state, "wkv7 state", recurrence: true);
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
