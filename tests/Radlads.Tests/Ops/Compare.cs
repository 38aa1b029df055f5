using System.Globalization;

namespace Radlads.Tests.Ops;

/// <summary>Element-wise comparison with the first mismatches in the failure message; NaN/Inf never pass.</summary>
public static class Compare
{
    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double relative, double absolute, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var failures = new List<string>();
        int count = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i];
            double a = actual[i];
            bool ok = double.IsFinite(a) && double.IsFinite(e) && Math.Abs(a - e) <= absolute + (relative * Math.Abs(e));
            if (!ok)
            {
                count++;
                if (failures.Count < 5)
                {
                    failures.Add(string.Create(CultureInfo.InvariantCulture, $"[{i}] expected {e:G9} got {a:G9}"));
                }
            }
        }

        Assert.True(count == 0, $"{what}: {count}/{expected.Length} elements differ: {string.Join("; ", failures)}");
    }

    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relative, double absolute, string what)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++)
        {
            e[i] = expected[i];
        }

        Close(e, actual, relative, absolute, what);
    }

    /// <summary>
    /// An analytic fp32 gradient against a float64 finite-difference one: per element
    /// |actual − expected| ≤ relative·|expected| + relativeToMax·max|expected|. The second term is the floor for
    /// elements that cancel to near zero; it scales with the tensor, so a gradient of 1e6 and one of 1e-3 are held to
    /// the same relative standard. With <paramref name="prior"/> the buffer accumulated (dW += …): actual must equal
    /// prior + expected, with the prior's own fp32 rounding allowed on top. Unless <paramref name="mayBeZero"/>, an
    /// all-zero expected gradient fails: it means the test exercises nothing.
    /// </summary>
    public static void Gradient(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double relative, double relativeToMax,
        string what, ReadOnlySpan<float> prior = default, bool mayBeZero = false)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        foreach (var e in expected)
        {
            max = Math.Max(max, Math.Abs(e));
        }

        Assert.True(mayBeZero || max > 0, $"{what}: the expected gradient is zero everywhere");
        var failures = new List<string>();
        int count = 0;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double p = prior.IsEmpty ? 0 : prior[i];
            double e = expected[i];
            double a = actual[i] - p;
            double bound = (relative * Math.Abs(e)) + (relativeToMax * max) + (2.4e-7 * Math.Abs(p + e));
            bool ok = double.IsFinite(a) && double.IsFinite(e) && Math.Abs(a - e) <= bound;
            worst = Math.Max(worst, Math.Abs(a - e) / Math.Max(bound, double.Epsilon));
            if (!ok)
            {
                count++;
                if (failures.Count < 5)
                {
                    failures.Add(string.Create(CultureInfo.InvariantCulture, $"[{i}] expected {e:G9} got {a:G9}"));
                }
            }
        }

        Assert.True(count == 0, string.Create(CultureInfo.InvariantCulture,
            $"{what}: {count}/{expected.Length} elements differ (max |expected| {max:G3}, worst error/bound {worst:G3}): {string.Join("; ", failures)}"));
    }

    /// <summary>max |a − b| relative to max |b|: the scale-aware error used for whole-model logits.</summary>
    public static double MaxErrorRelativeToMax(ReadOnlySpan<double> reference, ReadOnlySpan<float> actual)
    {
        Assert.Equal(reference.Length, actual.Length);
        double maxError = 0;
        double maxReference = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            Assert.True(float.IsFinite(actual[i]), $"non-finite value {actual[i]} at {i}");
            maxError = Math.Max(maxError, Math.Abs(actual[i] - reference[i]));
            maxReference = Math.Max(maxReference, Math.Abs(reference[i]));
        }

        return maxError / maxReference;
    }
}
