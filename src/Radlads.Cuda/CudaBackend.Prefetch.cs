using Radlads.Native;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// IOps.Prefetch: L2 prefetches of weights on a second stream (a parallel branch of a recorded step), forked from the
/// main stream with an event and joined back at the end of a recording (nothing reads what they do). The model asks for
/// them only behind recurrent mixers (IMixer.LeavesBandwidthIdle); by default they run only where the weights asked for
/// are many times the L2 (<see cref="AutoPrefetchL2Multiple"/>): 7B RAD-RWKV7 measured 1.9 % faster a step (4.061 →
/// 3.985 ms, three interleaved rounds), while 0.5B (+4 %), 1.5B (+3 %) and 0.5B/1.5B RAD-RWKV6 (+11 %, +2 %) were slower
/// and 7B RAD-RWKV6 unchanged; Qwen2 7B was 1 % slower, hence not behind attention (H200, 2026-11-28, NOTES eleventh
/// session).
/// </summary>
public sealed unsafe partial class CudaBackend
{
    private CudaStream? prefetchStream;
    private CudaEvent? prefetchFork;
    private CudaEvent? prefetchDone;
    private bool prefetchPending;

    /// <summary>
    /// How much of the L2 a <see cref="Prefetch"/> may fill (fraction of CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE; 0 turns
    /// prefetching off). Null, the default: <see cref="AutoPrefetchL2Fraction"/> when the weights asked for exceed
    /// <see cref="AutoPrefetchL2Multiple"/> × the L2, else off. RADLADS_PREFETCH_L2 sets it (0 = off).
    /// </summary>
    public double? PrefetchL2Fraction { get; set; } = ParsePrefetchFraction(Environment.GetEnvironmentVariable("RADLADS_PREFETCH_L2"));

    /// <summary>The fraction of the L2 the default prefetches fill (the one measured: 0.5 and 1 gained less at 7B).</summary>
    public const double AutoPrefetchL2Fraction = 0.75;

    /// <summary>
    /// The default prefetches only when a call's weights exceed this many L2s: a 7B layer's o_proj and MLP are 7.2 ×
    /// the H200's L2 (faster), 1.5B's 1.4 × (slower), 0.5B's 0.45 × (slower).
    /// </summary>
    public const double AutoPrefetchL2Multiple = 4;

    /// <summary>How many prefetch kernels this backend has queued (tests: the decode path issues them).</summary>
    internal long PrefetchLaunches { get; private set; }

    /// <summary>
    /// RADLADS_PREFETCH_L2's value (<paramref name="text"/>; null when unset: the default rule) as a fraction of the L2; anything
    /// but a number from 0 to 1 is an error that names the variable.
    /// </summary>
    internal static double? ParsePrefetchFraction(string? text) =>
        TuningVariable.Number("RADLADS_PREFETCH_L2", text, 0, minExcluded: false, 1, "a fraction of the L2 cache from 0 (off) to 1");

    /// <summary>The default rule: <see cref="AutoPrefetchL2Fraction"/> for weights over <see cref="AutoPrefetchL2Multiple"/> L2s, else 0 (off).</summary>
    internal static double AutoPrefetchFraction(double weightBytes, long l2Bytes) =>
        l2Bytes > 0 && weightBytes > AutoPrefetchL2Multiple * l2Bytes ? AutoPrefetchL2Fraction : 0;

    /// <summary>Waits on the host for the main stream and the prefetch stream (a prefetch may still read a weight about to be freed).</summary>
    private void SynchronizeStreams()
    {
        stream.Synchronize();
        prefetchStream?.Synchronize();
        sideStream?.Synchronize();
    }

    /// <summary>The prefetch stream joins the main one (a recording must end with every branch joined).</summary>
    private void JoinPrefetches()
    {
        if (prefetchPending)
        {
            Device.Driver.WaitEvent(stream.Handle, prefetchDone!.Handle);
            prefetchPending = false;
        }
    }

    /// <summary>A recording failed part-way: join the prefetch branch so that the capture can be ended and dropped.</summary>
    private void AbandonPrefetches()
    {
        try
        {
            JoinPrefetches();
        }
        catch (CudaException)
        {
            prefetchPending = false;
        }
    }

    /// <summary>
    /// IOps.Prefetch: one warp a SM on the prefetch stream (forked from the main one) issues L2 bulk prefetches of the
    /// groups' weights in order, up to the prefetch fraction of the L2 (<see cref="PrefetchL2Fraction"/>); a group that does not fit gets the
    /// same prefix of each tensor (one GEMV reads them row by row together). Hopper and later (cp.async.bulk).
    /// </summary>
    internal void Prefetch(Tensor[][] groups)
    {
        double fraction = PrefetchL2Fraction ?? AutoPrefetchFraction(groups.Sum(g => g.Sum(t => (double)Cuda(t).ByteLength)), Device.L2CacheBytes);
        long budget = (long)(Device.L2CacheBytes * fraction);
        if (budget <= 0 || Device.ComputeMajor < 9)
        {
            return;
        }

        PrefetchTable table = default;
        foreach (var group in groups)
        {
            if (budget < PrefetchMinimum || table.Count == PrefetchRanges)
            {
                break;
            }

            long total = group.Sum(t => Cuda(t).ByteLength);
            long each = total <= budget ? long.MaxValue : budget / Math.Max(1, group.Length);
            foreach (var t in group)
            {
                var c = Cuda(t);
                long bytes = Math.Min(c.ByteLength, each) / 16 * 16;
                if (bytes < PrefetchMinimum || c.Pointer % 16 != 0 || table.Count == PrefetchRanges)
                {
                    continue;
                }

                table.Pointer[table.Count] = c.Pointer;
                table.Bytes[table.Count] = bytes;
                table.Count++;
                budget -= bytes;
            }
        }

        if (table.Count == 0)
        {
            return;
        }

        EnterWithoutWrites();
        prefetchStream ??= new CudaStream(Device, highPriority: true);
        prefetchFork ??= new CudaEvent(Device, timing: false);
        prefetchDone ??= new CudaEvent(Device, timing: false);
        Device.Driver.RecordEvent(prefetchFork.Handle, stream.Handle);
        Device.Driver.WaitEvent(prefetchStream.Handle, prefetchFork.Handle);
        // One warp a SM: a warp's bulk prefetches drain at ~180 GB/s (one warp took 210 µs for 37 MB, H200, 2026-11-28),
        // so the chunks are spread over every SM to reach DRAM bandwidth.
        long chunks = 0;
        for (int i = 0; i < table.Count; i++)
        {
            chunks += (table.Bytes[i] + PrefetchChunk - 1) / PrefetchChunk;
        }

        uint grid = (uint)Math.Clamp(chunks, 1, Device.MultiprocessorCount);
        void** args = stackalloc void*[] { &table };
        Device.Driver.LaunchHighPriority(Kernels.PrefetchL2, grid, 1, 1, 32, 1, 1, 0, prefetchStream.Handle, args, "prefetch_l2");
        prefetchDone.Record(prefetchStream);
        prefetchPending = true;
        PrefetchLaunches++;
    }

    private const int PrefetchRanges = 8;

    /// <summary>prefetch.cu's PREFETCH_CHUNK: the bytes of one bulk prefetch.</summary>
    private const long PrefetchChunk = 65536;

    /// <summary>Ranges below this are not worth a bulk prefetch (biases, norms).</summary>
    private const long PrefetchMinimum = 64 << 10;

    /// <summary>Layout matches prefetch.cu's PrefetchTable.</summary>
    private struct PrefetchTable
    {
        public fixed ulong Pointer[PrefetchRanges];
        public fixed long Bytes[PrefetchRanges];
        public int Count;
    }

    private void DisposePrefetchStream()
    {
        prefetchStream?.Dispose();
        prefetchFork?.Dispose();
        prefetchDone?.Dispose();
    }
}
