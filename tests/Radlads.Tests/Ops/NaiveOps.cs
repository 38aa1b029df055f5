namespace Radlads.Tests.Ops;

/// <summary>
/// The maths of every op as plain float64 loops, written from the spec and independent of the backends:
/// the yardstick the op conformance tests hold every backend to. Arrays are row-major.
/// </summary>
public static partial class NaiveOps
{
    public static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    public static double[] RmsNorm(float[] x, float[] w, int c, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / c; r++)
        {
            double ss = 0;
            for (int i = 0; i < c; i++)
            {
                ss += (double)x[(r * c) + i] * x[(r * c) + i];
            }

            double inv = 1 / Math.Sqrt((ss / c) + eps);
            for (int i = 0; i < c; i++)
            {
                y[(r * c) + i] = w[i] * x[(r * c) + i] * inv;
            }
        }

        return y;
    }

    /// <summary>outIn: W [m, k], y = x·Wᵀ + b; otherwise W [k, m], y = x·W + b.</summary>
    public static double[] MatMul(float[] x, float[] w, float[]? b, int t, int k, int m, bool outIn) =>
        MatMul(ToDouble(x), ToDouble(w), b is null ? null : ToDouble(b), t, k, m, outIn);

    public static double[] Rope(float[] x, int t, int heads, int n, int start, double theta) =>
        Rope(ToDouble(x), t, heads, n, start, theta);

    public static double[] GroupNorm(float[] x, float[] w, float[] b, int width, int groups, double eps) =>
        GroupNorm(ToDouble(x), ToDouble(w), ToDouble(b), width, groups, eps);

    /// <summary>Causal GQA attention of T new queries at positions start.. against cache rows 0..start+T−1.</summary>
    public static double[] Attention(float[] q, float[] kCache, float[] vCache, int t, int heads, int kvHeads, int n, int start)
    {
        var y = new double[t * heads * n];
        int g = heads / kvHeads;
        for (int p = 0; p < t; p++)
        {
            for (int h = 0; h < heads; h++)
            {
                int len = start + p + 1;
                var scores = new double[len];
                for (int j = 0; j < len; j++)
                {
                    double s = 0;
                    for (int i = 0; i < n; i++)
                    {
                        s += (double)q[(p * heads * n) + (h * n) + i] * kCache[(j * kvHeads * n) + (h / g * n) + i];
                    }

                    scores[j] = s / Math.Sqrt(n);
                }

                double max = scores.Max();
                double sum = scores.Sum(s => Math.Exp(s - max));
                for (int j = 0; j < len; j++)
                {
                    double pj = Math.Exp(scores[j] - max) / sum;
                    for (int i = 0; i < n; i++)
                    {
                        y[(p * heads * n) + (h * n) + i] += pj * vCache[(j * kvHeads * n) + (h / g * n) + i];
                    }
                }
            }
        }

        return y;
    }

    /// <summary>GLA: S ← diag(w)·S + kᵀv; y = (scale·r)·S. State [H, N_k, N_v], updated in place.</summary>
    public static double[] Wkv6(float[] r, float[] k, float[] v, float[] w, double[] state, int t, int heads, int n, double scale) =>
        Wkv6(ToDouble(r), ToDouble(k), ToDouble(v), ToDouble(w), state, t, heads, n, scale);

    /// <summary>
    /// Generalised delta rule in its matrix form: S ← S·(diag(w) + aᵀb) + vᵀk, y = S·r.
    /// State [H, N_v, N_k], updated in place.
    /// </summary>
    public static double[] Wkv7(float[] r, float[] w, float[] k, float[] v, float[] a, float[] b, double[] state, int t, int heads, int n) =>
        Wkv7(ToDouble(r), ToDouble(w), ToDouble(k), ToDouble(v), ToDouble(a), ToDouble(b), state, t, heads, n);
}
