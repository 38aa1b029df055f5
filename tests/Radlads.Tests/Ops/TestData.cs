namespace Radlads.Tests.Ops;

/// <summary>Seeded random inputs: every test run sees the same values, every test a different seed.</summary>
public sealed class TestData(int seed)
{
    private readonly Random random = new(seed);

    public float[] Uniform(int count, float low = -1f, float high = 1f)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = low + ((high - low) * random.NextSingle());
        }

        return values;
    }

    public float[] Normal(int count, float std = 1f)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - random.NextDouble();
            double u2 = random.NextDouble();
            values[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return values;
    }

    /// <summary>
    /// Wkv7's a (removal) and b (replacement) as the model feeds them, for <paramref name="count"/> = rows · heads · n
    /// values: a = −κ and b = κ ⊙ iclr, κ a unit vector per (row, head) of head dim <paramref name="n"/> (drawn normal,
    /// then iclr uniform in [0, 1)).
    /// </summary>
    public (float[] Removal, float[] Replacement) Wkv7Keys(int count, int n)
    {
        var kappa = Normal(count);
        var iclr = Uniform(count, 0, 1);
        var removal = new float[count];
        var replacement = new float[count];
        for (int p = 0; p < count / n; p++)
        {
            double norm = Math.Sqrt(Enumerable.Range(0, n).Sum(i => (double)kappa[(p * n) + i] * kappa[(p * n) + i]));
            for (int i = 0; i < n; i++)
            {
                removal[(p * n) + i] = (float)(-kappa[(p * n) + i] / norm);
                replacement[(p * n) + i] = (float)(kappa[(p * n) + i] / norm * iclr[(p * n) + i]);
            }
        }

        return (removal, replacement);
    }

    public int[] Ints(int count, int high)
    {
        var values = new int[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = random.Next(high);
        }

        return values;
    }
}
