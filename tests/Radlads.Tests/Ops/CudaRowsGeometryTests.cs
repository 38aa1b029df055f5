using Radlads.Cuda;

namespace Radlads.Tests.Ops;

/// <summary>
/// The launch shape of the staged wkv6 recurrence kernel (CudaOps.RowsGeometry for wkv6_rows_f32; the tests keep the
/// 5-vector rows of the former wkv7_rows_f32 as a second geometry of the same rule): the
/// chunk sizes the GPU tests cross, two buffers within the 48 KiB a launch may use without opting in, and 8 rows of one
/// head a block. Host arithmetic only: runs everywhere.
/// </summary>
public sealed class CudaRowsGeometryTests
{
    [Theory]
    // wkv7 (5 vectors a token): the chunks CudaRecurrenceTests and the conformance shapes step around.
    [InlineData(5, 128, 9)]
    [InlineData(5, 64, 18)]
    [InlineData(5, 40, 29)]
    [InlineData(5, 20, 32)]
    [InlineData(5, 256, 4)]
    // wkv6 (3 vectors a token).
    [InlineData(3, 128, 15)]
    [InlineData(3, 64, 30)]
    [InlineData(3, 20, 32)]
    public void ChunksFitTwoBuffersIn48KiB(int vectors, int n, int chunk)
    {
        const int Heads = 28;
        var (blocks, actualChunk, shared) = CudaOps.RowsGeometry(Heads, n, vectors);
        Assert.Equal(chunk, actualChunk);
        Assert.Equal((uint)(Heads * ((n + 7) / 8)), blocks);
        Assert.Equal((uint)(2 * ((vectors * n) + 8) * chunk * sizeof(float)), shared);
        Assert.InRange(shared, 1u, 48u * 1024);
    }
}
