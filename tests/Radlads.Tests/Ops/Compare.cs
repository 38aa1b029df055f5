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
