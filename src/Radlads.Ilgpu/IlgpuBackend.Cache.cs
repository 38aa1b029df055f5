using System.Globalization;
using ILGPU;
using ILGPU.Runtime;
using Radlads.Checkpoints;

namespace Radlads.Ilgpu;

/// <summary>
/// The block cache behind <see cref="Allocate"/> and <see cref="AllocateUninitialized"/>, as the CUDA backend's: a
/// decode step's scratch tensors come from blocks freed by earlier steps, so a step does no device malloc or free and,
/// above all, no stream wait (freeing an ILGPU buffer must first wait for the stream that may still use it).
/// Reuse needs no wait: every op of a backend is queued on its one stream, so a block's next user runs after its last.
/// </summary>
public sealed partial class IlgpuBackend
{
    /// <summary>Blocks larger than this are allocated and freed directly.</summary>
    private const long LargestCachedBlock = 64L << 20;

    /// <summary>RADLADS_ILGPU_CACHE=0: every tensor gets its own allocation and a stream wait when freed (for comparison).</summary>
    private static readonly bool CacheDisabled = Environment.GetEnvironmentVariable("RADLADS_ILGPU_CACHE") == "0";

    /// <summary>
    /// Whether freed fp32 tensors go back to the pool. Off by default on the CPU simulator: with the pool on there, a full
    /// test run twice got garbage prefill logits (a block handed out again while the simulator still used it is the
    /// suspect; not proven), and the pool is for the GPU's malloc/free cost, which the simulator does not have. The
    /// pool's own tests switch it on.
    /// </summary>
    internal bool UseBlockCache { get; set; }

    private readonly Lock cacheLock = new();
    private readonly Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> cache = [];
    private long cachedBytes;

    /// <summary>Bytes held in blocks that are free for reuse.</summary>
    public long CachedBytes
    {
        get
        {
            lock (cacheLock)
            {
                return cachedBytes;
            }
        }
    }

    /// <summary>The size class of a request: 512-byte steps up to 1 MiB, then eighths of a power of two.</summary>
    internal static long SizeClass(long bytes)
    {
        bytes = Math.Max(bytes, 1);
        if (bytes <= 1 << 20)
        {
            return (bytes + 511) / 512 * 512;
        }

        long step = (1L << (63 - (int)long.LeadingZeroCount(bytes))) / 8;
        return (bytes + step - 1) / step * step;
    }

    /// <summary>Waits for the stream and frees every cached block (recorded steps keep theirs).</summary>
    public void ReleaseCachedMemory()
    {
        using var scope = Enter();
        NotWhileRecording(nameof(ReleaseCachedMemory));
        stream.Synchronize();
        FreeCache();
    }

    private void FreeCache()
    {
        lock (cacheLock)
        {
            foreach (var blocks in cache.Values)
            {
                while (blocks.TryPop(out var block))
                {
                    block.Dispose();
                }
            }

            cache.Clear();
            cachedBytes = 0;
        }
    }

    /// <summary>
    /// An fp32 tensor on a cached block (or its own buffer when large or when the cache is off). While recording every
    /// tensor takes a block: blocks freed by the recorded ops are reused by its later ops, then reserved for its graph
    /// (a free would need a stream wait). Caller holds Enter.
    /// </summary>
    private IlgpuTensor Cached(int[] shape, long bytes)
    {
        if (recording is null && (bytes > LargestCachedBlock || CacheDisabled || Baseline || !UseBlockCache))
        {
            return New(DType.F32, shape, bytes);
        }

        long size = SizeClass(bytes);
        MemoryBuffer1D<byte, Stride1D.Dense>? block = null;
        lock (cacheLock)
        {
            if (recording is { } session && session.Free.TryGetValue(size, out var own) && own.TryPop(out var mine))
            {
                block = mine;
            }
            else if (cache.TryGetValue(size, out var blocks) && blocks.TryPop(out var reused))
            {
                cachedBytes -= size;
                block = reused;
            }
        }

        block ??= AllocateBlock(size, shape);
        return new IlgpuTensor(this, block, block.View.SubView(0, bytes), DType.F32, shape, owner: true, cached: true);
    }

    private MemoryBuffer1D<byte, Stride1D.Dense> AllocateBlock(long size, int[] shape)
    {
        try
        {
            return Device.Accelerator.Allocate1D<byte>(size);
        }
        catch (Exception e) when (e is not RadladsException && CachedBytes > 0 && recording is null)
        {
            // Blocks of other sizes may be what is missing: give them back and try once more.
            stream.Synchronize();
            FreeCache();
            try
            {
                return Device.Accelerator.Allocate1D<byte>(size);
            }
            catch (Exception again) when (again is not RadladsException)
            {
                throw OutOfMemory(DType.F32, shape, size, again);
            }
        }
        catch (Exception e) when (e is not RadladsException)
        {
            throw OutOfMemory(DType.F32, shape, size, e);
        }
    }

    private RadladsException OutOfMemory(DType dtype, int[] shape, long bytes, Exception e) =>
        new(string.Create(CultureInfo.InvariantCulture,
            $"out of accelerator memory: a tensor of shape [{string.Join(", ", shape)}] ({dtype}, {bytes:N0} bytes) could not be allocated on {Device.Accelerator.Name}: {e.Message}"), e);

    /// <summary>
    /// A cached tensor's block comes back, free for the next request (no wait: see the class comment); a recording
    /// keeps what it frees.
    /// </summary>
    internal void Return(MemoryBuffer1D<byte, Stride1D.Dense> block)
    {
        lock (cacheLock)
        {
            if (disposed)
            {
                block.Dispose();
                return;
            }

            if (recording is { } session)
            {
                Push(session.Free, block);
                return;
            }

            Push(cache, block);
            cachedBytes += block.Length;
        }
    }

    private static void Push(Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> lists, MemoryBuffer1D<byte, Stride1D.Dense> block)
    {
        if (!lists.TryGetValue(block.Length, out var blocks))
        {
            blocks = new Stack<MemoryBuffer1D<byte, Stride1D.Dense>>();
            lists[block.Length] = blocks;
        }

        blocks.Push(block);
    }
}
