using Radlads.Cpu;
using Radlads.Ops;
using Radlads.Tests.Ops;

namespace Radlads.Tests.Training;

/// <summary>
/// The training ops of <see cref="IBackwardOps"/> (Fill, SumOfSquares, AdamW) against float64 references and
/// hand-computed AdamW values, on sizes across the CPU's parallel chunk (1, odd, 2^16 ± 1, several chunks). Outputs are
/// poisoned first. A backend gets the suite by deriving from this class.
/// </summary>
public abstract class TrainingOpTests(IBackend backend) : IDisposable
{
    private readonly List<IDisposable> owned = [];

    protected IBackend Backend { get; } = backend;

    private IBackwardOps Ops => Backend.BackwardOps ?? throw new InvalidOperationException($"{Backend.Name} has no backward ops");

    private Tensor Tensor(float[] values)
    {
        var t = Backend.FromFloats(values, values.Length);
        owned.Add(t);
        return t;
    }

    private float[] Read(Tensor t)
    {
        var values = new float[t.ElementCount];
        Backend.Download(t, values);
        return values;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(65535)]
    [InlineData(65537)]
    [InlineData(200003)]
    public void FillWritesEveryElement(int n)
    {
        var x = Tensor(Enumerable.Repeat(float.NaN, n).ToArray());
        Ops.Fill(x, 0f);
        Assert.All(Read(x), v => Assert.Equal(0f, v));
        Ops.Fill(x, -2.5f);
        Assert.All(Read(x), v => Assert.Equal(-2.5f, v));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(65537)]
    [InlineData(200003)]
    public void SumOfSquaresMatchesFloat64(int n)
    {
        var values = new TestData(n).Normal(n, 3f);
        double expected = values.Select(v => (double)v * v).Sum();
        double actual = Ops.SumOfSquares(Tensor(values));
        Assert.True(Math.Abs(actual - expected) <= Tolerances.SumOfSquaresRelative * expected, $"Σx² {actual:R} vs {expected:R}");
        Assert.Equal(actual, Ops.SumOfSquares(Tensor(values))); // deterministic: the loop's resume test relies on it
    }

    /// <summary>The multi-tensor form (one synchronisation per step) gives each tensor's SumOfSquares bit for bit; a NaN stays in its slot.</summary>
    [Fact]
    public void SumsOfSquaresEqualEachSumOfSquares()
    {
        var tensors = new[] { 1, 5, 65537, 7, 200003 }.Select(n => Tensor(new TestData(n + 11).Normal(n, 2f))).ToArray();
        var poisoned = new TestData(12).Normal(300);
        poisoned[123] = float.NaN;
        tensors[3] = Tensor(poisoned);
        var sums = new double[tensors.Length];
        Ops.SumsOfSquares(tensors, sums);
        for (int i = 0; i < tensors.Length; i++)
        {
            Assert.Equal(Ops.SumOfSquares(tensors[i]), sums[i]);
            Assert.Equal(i == 3, double.IsNaN(sums[i]));
        }

        Assert.Throws<ArgumentException>(() => Ops.SumsOfSquares(tensors, new double[2]));
    }

    [Fact]
    public void SumOfSquaresPropagatesNanAndInf()
    {
        var values = new TestData(3).Normal(100_000);
        values[77_777] = float.NaN;
        Assert.True(double.IsNaN(Ops.SumOfSquares(Tensor(values))));
        values[77_777] = float.PositiveInfinity;
        Assert.True(double.IsPositiveInfinity(Ops.SumOfSquares(Tensor(values))));
    }

    [Theory]
    [InlineData(1, 0f, 1f)]
    [InlineData(9, 0.1f, 0.37f)]
    [InlineData(65537, 0f, 1f)]
    [InlineData(131075, 0.01f, 0.5f)]
    public void AdamWMatchesFloat64Reference(int n, float weightDecay, float gradScale)
    {
        var data = new TestData(n + 11);
        var p0 = data.Normal(n, 0.5f);
        double[] p = p0.Select(x => (double)x).ToArray(), m = new double[n], v = new double[n];
        var param = Tensor(p0);
        var mt = Tensor(new float[n]);
        var vt = Tensor(new float[n]);
        float[] lrs = [1e-3f, 5e-4f, 2e-3f, 1e-5f];
        double travelled = 0;
        for (int step = 1; step <= lrs.Length; step++)
        {
            var g = data.Normal(n, step == 2 ? 1e-3f : 2f);
            var grad = Tensor(g);
            Ops.AdamW(param, grad, mt, vt, lrs[step - 1], 0.9f, 0.95f, 1e-8f, weightDecay, gradScale, step);
            Assert.Equal(g, Read(grad)); // grad is read only
            double lr = lrs[step - 1];
            for (int i = 0; i < n; i++)
            {
                // torch.optim.AdamW, float64
                double gi = (double)gradScale * g[i];
                p[i] *= 1 - (lr * weightDecay);
                m[i] = (0.9 * m[i]) + (0.1 * gi);
                v[i] = (0.95 * v[i]) + (0.05 * gi * gi);
                double denom = (Math.Sqrt(v[i]) / Math.Sqrt(1 - Math.Pow(0.95, step))) + 1e-8;
                p[i] -= lr / (1 - Math.Pow(0.9, step)) * m[i] / denom;
            }

            Compare.Close(m, Read(mt), Tolerances.AdamWRelative, Tolerances.AdamWRelative * m.Max(Math.Abs), $"m after step {step}");
            Compare.Close(v, Read(vt), Tolerances.AdamWRelative, Tolerances.AdamWRelative * v.Max(Math.Abs), $"v after step {step}");
            // A parameter near 0 carries the rounding of its updates: the floor scales with the distance travelled.
            travelled += lr;
            Compare.Close(p, Read(param), Tolerances.AdamWRelative, Tolerances.AdamWRelative * travelled, $"param after step {step}");
        }
    }

    /// <summary>
    /// Values worked by hand from the torch.optim.AdamW formulas. With a constant gradient g, m̂ = g and v̂ = g² exactly
    /// at every step, so each step moves the parameter by lr·g/(|g| + ε); weight decay first multiplies by 1 − lr·wd.
    /// </summary>
    [Fact]
    public void AdamWHandComputedSteps()
    {
        var param = Tensor([1f, -2f, 0.25f]);
        var grad = Tensor([0.5f, -4f, 1e-9f]);
        var m = Tensor(new float[3]);
        var v = Tensor(new float[3]);
        for (int step = 1; step <= 3; step++)
        {
            Ops.AdamW(param, grad, m, v, 1e-3f, 0.9f, 0.95f, 1e-8f, 0f, 1f, step);
        }

        // 1 − 3·1e-3·0.5/(0.5 + 1e-8) = 0.99700000006; −2 + 3·1e-3·4/(4 + 1e-8) = −1.99700000000750;
        // g = 1e-9 is below ε: 0.25 − 3·1e-3·1e-9/(1e-9 + 1e-8) = 0.24972727...
        Compare.Close([0.99700000006, -1.9970000000075, 0.25 - (3e-3 / 11)], Read(param), 1e-7, 0, "3 constant-gradient steps");
        Compare.Close([0.5 * (1 - 0.729), -4 * (1 - 0.729), 1e-9 * (1 - 0.729)], Read(m), 1e-6, 0, "m = g·(1 − 0.9³)");
        Compare.Close([0.25 * (1 - 0.857375), 16 * (1 - 0.857375), 1e-18 * (1 - 0.857375)], Read(v), 1e-6, 0, "v = g²·(1 − 0.95³)");

        // One step with weight decay 0.1 and a clip scale 0.5 from fresh state: p·(1 − 1e-4) − 1e-3·sign(g)·|g|/(|g| + ε/…)
        var p2 = Tensor([3f]);
        Ops.AdamW(p2, Tensor([-6f]), Tensor([0f]), Tensor([0f]), 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 1);
        Compare.Close([(3 * (1 - 1e-4)) + (1e-3 * 3 / (3 + 1e-8))], Read(p2), 1e-7, 0, "decay and scale");
    }

    [Fact]
    public void AdamWRejectsBadArguments()
    {
        var a = Tensor(new float[4]);
        var b = Tensor(new float[5]);
        Assert.Throws<ArgumentException>(() => Ops.AdamW(a, b, a, a, 1e-3f, 0.9f, 0.95f, 1e-8f, 0, 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.AdamW(a, a, Tensor(new float[4]), Tensor(new float[4]), 1e-3f, 0.9f, 0.95f, 1e-8f, 0, 1, 0));
    }

    public void Dispose()
    {
        foreach (var t in owned)
        {
            t.Dispose();
        }

        Backend.Dispose();
        GC.SuppressFinalize(this);
    }
}

public sealed class CpuTrainingOpTests() : TrainingOpTests(new CpuBackend());
