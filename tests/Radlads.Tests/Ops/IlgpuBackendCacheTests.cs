using Radlads.Ilgpu;

namespace Radlads.Tests.Ops;

/// <summary>The ILGPU backend's block cache: freed scratch comes back to the next request of its size class.</summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuBackendCacheTests
{
    [Fact]
    public void AFreedTensorsBlockIsReusedWithoutANewAllocation()
    {
        using var backend = new IlgpuBackend(IlgpuDeviceKind.Cpu) { UseBlockCache = true };
        long address;
        using (var first = (IlgpuTensor)backend.AllocateUninitialized(3, 100))
        {
            address = first.Address;
        }

        Assert.Equal(IlgpuBackend.SizeClass(1200), backend.CachedBytes);
        // 1300 bytes fall in the same 512-byte class (1536) as 1200: the same block comes back.
        using var second = (IlgpuTensor)backend.AllocateUninitialized(325);
        Assert.Equal(address, second.Address);
        Assert.Equal(0, backend.CachedBytes);
    }

    [Fact]
    public void AllocateStillZeroFillsAReusedBlock()
    {
        using var backend = new IlgpuBackend(IlgpuDeviceKind.Cpu) { UseBlockCache = true };
        using (var dirty = backend.FromFloats([1f, 2f, 3f, 4f], 4))
        {
        }

        using var zeroed = backend.Allocate(4);
        var values = new float[4];
        backend.Download(zeroed, values);
        Assert.Equal([0f, 0f, 0f, 0f], values);
    }

    [Fact]
    public void ReleaseCachedMemoryEmptiesTheCache()
    {
        using var backend = new IlgpuBackend(IlgpuDeviceKind.Cpu) { UseBlockCache = true };
        backend.AllocateUninitialized(1000).Dispose();
        Assert.True(backend.CachedBytes > 0);
        backend.ReleaseCachedMemory();
        Assert.Equal(0, backend.CachedBytes);
    }

    [Fact]
    public void TheBaselineModeAllocatesEveryTensorAfresh()
    {
        using var backend = new IlgpuBackend(IlgpuDeviceKind.Cpu, threadPerOutputKernels: false, baseline: true);
        backend.AllocateUninitialized(1000).Dispose();
        Assert.Equal(0, backend.CachedBytes);
    }
}
