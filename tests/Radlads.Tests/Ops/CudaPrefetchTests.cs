using Radlads.Checkpoints;
using Radlads.Cuda;
using Radlads.Ops;
using Radlads.Tests.Models;

namespace Radlads.Tests.Ops;

/// <summary>
/// IOps.Prefetch on CUDA (CudaBackend.Prefetch.cs): by default none for weights under 4 L2s (the rule is tested without a
/// GPU), none when off (fraction 0) or for weights under 64 KB; one launch otherwise, on its own stream; no result
/// changes. Whole models, eager and recorded: CudaModelTests.PrefetchChangesNoBitEagerOrRecorded.
/// </summary>
public sealed class CudaPrefetchTests
{
    private static float[] Read(CudaBackend backend, Tensor t)
    {
        var host = new float[t.ElementCount];
        backend.Download(t, host);
        return host;
    }

    [Fact]
    public void PrefetchLaunchesWithinItsBudgetAndChangesNoResult()
    {
        using var backend = CudaAvailability.Backend();
        Assert.SkipWhen(backend.Device.ComputeMajor < 9, "L2 bulk prefetch needs sm_90 or later");
        Assert.Null(backend.PrefetchL2Fraction);
        var ops = backend.Ops;
        var data = new TestData(92);
        const int m = 4096, c = 1024;
        using var w = new NativeWeight(data.Uniform(m * c, -0.05f, 0.05f), DType.BF16, m, c);
        using var small = new NativeWeight(data.Uniform(64 * 64), DType.BF16, 64, 64);
        using var weight = backend.LoadWeight(w.Data);
        using var tiny = backend.LoadWeight(small.Data);
        using var x = backend.FromFloats(data.Uniform(c), 1, c);
        using var y = backend.Allocate(1, m);
        ops.MatMul(x, weight, null, y);
        var plain = Read(backend, y);

        ops.Prefetch([weight]);
        Assert.Equal(0, backend.PrefetchLaunches);
        backend.PrefetchL2Fraction = 0;
        ops.Prefetch([weight]);
        Assert.Equal(0, backend.PrefetchLaunches);
        backend.PrefetchL2Fraction = 0.75;
        ops.Prefetch([tiny]);
        Assert.Equal(0, backend.PrefetchLaunches);
        ops.Prefetch([weight], [tiny, weight]);
        Assert.Equal(1, backend.PrefetchLaunches);
        ops.MatMul(x, weight, null, y);
        Assert.Equal(plain, Read(backend, y));
        backend.Synchronize();
    }

    /// <summary>RADLADS_PREFETCH_L2: unset is the default rule (null), a fraction from 0 to 1 is taken, anything else is refused naming the variable (no GPU needed).</summary>
    [Theory]
    [InlineData(null, null)]
    [InlineData("0", 0.0)]
    [InlineData("0.75", 0.75)]
    [InlineData("1", 1.0)]
    public void TheFractionIsReadFromTheVariable(string? text, double? expected) => Assert.Equal(expected, CudaBackend.ParsePrefetchFraction(text));

    /// <summary>
    /// The default rule at the shapes it was measured at (no GPU needed): a layer's o_proj and MLP at 7B (433 MB) on an
    /// H200 (60 MB of L2) or an H100 (50 MB) prefetch 0.75 of the L2; 1.5B (87 MB) and 0.5B (27 MB) do not; no L2, none.
    /// </summary>
    [Theory]
    [InlineData(433e6, 60L << 20, 0.75)]
    [InlineData(433e6, 50L << 20, 0.75)]
    [InlineData(87e6, 60L << 20, 0.0)]
    [InlineData(27e6, 60L << 20, 0.0)]
    [InlineData(433e6, 0L, 0.0)]
    public void TheDefaultPrefetchesOnlyWeightsOfManyL2s(double bytes, long l2, double expected) =>
        Assert.Equal(expected, CudaBackend.AutoPrefetchFraction(bytes, l2));

    [Theory]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    [InlineData("half")]
    [InlineData("NaN")]
    public void AFractionOutsideZeroToOneIsRefusedWithTheVariableNamed(string text)
    {
        var e = Assert.Throws<RadladsException>(() => CudaBackend.ParsePrefetchFraction(text));
        Assert.Contains("RADLADS_PREFETCH_L2", e.Message, StringComparison.Ordinal);
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }
}
