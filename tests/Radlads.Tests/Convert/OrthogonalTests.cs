using Radlads.Conversion;
using Radlads.Generation;

namespace Radlads.Tests.Convert;

/// <summary>torch.nn.init.orthogonal_ as the RADLADS trainer's ortho_init uses it, in float64 then float32.</summary>
public sealed class OrthogonalTests
{
    private static double Gram(float[] w, int rows, int cols, bool ofRows, int i, int j)
    {
        double dot = 0;
        int length = ofRows ? cols : rows;
        for (int k = 0; k < length; k++)
        {
            dot += ofRows ? (double)w[(i * cols) + k] * w[(j * cols) + k] : (double)w[(k * cols) + i] * w[(k * cols) + j];
        }

        return dot;
    }

    [Theory]
    [InlineData(32, 384)] // a LoRA B matrix [R, C]: orthonormal rows
    [InlineData(7, 9)]
    [InlineData(64, 64)] // square: both
    [InlineData(96, 64)] // taller than wide: orthonormal columns, and the trainer's gain √(rows/cols)
    [InlineData(300, 5)]
    [InlineData(1, 1)]
    public void TheSmallerSideIsOrthonormalTimesScaleAndGain(int rows, int cols)
    {
        var w = Orthogonal.Create(rows, cols, 0.1, new Xoshiro256StarStar(11));
        Assert.Equal(rows * cols, w.Length);
        bool ofRows = rows <= cols;
        int count = Math.Min(rows, cols);
        double diagonal = 0.01 * (rows > cols ? (double)rows / cols : 1);
        for (int i = 0; i < count; i++)
        {
            for (int j = 0; j < count; j++)
            {
                Assert.Equal(i == j ? diagonal : 0, Gram(w, rows, cols, ofRows, i, j), Tolerances.OrthogonalGramF32);
            }
        }
    }

    [Fact]
    public void TheSameSeedGivesTheSameBitsAndAnotherSeedDoesNot()
    {
        Assert.Equal(Orthogonal.Create(32, 100, 0.1, new Xoshiro256StarStar(5)), Orthogonal.Create(32, 100, 0.1, new Xoshiro256StarStar(5)));
        Assert.NotEqual(Orthogonal.Create(32, 100, 0.1, new Xoshiro256StarStar(5)), Orthogonal.Create(32, 100, 0.1, new Xoshiro256StarStar(6)));
    }

    [Fact]
    public void LargeMatricesTakeTheParallelPathAndStayOrthonormalAndDeterministic()
    {
        // The projections run in parallel from 2^18 multiply-adds per pass: vectors 128.. of length 2048 here.
        var a = Orthogonal.Create(160, 2048, 0.1, new Xoshiro256StarStar(9));
        var b = Orthogonal.Create(160, 2048, 0.1, new Xoshiro256StarStar(9));
        Assert.Equal(a, b);
        foreach (var (i, j) in new[] { (0, 0), (159, 159), (0, 159), (140, 141), (150, 3), (130, 129) })
        {
            Assert.Equal(i == j ? 0.01 : 0, Gram(a, 160, 2048, true, i, j), Tolerances.OrthogonalGramF32);
        }
    }

    [Fact]
    public void TheGaussianSourceHasUnitVariance()
    {
        var g = new GaussianSource(new Xoshiro256StarStar(2));
        var x = Enumerable.Range(0, 100_000).Select(_ => g.Next()).ToArray();
        double mean = x.Average();
        double variance = x.Average(v => (v - mean) * (v - mean));
        Assert.InRange(mean, -0.02, 0.02);
        Assert.InRange(variance, 0.98, 1.02);
        Assert.All(x, v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void TheFixedOrderDotProductMatchesTheDefinition()
    {
        var g = new GaussianSource(new Xoshiro256StarStar(4));
        foreach (int n in new[] { 0, 1, 3, 4, 5, 17, 64 })
        {
            var a = Enumerable.Range(0, n).Select(_ => g.Next()).ToArray();
            var b = Enumerable.Range(0, n).Select(_ => g.Next()).ToArray();
            double expected = a.Zip(b, (p, q) => p * q).Sum();
            Assert.Equal(expected, Orthogonal.Dot(a, b), 1e-12);
        }
    }
}
