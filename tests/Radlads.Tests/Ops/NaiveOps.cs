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
    public static double[] MatMul(float[] x, float[] w, float[]? b, int t, int k, int m, bool outIn)
    {
        var y = new double[t * m];
        for (int i = 0; i < t; i++)
        {
            for (int j = 0; j < m; j++)
            {
                double s = b?[j] ?? 0;
                for (int kk = 0; kk < k; kk++)
                {
                    s += (double)x[(i * k) + kk] * (outIn ? w[(j * k) + kk] : w[(kk * m) + j]);
                }

                y[(i * m) + j] = s;
            }
        }

        return y;
    }

    public static double[] Rope(float[] x, int t, int heads, int n, int start, double theta)
    {
        var y = x.Select(v => (double)v).ToArray();
        int half = n / 2;
        for (int p = 0; p < t; p++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < half; i++)
                {
                    double angle = (start + p) * Math.Pow(theta, -2.0 * i / n);
                    int o = (p * heads * n) + (h * n);
                    double a = x[o + i];
                    double c = x[o + i + half];
                    y[o + i] = (a * Math.Cos(angle)) - (c * Math.Sin(angle));
                    y[o + i + half] = (c * Math.Cos(angle)) + (a * Math.Sin(angle));
                }
            }
        }

        return y;
    }

    public static double[] GroupNorm(float[] x, float[] w, float[] b, int width, int groups, double eps)
    {
        var y = new double[x.Length];
        int d = width / groups;
        for (int r = 0; r < x.Length / width; r++)
        {
            for (int g = 0; g < groups; g++)
            {
                int o = (r * width) + (g * d);
                double mean = 0;
                for (int i = 0; i < d; i++)
                {
                    mean += x[o + i];
                }

                mean /= d;
                double variance = 0;
                for (int i = 0; i < d; i++)
                {
                    variance += (x[o + i] - mean) * (x[o + i] - mean);
                }

                variance /= d;
                for (int i = 0; i < d; i++)
                {
                    y[o + i] = ((x[o + i] - mean) / Math.Sqrt(variance + eps) * w[(g * d) + i]) + b[(g * d) + i];
                }
            }
        }

        return y;
    }

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
    public static double[] Wkv6(float[] r, float[] k, float[] v, float[] w, double[] state, int t, int heads, int n, double scale)
    {
        var y = new double[t * heads * n];
        for (int p = 0; p < t; p++)
        {
            for (int h = 0; h < heads; h++)
            {
                int o = (p * heads * n) + (h * n);
                for (int i = 0; i < n; i++)
                {
                    for (int j = 0; j < n; j++)
                    {
                        int s = (h * n * n) + (i * n) + j;
                        state[s] = (w[o + i] * state[s]) + ((double)k[o + i] * v[o + j]);
                    }
                }

                for (int j = 0; j < n; j++)
                {
                    double acc = 0;
                    for (int i = 0; i < n; i++)
                    {
                        acc += scale * r[o + i] * state[(h * n * n) + (i * n) + j];
                    }

                    y[o + j] = acc;
                }
            }
        }

        return y;
    }

    /// <summary>
    /// Generalised delta rule in its matrix form: S ← S·(diag(w) + aᵀb) + vᵀk, y = S·r.
    /// State [H, N_v, N_k], updated in place.
    /// </summary>
    public static double[] Wkv7(float[] r, float[] w, float[] k, float[] v, float[] a, float[] b, double[] state, int t, int heads, int n)
    {
        var y = new double[t * heads * n];
        var transition = new double[n * n];
        var next = new double[n * n];
        for (int p = 0; p < t; p++)
        {
            for (int h = 0; h < heads; h++)
            {
                int o = (p * heads * n) + (h * n);
                for (int i = 0; i < n; i++)
                {
                    for (int j = 0; j < n; j++)
                    {
                        transition[(i * n) + j] = ((i == j) ? w[o + i] : 0) + ((double)a[o + i] * b[o + j]);
                    }
                }

                for (int i = 0; i < n; i++)
                {
                    for (int j = 0; j < n; j++)
                    {
                        double s = (double)v[o + i] * k[o + j];
                        for (int l = 0; l < n; l++)
                        {
                            s += state[(h * n * n) + (i * n) + l] * transition[(l * n) + j];
                        }

                        next[(i * n) + j] = s;
                    }
                }

                Array.Copy(next, 0, state, h * n * n, n * n);
                for (int i = 0; i < n; i++)
                {
                    double acc = 0;
                    for (int j = 0; j < n; j++)
                    {
                        acc += next[(i * n) + j] * r[o + j];
                    }

                    y[o + i] = acc;
                }
            }
        }

        return y;
    }
}
