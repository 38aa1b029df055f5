using Radlads.Cuda;
using Radlads.Ilgpu;

namespace Radlads.Tests.Ops;

/// <summary>
/// The CUDA and ILGPU backends' measurement knobs read from environment variables (no GPU needed): unset means the
/// default (null), a value in range is taken, anything else is refused with the variable and the value named (no
/// clamping, no silently ignored text: a measurement must run what it was asked to).
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

    [Theory]
    [InlineData(null, null)]
    [InlineData("0", 0.0)]
    [InlineData("0.5", 5e8)]
    [InlineData("8", 8e9)]
    [InlineData("1000000", 1e15)]
    public void TheTuningThresholdIsReadInGflop(string? text, double? expected) => Assert.Equal(expected, CudaGemm.ParseTuneMinFlops(text));

    [Theory]
    [InlineData("-1")]
    [InlineData("1000001")]
    [InlineData("NaN")]
    [InlineData("eight")]
    [InlineData("")]
    public void ATuningThresholdOutsideItsRangeIsRefusedWithTheVariableNamed(string text)
    {
        var e = Assert.Throws<RadladsException>(() => CudaGemm.ParseTuneMinFlops(text));
        Assert.Contains("RADLADS_CUBLASLT_TUNE_MIN_GFLOP", e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{text}'", e.Message, StringComparison.Ordinal);
    }

    /// <summary>The whole-number knobs: each variable's name and range (<see cref="Parse"/> maps the name to its parser).</summary>
    public static TheoryData<string, int, int> WholeNumberKnobs => new()
    {
        { "RADLADS_GEMV_BLOCKS_PER_SM", 1, 64 },
        { "RADLADS_CUBLASLT_MIN_ROWS", 2, int.MaxValue },
        { "RADLADS_ILGPU_GEMV_GROUPS_PER_SM", 1, 64 },
        { "RADLADS_STREAM_STAGES", CudaOps.StreamMinStages, CudaOps.StreamMaxStages },
        { "RADLADS_WKV7_CHUNKED_MIN_TOKENS", 2, int.MaxValue },
    };

    private static int? Parse(string name, string? text) => name switch
    {
        "RADLADS_GEMV_BLOCKS_PER_SM" => CudaBackend.ParseGemvBlocksPerSm(text),
        "RADLADS_CUBLASLT_MIN_ROWS" => CudaBackend.ParseGemmMinRows(text),
        "RADLADS_ILGPU_GEMV_GROUPS_PER_SM" => IlgpuBackend.ParseGemvGroupsPerMultiprocessor(text),
        "RADLADS_STREAM_STAGES" => CudaBackend.ParseStreamStages(text),
        "RADLADS_WKV7_CHUNKED_MIN_TOKENS" => CudaBackend.ParseWkv7ChunkedMinTokens(text),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(WholeNumberKnobs))]
    public void AWholeNumberKnobTakesItsRangeEndsAndIsNullWhenUnset(string name, int min, int max)
    {
        Assert.Null(Parse(name, null));
        Assert.Equal(min, Parse(name, min.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(max, Parse(name, max.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Theory]
    [MemberData(nameof(WholeNumberKnobs))]
    public void AWholeNumberKnobRefusesOutOfRangeAndTextNamingTheVariableAndTheRange(string name, int min, int max)
    {
        var bad = new List<string> { (min - 1L).ToString(System.Globalization.CultureInfo.InvariantCulture), "two", "", "1.5", " " };
        if (max < int.MaxValue)
        {
            bad.Add((max + 1L).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        else
        {
            bad.Add("2147483648");
        }

        foreach (var text in bad)
        {
            var e = Assert.Throws<RadladsException>(() => Parse(name, text));
            Assert.Contains(name, e.Message, StringComparison.Ordinal);
            Assert.Contains($"'{text}'", e.Message, StringComparison.Ordinal);
            Assert.Contains(min.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, StringComparison.Ordinal);
        }
    }
}
