using Radlads.Cuda;

namespace Radlads.Tests.Ops;

/// <summary>
/// The CUDA backend's measurement knobs read from environment variables (no GPU needed): unset means the default (null),
/// a value in range is taken, anything else is refused with the variable and the value named.
/// </summary>
public sealed class CudaTuningVariableTests
{
    [Theory]
    [InlineData(null, null)]
    [InlineData("4", 4)]
    [InlineData("6", 6)]
    [InlineData("16", 16)]
    public void StreamStagesAreReadFromTheVariable(string? text, int? expected) => Assert.Equal(expected, CudaBackend.ParseStreamStages(text));

    [Theory]
    [InlineData("3")]
    [InlineData("17")]
    [InlineData("six")]
    [InlineData("")]
    public void StreamStagesOutOfRangeAreRefusedWithTheVariableNamed(string text)
    {
        var e = Assert.Throws<RadladsException>(() => CudaBackend.ParseStreamStages(text));
        Assert.Contains("RADLADS_STREAM_STAGES", e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{text}'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("", null)]
    [InlineData("0", 0)]
    [InlineData("100", 100)]
    public void TheCarveoutIsReadFromTheVariable(string? text, int? expected) => Assert.Equal(expected, KernelLibrary.ParseCarveout(text));

    [Theory]
    [InlineData("101")]
    [InlineData("-1")]
    [InlineData("max")]
    public void ACarveoutOutsideZeroToHundredIsRefusedWithTheVariableNamed(string text)
    {
        var e = Assert.Throws<RadladsException>(() => KernelLibrary.ParseCarveout(text));
        Assert.Contains("RADLADS_CARVEOUT", e.Message, StringComparison.Ordinal);
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }
}
