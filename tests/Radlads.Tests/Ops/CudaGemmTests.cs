using System.Globalization;
using Radlads.Checkpoints;
using Radlads.Cuda;
using Radlads.Ops;
using Radlads.Tests.Models;

namespace Radlads.Tests.Ops;

/// <summary>
/// MatMul and MatMulShared on the CUDA backend's cuBLASLt path (bf16 weights, x rounded to bf16, fp32 accumulation),
/// forced on from two rows (<see cref="CudaBackend.GemmMinRows"/> = 2), against the float64 definition. Each output
/// is checked twice: against the product of the bf16-rounded x (what cuBLASLt is asked to compute, within
/// <see cref="Tolerances.Bf16GemmRelative"/>), and against the product of the unrounded x within the rigorous
/// rounding bound 2^−8·Σ|x·w| (<see cref="Tolerances.Bf16UnitRoundoff"/>). Where rounding shows, the output must be
/// nearer the rounded product: proof that the path ran. T = 1 stays on the fp32 GEMV, f32/f16 weights on the tiled
/// kernel: those must match the unrounded product at the usual op tolerance. Skipped without a GPU or cuBLASLt.
/// </summary>
public sealed class CudaGemmTests : CublasLtTestBase
{
    private Tensor Weight(float[] values, DType dtype, out float[] rounded, params int[] shape)
    {
        var w = Own(new NativeWeight(values, dtype, shape));
        rounded = w.Values;
        return Own(Backend.LoadWeight(w.Data));
    }

    private float[] Read(Tensor t)
    {
        var values = new float[t.ElementCount];
        Backend.Download(t, values);
        return values;
    }

    /// <summary>Σ_k |x_k·w_k| per output: what the bf16 rounding of x can move it by, × 2^−8.</summary>
    private static double[] AbsoluteProducts(float[] x, float[] w, int t, int k, int m, bool outIn) =>
        NaiveOps.MatMul(x.Select(MathF.Abs).ToArray(), w.Select(MathF.Abs).ToArray(), null, t, k, m, outIn);

    /// <summary>The checks of the class summary; <paramref name="rounds"/>: whether this call must take the bf16 path.</summary>
    private static void Check(float[] actual, float[] x, float[] w, float[]? b, int t, int k, int m, bool outIn, bool rounds, string what)
    {
        var exact = NaiveOps.MatMul(x, w, b, t, k, m, outIn);
        if (!rounds)
        {
            Compare.Close(exact, actual, Tolerances.OpRelative, Tolerances.OpAbsolute, what + " (fp32 path)");
            return;
        }

        var rounded = NaiveOps.MatMul(Bf16GemmEmulation.RoundToBf16(x), w, b, t, k, m, outIn);
        Compare.Close(rounded, actual, Tolerances.Bf16GemmRelative, Tolerances.Bf16GemmAbsolute, what + " vs bf16-rounded x");
        var sums = AbsoluteProducts(x, w, t, k, m, outIn);
        var bound = sums.Select((s, i) => (Tolerances.Bf16UnitRoundoff * s) + Tolerances.Bf16GemmAbsolute + (Tolerances.Bf16GemmRelative * Math.Abs(rounded[i]))).ToArray();
        int bad = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!(Math.Abs(actual[i] - exact[i]) <= bound[i]))
            {
                bad++;
            }
        }

        Assert.True(bad == 0, $"{what}: {bad}/{actual.Length} elements outside the bf16 rounding bound of the exact product");
        double toRounded = 0, toExact = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            toRounded = Math.Max(toRounded, Math.Abs(actual[i] - rounded[i]));
            toExact = Math.Max(toExact, Math.Abs(actual[i] - exact[i]));
        }

        CudaModelTests.Report(string.Create(CultureInfo.InvariantCulture, $"{what}: max |Δ| {toRounded:G3} to the bf16-x product, {toExact:G3} to the exact one"));
        Assert.True(toRounded < toExact, $"{what}: the output is no nearer the bf16-rounded product ({toRounded:G3}) than the exact one ({toExact:G3}): the cuBLASLt path did not run");
    }

    [Theory]
    // T around a 16-row tile (15, 16, 17), long prefills, odd K and M (unaligned rows: cuBLASLt's slow kernels),
    // both layouts, with and without bias (fp32 and bf16 bias), and T = 1, which stays on the GEMV.
    [InlineData(1, 896, 150, true, "f32")]
    [InlineData(2, 64, 96, true, "none")]
    [InlineData(15, 896, 128, true, "bf16")]
    [InlineData(16, 896, 128, true, "f32")]
    [InlineData(17, 896, 128, false, "none")]
    [InlineData(64, 67, 33, true, "f32")]
    [InlineData(64, 67, 33, false, "bf16")]
    [InlineData(300, 512, 1536, true, "bf16")]
    [InlineData(300, 1536, 512, true, "none")]
    [InlineData(300, 96, 512, false, "f32")]
    [InlineData(17, 1001, 3, true, "f32")]
    public void MatMulWithBf16Weights(int t, int k, int m, bool outIn, string bias)
    {
        var data = new TestData(40 + t);
        var x = data.Normal(t * k);
        var w = Weight(data.Normal(k * m, 0.2f), DType.BF16, out var wr, outIn ? [m, k] : [k, m]);
        float[]? b = null;
        Tensor? bt = null;
        if (bias == "f32")
        {
            b = data.Normal(m);
            bt = In(b, m);
        }
        else if (bias == "bf16")
        {
            bt = Weight(data.Normal(m), DType.BF16, out var br, m);
            b = br;
        }

        var y = Out(t, m);
        // Odd K or M give unaligned rows, for which cuBLASLt may have no kernel: then the built-in one must run (and
        // be exact). Shapes with 16-byte aligned rows must be taken.
        ulong biasPointer = bias switch { "f32" => ((CudaTensor)bt!).Pointer, "bf16" => 256UL, _ => 0UL };
        bool taken = t >= 2 && Backend.Gemm!.Supports(((CudaTensor)w).Pointer, outIn, biasPointer, ((CudaTensor)y).Pointer, t, k, m);
        string what = $"T {t}, K {k}, M {m}, {(outIn ? "out×in" : "in×out")}, bias {bias}";
        if (t >= 2 && k % 8 == 0 && m % 8 == 0)
        {
            Assert.True(taken, $"{what}: cuBLASLt has no kernel for an aligned shape");
        }
        else if (t >= 2 && !taken)
        {
            CudaModelTests.Report($"{what}: cuBLASLt has no kernel; the built-in matmul ran");
        }

        Backend.Ops.MatMul(In(x, t, k), w, bt, y, outIn ? WeightLayout.OutIn : WeightLayout.InOut);
        Check(Read(y), x, wr, b, t, k, m, outIn, rounds: taken, what);
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    public void OtherWeightDTypesKeepTheFp32Kernels(DType dtype)
    {
        const int T = 64, K = 200, M = 150;
        var data = new TestData(50);
        var x = data.Normal(T * K);
        var w = Weight(data.Normal(K * M, 0.2f), dtype, out var wr, M, K);
        var b = data.Normal(M);
        var y = Out(T, M);
        Backend.Ops.MatMul(In(x, T, K), w, In(b, M), y);
        Check(Read(y), x, wr, b, T, K, M, true, rounds: false, $"{dtype} weights");
    }

    [Fact]
    public void MatMulSharedRoundsXOnceForEveryWeight()
    {
        const int T = 33, K = 256;
        int[] ms = [256, 64, 64];
        var data = new TestData(51);
        var x = data.Normal(T * K);
        var weights = new List<Tensor>();
        var rounded = new List<float[]>();
        var biases = new List<float[]>();
        var outputs = new List<Tensor>();
        foreach (int m in ms)
        {
            weights.Add(Weight(data.Normal(K * m, 0.2f), DType.BF16, out var wr, m, K));
            rounded.Add(wr);
            biases.Add(data.Normal(m));
            outputs.Add(Out(T, m));
        }

        Backend.Ops.MatMulShared(In(x, T, K), weights, biases.Select(b => (Tensor?)In(b, b.Length)).ToArray(), outputs);
        for (int i = 0; i < ms.Length; i++)
        {
            Check(Read(outputs[i]), x, rounded[i], biases[i], T, K, ms[i], true, rounds: true, $"shared {i}");
        }
    }

    [Fact]
    public void BelowTheRowThresholdTheFp32KernelsRun()
    {
        const int T = 8, K = 128, M = 96;
        Backend.GemmMinRows = 9;
        var data = new TestData(52);
        var x = data.Normal(T * K);
        var w = Weight(data.Normal(K * M, 0.2f), DType.BF16, out var wr, M, K);
        var y = Out(T, M);
        Backend.Ops.MatMul(In(x, T, K), w, null, y);
        Check(Read(y), x, wr, null, T, K, M, true, rounds: false, "8 rows below a threshold of 9");
    }

    /// <summary>
    /// A GEMM above <see cref="CudaGemm.TuneMinFlops"/> times cuBLASLt's candidates at its first call and only then;
    /// whatever it picks is within bf16-GEMM tolerance of the product (rows checked against float64); another backend
    /// of the process takes the same algorithm without timing (the same bits); another T of the same power-of-two
    /// bucket is not timed either (and is right); with tuning off nothing is timed; a small GEMM is never timed.
    /// </summary>
    [Fact]
    public void ALargeGemmTimesItsCandidatesOnceAndTheProcessKeepsTheChoice()
    {
        const int T = 520, K = 4096, M = 2056; // 8.8 GFLOP, a shape no other test uses (the choice is process-wide)
        var data = new TestData(54);
        var x = data.Normal(T * K);
        var native = Own(new NativeWeight(data.Normal(K * M, 0.05f), DType.BF16, [M, K]));
        var gemm = Backend.Gemm!;
        long before = gemm.Tunings;
        var xt = In(x, T, K);
        var w = Own(Backend.LoadWeight(native.Data));
        var y1 = Out(T, M);
        Backend.Ops.MatMul(xt, w, null, y1);
        Assert.Equal(before + 1, gemm.Tunings);
        var y2 = Out(T, M);
        Backend.Ops.MatMul(xt, w, null, y2);
        Assert.Equal(before + 1, gemm.Tunings);
        var first = Read(y1);
        Assert.Equal(Bits(first), Bits(Read(y2)));

        var xr = Bf16GemmEmulation.RoundToBf16(x);
        foreach (int row in new[] { 0, 259, T - 1 })
        {
            var exact = NaiveOps.MatMul(xr.AsSpan(row * K, K).ToArray(), native.Values, null, 1, K, M, outIn: true);
            Compare.Close(exact, first.AsSpan(row * M, M).ToArray(), Tolerances.Bf16GemmRelative, Tolerances.Bf16GemmAbsolute, $"tuned row {row}");
        }

        float[] OnAnotherBackend(bool tune, out long tunings)
        {
            using var other = CudaAvailability.Backend(gemmLibrary: true);
            other.Gemm!.Tune = tune;
            using var ox = other.FromFloats(x, T, K);
            using var ow = other.LoadWeight(native.Data);
            using var oy = other.Allocate(T, M);
            other.Ops.MatMul(ox, ow, null, oy);
            var values = new float[T * M];
            other.Download(oy, values);
            tunings = other.Gemm.Tunings;
            return values;
        }

        Assert.Equal(Bits(first), Bits(OnAnotherBackend(tune: true, out long otherTunings)));
        Assert.Equal(0, otherTunings);
        var untuned = OnAnotherBackend(tune: false, out long untunedTunings);
        Assert.Equal(0, untunedTunings);
        Compare.Close(first, untuned, Tolerances.Bf16GemmRelative, Tolerances.Bf16GemmAbsolute, "untuned against tuned");

        const int T2 = 600; // the bucket of 1,024 rows, like T
        var x2 = data.Normal(T2 * K);
        var y3 = Out(T2, M);
        Backend.Ops.MatMul(In(x2, T2, K), w, null, y3);
        Assert.Equal(before + 1, gemm.Tunings);
        var second = Read(y3);
        var x2r = Bf16GemmEmulation.RoundToBf16(x2);
        foreach (int row in new[] { 0, T2 - 1 })
        {
            var exact = NaiveOps.MatMul(x2r.AsSpan(row * K, K).ToArray(), native.Values, null, 1, K, M, outIn: true);
            Compare.Close(exact, second.AsSpan(row * M, M).ToArray(), Tolerances.Bf16GemmRelative, Tolerances.Bf16GemmAbsolute, $"T {T2} row {row}");
        }

        const int t = 33, k = 256, m = 64;
        Backend.Ops.MatMul(In(data.Normal(t * k), t, k), Weight(data.Normal(k * m, 0.2f), DType.BF16, out _, m, k), null, Out(t, m));
        Assert.Equal(before + 1, gemm.Tunings);
    }

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();

    [Fact]
    public void NonFiniteActivationsPropagate()
    {
        // bf16 keeps NaN and ±Inf: a NaN in a row of x must make that row's outputs NaN, not a number.
        const int T = 4, K = 64, M = 32;
        var data = new TestData(53);
        var x = data.Normal(T * K);
        x[(2 * K) + 5] = float.NaN;
        var w = Weight(data.Normal(K * M, 0.2f), DType.BF16, out _, M, K);
        var y = Out(T, M);
        Backend.Ops.MatMul(In(x, T, K), w, null, y);
        var values = Read(y);
        for (int r = 0; r < T; r++)
        {
            var row = values.AsSpan(r * M, M).ToArray();
            Assert.True(r == 2 ? row.All(float.IsNaN) : row.All(float.IsFinite), $"row {r}: [{string.Join(", ", row.Take(4))}, …]");
        }
    }
}
