namespace Radlads.Tests.Ops;

/// <summary>
/// The forward maths again, on float64 inputs, for the gradient checks: central finite differences perturb inputs by
/// ~1e-6, which fp32 cannot hold, so every op a student mixer uses exists here in double in, double out. Written from
/// the spec (§3.2, §4.2) and <see cref="Radlads.Ops.IOps"/>, independent of the backends. Arrays are row-major.
/// </summary>
public static partial class NaiveOps
{
    public static double[] ToDouble(float[] x) => x.Select(v => (double)v).ToArray();

    public static double Dot(double[] a, double[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            s += a[i] * b[i];
        }

        return s;
    }

    public static double[] Map(double[] x, Func<double, double> f) => x.Select(f).ToArray();

    public static double[] Zip(double[] a, double[] b, Func<double, double, double> f)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b, f).ToArray();
    }

    public static double[] Add(params double[][] terms)
    {
        var y = new double[terms[0].Length];
        foreach (var t in terms)
        {
            Assert.Equal(y.Length, t.Length);
            for (int i = 0; i < y.Length; i++)
            {
                y[i] += t[i];
            }
        }

        return y;
    }

    /// <summary>Rows [start, start + count) of a row-major [*, width] array.</summary>
    public static double[] Rows(double[] x, int start, int count, int width) => x.AsSpan(start * width, count * width).ToArray();

    /// <summary>outIn: W [m, k], y = x·Wᵀ + b; otherwise W [k, m], y = x·W + b.</summary>
    public static double[] MatMul(double[] x, double[] w, double[]? b, int t, int k, int m, bool outIn)
    {
        var y = new double[t * m];
        for (int i = 0; i < t; i++)
        {
            for (int j = 0; j < m; j++)
            {
                double s = b?[j] ?? 0;
                for (int kk = 0; kk < k; kk++)
                {
                    s += x[(i * k) + kk] * (outIn ? w[(j * k) + kk] : w[(kk * m) + j]);
                }

                y[(i * m) + j] = s;
            }
        }

        return y;
    }

    public static double[] Tanh(double[] x) => Map(x, Math.Tanh);

    public static double[] Sigmoid(double[] x) => Map(x, Sigmoid);

    /// <summary>y = σ(x + bias), bias [C] broadcast over rows.</summary>
    public static double[] AddSigmoid(double[] x, double[] bias) => x.Select((v, i) => Sigmoid(v + bias[i % bias.Length])).ToArray();

    public static double[] SwiGlu(double[] gate, double[] up) => Zip(gate, up, (g, u) => g * Sigmoid(g) * u);

    public static double[] Rope(double[] x, int t, int heads, int n, int start, double theta)
    {
        var y = (double[])x.Clone();
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

    /// <summary>y head h = x head ⌊h / groups⌋.</summary>
    public static double[] RepeatKv(double[] x, int t, int kvHeads, int n, int groups)
    {
        int width = kvHeads * groups * n;
        var y = new double[t * width];
        for (int p = 0; p < t; p++)
        {
            for (int h = 0; h < kvHeads * groups; h++)
            {
                for (int i = 0; i < n; i++)
                {
                    y[(p * width) + (h * n) + i] = x[(p * kvHeads * n) + (h / groups * n) + i];
                }
            }
        }

        return y;
    }

    public static double[] GroupNorm(double[] x, double[] w, double[] b, int width, int groups, double eps)
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

    /// <summary>delta[t] = x[t−1] − x[t] with x[−1] = state [C]; returns (delta, final state x[T−1]).</summary>
    public static (double[] Delta, double[] FinalState) TokenShift(double[] x, double[] state, int t, int c)
    {
        var delta = new double[t * c];
        for (int p = 0; p < t; p++)
        {
            for (int i = 0; i < c; i++)
            {
                double previous = p == 0 ? state[i] : x[((p - 1) * c) + i];
                delta[(p * c) + i] = previous - x[(p * c) + i];
            }
        }

        return (delta, t == 0 ? (double[])state.Clone() : Rows(x, t - 1, 1, c));
    }

    /// <summary>y = x + delta ⊙ mix, mix [C] broadcast.</summary>
    public static double[] MixShift(double[] x, double[] delta, double[] mix) =>
        x.Select((v, i) => v + (delta[i] * mix[i % mix.Length])).ToArray();

    /// <summary>RAD-RWKV6 ddlerp: outputs rows [i·T, (i+1)·T) = x + delta ⊙ (mixes[i] + lora_i·w2[i]).</summary>
    public static double[] Rwkv6Ddlerp(double[] x, double[] delta, double[] lora, double[] w2, double[] mixes, int t, int c, int rank)
    {
        var y = new double[5 * t * c];
        for (int i = 0; i < 5; i++)
        {
            for (int p = 0; p < t; p++)
            {
                for (int j = 0; j < c; j++)
                {
                    double m = mixes[(i * c) + j];
                    for (int r = 0; r < rank; r++)
                    {
                        m += lora[(p * 5 * rank) + (i * rank) + r] * w2[(((i * rank) + r) * c) + j];
                    }

                    y[(((i * t) + p) * c) + j] = x[(p * c) + j] + (delta[(p * c) + j] * m);
                }
            }
        }

        return y;
    }

    /// <summary>w = exp(max(−exp(bias + d), −5)).</summary>
    public static double[] Rwkv6Decay(double[] d, double[] bias) =>
        d.Select((v, i) => Math.Exp(Math.Max(-Math.Exp(v + bias[i % bias.Length]), -5))).ToArray();

    public static double[] Rwkv6BalanceKeys(double[] k, double[] w) => Zip(k, w, (a, b) => a * (1 - b));

    /// <summary>GLA: S ← diag(w)·S + kᵀv; y = (scale·r)·S. State [H, N_k, N_v], updated in place.</summary>
    public static double[] Wkv6(double[] r, double[] k, double[] v, double[] w, double[] state, int t, int heads, int n, double scale)
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
                        state[s] = (w[o + i] * state[s]) + (k[o + i] * v[o + j]);
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

    /// <summary>w = exp(−e^−0.5·σ(w0 + z)).</summary>
    public static double[] Rwkv7Decay(double[] z, double[] w0) =>
        z.Select((v, i) => Math.Exp(-Math.Exp(-0.5) * Sigmoid(v + w0[i % w0.Length]))).ToArray();

    /// <summary>
    /// RAD-RWKV7 keys per head of N (rows of width A, k_k and k_a [A]): u = k (balanced) or k ⊙ k_k; κ = u / max(‖u‖, 1e-12); removal = −κ,
    /// replacement = κ ⊙ a; k̃ = k ⊙ (1 − w + a) (balanced) or k ⊙ (1 + (a − 1) ⊙ k_a).
    /// </summary>
    public static (double[] Removal, double[] Replacement, double[] KTilde) Rwkv7Keys(double[] k, double[] w, double[] a,
        double[]? keyScale, double[]? iclrMix, int width, int n, bool balanced)
    {
        var removal = new double[k.Length];
        var replacement = new double[k.Length];
        var kTilde = new double[k.Length];
        var u = new double[n];
        for (int o = 0; o < k.Length; o += n)
        {
            int c0 = o % width;
            double norm = 0;
            for (int i = 0; i < n; i++)
            {
                u[i] = k[o + i] * (balanced ? 1 : keyScale![c0 + i]);
                norm += u[i] * u[i];
            }

            double rho = Math.Max(Math.Sqrt(norm), 1e-12);
            for (int i = 0; i < n; i++)
            {
                int j = o + i;
                removal[j] = -u[i] / rho;
                replacement[j] = u[i] / rho * a[j];
                kTilde[j] = balanced ? k[j] * (1 - w[j] + a[j]) : k[j] * (1 + ((a[j] - 1) * iclrMix![c0 + i]));
            }
        }

        return (removal, replacement, kTilde);
    }

    /// <summary>y = v + (vFirst − v) ⊙ nu.</summary>
    public static double[] Rwkv7ValueResidual(double[] v, double[] vFirst, double[] nu) =>
        v.Select((x, i) => x + ((vFirst[i] - x) * nu[i])).ToArray();

    /// <summary>
    /// Generalised delta rule in its matrix form: S ← S·(diag(w) + aᵀb) + vᵀk, y = S·r. State [H, N_v, N_k], updated in
    /// place.
    /// </summary>
    public static double[] Wkv7(double[] r, double[] w, double[] k, double[] v, double[] a, double[] b, double[] state, int t, int heads, int n)
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
                        transition[(i * n) + j] = ((i == j) ? w[o + i] : 0) + (a[o + i] * b[o + j]);
                    }
                }

                for (int i = 0; i < n; i++)
                {
                    for (int j = 0; j < n; j++)
                    {
                        double s = v[o + i] * k[o + j];
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

    /// <summary>The step-1 loss, summed over rows: Σ_t ‖student[t] − teacher[t]‖₂ / √C (the norm, not squared).</summary>
    public static double AlignmentLoss(double[] teacher, double[] student, int c)
    {
        Assert.Equal(teacher.Length, student.Length);
        double loss = 0;
        for (int t = 0; t < teacher.Length / c; t++)
        {
            double ss = 0;
            for (int i = 0; i < c; i++)
            {
                double e = student[(t * c) + i] - teacher[(t * c) + i];
                ss += e * e;
            }

            loss += Math.Sqrt(ss) / Math.Sqrt(c);
        }

        return loss;
    }
}
