using Radlads.Cuda;

namespace Radlads.Tests.Ops;

/// <summary>
/// The split-K decode attention's geometry (CudaOps.DecodeChunk, mirrored by kernels/attention.cu's decode_chunk): a
/// recorded step launches the split bound of the cache's capacity and derives the live splits from the replay's length,
/// so the bound must cover every length up to the capacity, and every live split must hold at least one key (the
/// combine's maximum is then finite). Host arithmetic only: runs everywhere.
/// </summary>
public sealed class CudaDecodeSplitTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(10)]
    [InlineData(66)]
    [InlineData(264)]
    public void TheCapacitysSplitBoundCoversEveryShorterLength(int baseSplits)
    {
        foreach (int capacity in new[] { 1, 31, 64, 300, 4096, 131072 })
        {
            int bound = CudaOps.DecodeSplitBound(capacity, baseSplits);
            Assert.InRange(bound, 1, 8192);
            for (int length = 1; length <= capacity; length++)
            {
                int chunk = CudaOps.DecodeChunk(length, baseSplits, out int splits);
                Assert.True(splits <= bound, $"length {length}: {splits} splits > the bound {bound} of capacity {capacity}");
                Assert.True((long)chunk * splits >= length && (long)chunk * (splits - 1) < length,
                    $"length {length}: {splits} splits of {chunk} keys leave a key out or a split empty");
            }
        }
    }
}
