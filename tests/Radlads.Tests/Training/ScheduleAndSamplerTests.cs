using Radlads.Data;
using Radlads.Tests.Checkpoints;
using Radlads.Tests.Data;
using Radlads.Training;

namespace Radlads.Tests.Training;

/// <summary>The LR schedule (§7.4), the clip coefficient and the magic-prime window sampler (§7.5).</summary>
public sealed class ScheduleAndSamplerTests
{
    private static readonly TrainingOptions Step1 = new() { CtxLen = 512, Batch = 32, TokenBudget = 100_000_000, WarmupSteps = 50 };

    [Fact]
    public void ScheduleWarmsUpThenFallsAlongAQuarterCosine()
    {
        Assert.Equal(1e-3 * 0.01, LearningRateSchedule.At(0, Step1), 1e-18);
        Assert.Equal(1e-3 * (0.01 + (0.99 * 25 / 50)), LearningRateSchedule.At(25, Step1), 1e-18);
        Assert.Equal(1e-3, LearningRateSchedule.At(50, Step1), 1e-18); // warm-up over, progress 0
        long total = Step1.TotalSteps;
        Assert.Equal(6104, total); // ⌈1e8 / 16384⌉
        double warmupTokens = 50.0 * 16384;
        long half = (long)Math.Round(((1e8 - warmupTokens) / 2 + warmupTokens) / 16384);
        double p = ((half * 16384.0) - warmupTokens) / (1e8 - warmupTokens);
        Assert.Equal(1e-5 + (0.99e-3 * Math.Cos(Math.PI / 2 * p)), LearningRateSchedule.At(half, Step1), 1e-15);
        Assert.True(Math.Abs(LearningRateSchedule.At(half, Step1) - (1e-5 + (0.99e-3 * Math.Sqrt(0.5)))) < 1e-6); // cos(π/4), not ½(1 + cos)
        Assert.Equal(1e-5, LearningRateSchedule.At(total, Step1), 1e-12);
        for (long s = 51; s < total; s++)
        {
            Assert.True(LearningRateSchedule.At(s, Step1) <= LearningRateSchedule.At(s - 1, Step1));
        }
    }

    [Fact]
    public void ClipCoefficientIsTorchs()
    {
        Assert.Equal(1f, GradientClip.Coefficient(0.5, 1.0));
        Assert.Equal(1f / (1f + 1e-6f), GradientClip.Coefficient(1.0, 1.0)); // torch scales by 1/(1 + 1e-6) at the limit too
        Assert.Equal(1f / (4f + 1e-6f), GradientClip.Coefficient(4.0, 1.0));
        Assert.Equal(1f, GradientClip.Coefficient(1e9, 0)); // 0: clipping off
    }

    [Fact]
    public void MagicPrimeIsTheLargest3nPlus2PrimeBelowSlotsMinusOne()
    {
        // RWKV-LM's README: minipile, 1498226207 tokens, ctx 512: "the largest 3n+2 prime smaller than
        // datalen/ctxlen − 1 (= 2926222.06)" is 2926181.
        Assert.Equal(2926181, WindowSampler.FindMagicPrime(1498226207, 512));
        Assert.Equal(23, WindowSampler.FindMagicPrime(100, 4)); // 100/4 − 1 = 24: 23 = 3·7 + 2, prime
        Assert.Equal(17, WindowSampler.FindMagicPrime(96, 4)); // 96/4 − 1 = 23 is not below itself: 17 (20, 22 not prime)
        Assert.Equal(2, WindowSampler.FindMagicPrime(13, 4));
        Assert.Null(WindowSampler.FindMagicPrime(12, 4)); // (2 + 1)·4 = 12 is not < 12
        Assert.True(WindowSampler.IsPrime(2926181) && !WindowSampler.IsPrime(2926183 * 3L));
    }

    [Fact]
    public void WindowsFollowTheCubicScrambleAndCoverEveryWindowOnce()
    {
        using var dir = new TempDir();
        var ids = Enumerable.Range(0, 100).Select(i => i % 40).ToArray();
        using var data = TokenFile.Open(TokenFileTests.Write(dir, "d.bin", 50, 49, ids));
        Assert.Equal(101, data.Count); // 100 ids and one separator
        var sampler = new WindowSampler(data, 4, seed: 0);
        Assert.Equal(23, sampler.MagicPrime);
        Assert.Equal(14, sampler.Factor); // ⌊23 · 0.618…⌋
        Assert.Equal(14 * 4, sampler.WindowStart(0)); // ii = 1
        Assert.Equal(14 * 8 % 23 * 4, sampler.WindowStart(1)); // ii = 2: 112 mod 23 = 20
        var starts = Enumerable.Range(0, 23).Select(c => sampler.WindowStart(c)).ToHashSet();
        Assert.Equal(Enumerable.Range(0, 23).Select(w => w * 4L).ToHashSet(), starts); // cubing mod P is a bijection
        Assert.Equal(new WindowSampler(data, 4, seed: 5).WindowStart(0), sampler.WindowStart(5)); // the seed offsets ii

        var tokens = new int[2 * 4];
        sampler.Fill(0, 2, tokens);
        Assert.Equal(ids.Skip(56).Take(4).Concat(ids.Skip(80).Take(4)), tokens);
    }
}
