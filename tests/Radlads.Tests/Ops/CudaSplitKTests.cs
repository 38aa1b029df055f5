using Radlads.Cuda;

namespace Radlads.Tests.Ops;

/// <summary>
/// The split over K of the decode LoRA down projections and in×out GEMVs (CudaOps.SplitK) and its knob
/// RADLADS_LORA_DOWN_BLOCKS_PER_SM (CudaBackend.LoraDownBlocksPerSm), without a GPU: at two blocks a SM the geometry
/// is the integer formula the kernels were first measured with; any other target still covers K exactly, at most one
/// split per 32 rows; unset, the variable gives lora_down's default (one block a SM: 7B's LoRA set in 44 splits of 82
/// rows); it takes a number in (0, 64] and refuses anything else by name.
/// </summary>
public sealed class CudaSplitKTests
{
    [Theory]
    [InlineData(3584, 3, 2.0, 132, 88, 41)] // 7B's LoRA set on an H200, the first geometry measured
    [InlineData(3584, 3, 1.0, 132, 44, 82)] // the same at lora_down's default
    [InlineData(896, 1, 1.0, 132, 28, 32)]
    [InlineData(896, 1, 2.0, 132, 28, 32)] // 0.5B's: capped at one split per 32 rows
    [InlineData(3584, 3, 0.5, 132, 22, 163)]
    [InlineData(3584, 3, 1.0, 114, 38, 95)] // an H100 PCIe's 114 SMs
    [InlineData(256, 1, 2.0, 132, 1, 256)] // K ≤ 256: no split
    [InlineData(1536, 5000, 2.0, 132, 1, 1536)] // more tiles than split counters: no split
    public void TheSplitCoversKAtTheTarget(int k, int tiles, double blocksPerSm, int sms, int splits, int rowsPerSplit)
    {
        var (s, r) = CudaOps.SplitK(k, tiles, blocksPerSm, sms);
        Assert.Equal((splits, rowsPerSplit), (s, r));
        Assert.True((long)s * r >= k && (long)(s - 1) * r < k, $"{s} splits of {r} rows do not cover K = {k} exactly");
        if (blocksPerSm == 2 && k > 256 && tiles <= CudaBackend.SplitCounterCount)
        {
            int measured = (int)Math.Clamp(((2L * sms) + tiles - 1) / tiles, 1, (k + 31) / 32);
            Assert.Equal((k + measured - 1) / measured, r);
        }
    }

    [Theory]
    [InlineData(null, CudaBackend.DefaultLoraDownBlocksPerSm)]
    [InlineData("0.5", 0.5)]
    [InlineData("1", 1.0)]
    [InlineData("64", 64.0)]
    public void TheKnobIsReadFromTheVariable(string? text, double expected) =>
        Assert.Equal(expected, CudaBackend.ParseLoraDownBlocksPerSm(text));

    [Fact]
    public void UnsetTheKnobGivesSevenBsLoraSetFortyFourSplitsOnAnH200() =>
        Assert.Equal((44, 82), CudaOps.SplitK(3584, 3, CudaBackend.ParseLoraDownBlocksPerSm(null), 132));

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("65")]
    [InlineData("NaN")]
    [InlineData("two")]
    public void AnythingElseIsRefusedWithTheVariableNamed(string text)
    {
        var e = Assert.Throws<RadladsException>(() => CudaBackend.ParseLoraDownBlocksPerSm(text));
        Assert.Contains("RADLADS_LORA_DOWN_BLOCKS_PER_SM", e.Message, StringComparison.Ordinal);
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }
}
