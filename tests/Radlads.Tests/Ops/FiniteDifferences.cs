namespace Radlads.Tests.Ops;

/// <summary>Central finite differences in float64, the yardstick for every hand-derived backward.</summary>
public static class FiniteDifferences
{
    /// <summary>
    /// The default step: 1e-6, or 1e-6·|x| for |x| &gt; 1. In double the truncation error (~h²·f‴/6 ≈ 1e-12) and
    /// the rounding error (~1e-16·|L| / h ≈ 1e-10·|L|) are both far below the fp32 errors being tested.
    /// </summary>
    public static double Step(double x) => 1e-6 * Math.Max(1, Math.Abs(x));

    /// <summary>
    /// ∂loss/∂x[i] for every i by (loss(x + h·eᵢ) − loss(x − h·eᵢ)) / 2h. <paramref name="loss"/> reads
    /// <paramref name="x"/> in place (it is perturbed one element at a time and restored).
    /// </summary>
    public static double[] Gradient(double[] x, Func<double> loss, Func<double, double>? step = null)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double xi = x[i];
            double h = (step ?? Step)(xi);
            double up = xi + h;
            double down = xi - h;
            x[i] = up;
            double plus = loss();
            x[i] = down;
            double minus = loss();
            x[i] = xi;
            g[i] = (plus - minus) / (up - down);
        }

        return g;
    }
}
