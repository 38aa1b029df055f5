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
