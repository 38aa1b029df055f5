using Radlads.Generation;
using Radlads.Ilgpu.Kernels;

namespace Radlads.Tests.Generation;

/// <summary>The portable arithmetic of sampled draws (<see cref="SamplingMath"/>), which every backend repeats.</summary>
public sealed class SamplingMathTests
{
    [Fact]
    public void ExpIsAccurateAndTheIlgpuCopyIsTheSameFunction()
    {
        var random = new Random(5);
        double worst = 0;
        for (int i = 0; i < 200_000; i++)
        {
            double x = i < 1000 ? -i * 0.7 : -random.NextDouble() * (i % 2 == 0 ? 40 : 700);
            double ours = SamplingMath.Exp(x);
            Assert.Equal(BitConverter.DoubleToInt64Bits(ours), BitConverter.DoubleToInt64Bits(SamplingKernels.Exp<HostFusedMultiplyAdd>(x)));
            double exact = Math.Exp(x);
            if (exact > 1e-300)
            {
                worst = Math.Max(worst, Math.Abs(ours - exact) / exact);
            }
        }

        Assert.True(worst < 4e-16, $"worst relative error {worst:E3}");
        Assert.Equal(1.0, SamplingMath.Exp(0.0));
        Assert.Equal(1.0, SamplingMath.Exp(1e-300)); // a positive argument is clamped to 0
        Assert.Equal(0.0, SamplingMath.Exp(double.NegativeInfinity));
        Assert.Equal(0.0, SamplingMath.Exp(double.NaN));
        Assert.Equal(0.0, SamplingMath.Exp(-700.5));
    }

    [Theory]
    [InlineData(1, 61)]
    [InlineData(6, 59)]
    [InlineData(8192, 48)]
    [InlineData(151936, 44)]
    [InlineData(1 << 24, 37)]
    public void UnitsOfAWholeRowStayBelowTwoToTheSixtyTwo(int vocabulary, int shift)
    {
        Assert.Equal(shift, SamplingMath.UnitShift(vocabulary));
        Assert.True((double)vocabulary * Math.Pow(2, shift) < Math.Pow(2, 62));
        Assert.Equal(1UL << shift, SamplingMath.Units(1.0, shift));
        Assert.Equal(0UL, SamplingMath.Units(Math.Pow(2, -shift - 1), shift));
    }

    [Fact]
    public void KeysOrderByLogitDescendingThenIdAscending()
    {
        Assert.True(SamplingMath.Key(2f, 5) < SamplingMath.Key(1f, 0));
        Assert.True(SamplingMath.Key(1f, 0) < SamplingMath.Key(1f, 1));
        Assert.True(SamplingMath.Key(-1f, 0) < SamplingMath.Key(-2f, 0));
        Assert.True(SamplingMath.Key(float.MaxValue, 9) < SamplingMath.Key(-float.MaxValue, 0));
        Assert.Equal(SamplingMath.Key(0f, 3), SamplingMath.Key(-0f, 3));
    }

    [Fact]
    public void TargetsStayInsideTheTotal()
    {
        ulong total = (1UL << 62) - 1;
        Assert.Equal(total, SamplingMath.NucleusTarget(1f, total)); // (double)total rounds up to 2^62: clamped
        Assert.Equal(1UL, SamplingMath.NucleusTarget(1e-30f, 1000));
        Assert.Equal(10UL, SamplingMath.DrawTarget(0.9999999999999999, 10)); // the last unit
        Assert.Equal(total - 510, SamplingMath.DrawTarget(0.9999999999999999, total)); // r = u · 2^62 = 2^62 − 512, target r + 1
        Assert.Equal(1UL, SamplingMath.DrawTarget(0.0, total));
        Assert.Equal(3UL, SamplingMath.DrawTarget(0.5, 4));
    }
}
