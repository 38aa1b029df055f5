using System.Globalization;
using Radlads.Checkpoints;
using Radlads.Native;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>The block cache behind <see cref="Allocate"/> and the recording of decode steps as CUDA graphs.</summary>
public sealed unsafe partial class CudaBackend
{
    /// <summary>
    /// Blocks larger than this are "large": the cache keeps the free ones only while they add up to at most
    /// <see cref="LargeCacheBudget"/> bytes, and frees the rest directly (a stream wait, then cuMemFree).
    /// </summary>
    private const long LargestSmallBlock = 64L << 20;

    private readonly Lock cacheLock = new();
    private readonly Dictionary<long, Stack<DeviceMemory>> cache = [];
    private long cachedBytes;
    private long cachedLargeBytes;

    /// <summary>
    /// How many bytes of free large blocks the cache may hold: a sixteenth of the device's memory. At 7B, T = 2048 a
    /// prefill layer takes two 155 MB MLP activations and the 78 MB bf16 copy of the down projection's input; before
    /// (2026-11-27) each was a cuMemAlloc and, on dispose, a stream wait and a cuMemFree, three times a layer, leaving
    /// the GPU idle while the host freed memory and queued the next layer. The budget keeps one layer's worth (and the
    /// OOM retry in <see cref="Take"/> gives it back when memory runs short); beyond it, blocks (grown KV caches) are
    /// freed as before.
    /// </summary>
    private long LargeCacheBudget => Device.TotalMemory / 16;
    private RecordingSession? recording;

    /// <summary>Bytes held in blocks that are free for reuse (not counting blocks reserved by recorded steps).</summary>
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

    /// <inheritdoc/>
    public DeviceMemoryInfo MemoryInfo()
    {
        var (free, total) = Device.MemoryInfo();
        return new DeviceMemoryInfo(Device.LiveBytes, Math.Max(Device.PeakBytes, Device.LiveBytes), free, total);
    }

    /// <inheritdoc/>
    public void ResetPeakMemory() => Device.ResetPeakBytes();

    /// <summary>Waits for the stream and frees every cached block (recorded steps keep theirs).</summary>
    public void ReleaseCachedMemory()
    {
        Device.MakeCurrent();
        DropBf16Copy();
        SynchronizeStreams();
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
            cachedLargeBytes = 0;
        }
    }

    /// <summary>RADLADS_CUDA_CACHE=0: every activation gets its own cuMemAlloc and a stream wait + cuMemFree (for comparison).</summary>
    private static readonly bool CacheDisabled = Environment.GetEnvironmentVariable("RADLADS_CUDA_CACHE") == "0";

    /// <summary>
    /// An fp32 activation from the cache. <paramref name="zeroed"/>: the caller queues a memset on it next, a write, so
    /// this is an entry (<see cref="Enter"/>). Otherwise nothing is written and the clock of a kept bf16 copy does not
    /// advance (<see cref="EnterWithoutWrites"/>): the model allocates its scratch between a norm and the q/k/v or
    /// gate/up GEMM that takes the norm's copy. A block that holds the kept copy's source was given back since the
    /// copy was made (its tensor freed), so that copy is dropped: no later tensor at that address may take it.
    /// </summary>
    private CudaTensor Cached(int[] shape, long bytes, bool zeroed)
    {
        if (zeroed)
        {
            Enter();
        }
        else
        {
            EnterWithoutWrites();
        }

        var tensor = CacheDisabled && recording is null
            ? New(DType.F32, shape, bytes, entry: false)
            : new CudaTensor(this, Take(SizeClass(bytes), shape), 0, DType.F32, shape, owner: true, cached: true);
        DropBf16CopyOfBlock(tensor.Pointer, SizeClass(bytes));
        return tensor;
    }

    private DeviceMemory Take(long size, int[] shape)
    {
        lock (cacheLock)
        {
            if (recording is { } session && session.Free.TryGetValue(size, out var own) && own.TryPop(out var reused))
            {
                return reused;
            }

            if (cache.TryGetValue(size, out var blocks) && blocks.TryPop(out var block))
            {
                cachedBytes -= size;
                if (size > LargestSmallBlock)
                {
                    cachedLargeBytes -= size;
                }

                return block;
            }
        }

        try
        {
            return new DeviceMemory(Device, size);
        }
        catch (CudaException e) when (e.ErrorName == "CUDA_ERROR_OUT_OF_MEMORY" && recording is null && CachedBytes > 0)
        {
            // Blocks of other sizes may be what is missing: give them back to the driver and try once more.
            ReleaseCachedMemory();
            return AllocateBlock(size, shape);
        }
        catch (CudaException e) when (e.ErrorName == "CUDA_ERROR_OUT_OF_MEMORY")
        {
            throw OutOfMemory(shape, size, e);
        }
    }

    private DeviceMemory AllocateBlock(long size, int[] shape)
    {
        try
        {
            return new DeviceMemory(Device, size);
        }
        catch (CudaException e) when (e.ErrorName == "CUDA_ERROR_OUT_OF_MEMORY")
        {
            throw OutOfMemory(shape, size, e);
        }
    }

    private RadladsException OutOfMemory(int[] shape, long bytes, CudaException e)
    {
        var (free, total) = Device.MemoryInfo();
        return new RadladsException(string.Create(CultureInfo.InvariantCulture,
            $"out of GPU memory: a tensor of shape [{string.Join(", ", shape)}] (F32, {bytes:N0} bytes) does not fit; {free:N0} of {total:N0} bytes free on {Device.Name}"), e);
    }

    /// <summary>A cached tensor's block comes back: free for the next request (a recording keeps what it frees).</summary>
    internal void Return(DeviceMemory block)
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

            if (HoldWhileForked(block))
            {
                return;
            }

            bool large = block.Bytes > LargestSmallBlock;
            if (!large || cachedLargeBytes + block.Bytes <= LargeCacheBudget)
            {
                Push(cache, block);
                cachedBytes += block.Bytes;
                if (large)
                {
                    cachedLargeBytes += block.Bytes;
                }

                return;
            }
        }

        // Over the budget: work queued on the stream may still use the block.
        SynchronizeBeforeFree();
        block.Dispose();
    }

    private static void Push(Dictionary<long, Stack<DeviceMemory>> lists, DeviceMemory block)
    {
        if (!lists.TryGetValue(block.Bytes, out var blocks))
        {
            blocks = new Stack<DeviceMemory>();
            lists[block.Bytes] = blocks;
        }

        blocks.Push(block);
    }

    /// <summary>How many recorded steps have been replayed on this backend (tests check that the recorded path ran).</summary>
    public long Replays { get; private set; }

    /// <summary>How many steps have been recorded on this backend.</summary>
    public long Recordings { get; private set; }

    /// <summary>Recorded steps may hold Qwen2 attention: AppendKv and the decode attention read the position on the device.</summary>
    public bool RecordsAttention => true;

    /// <inheritdoc/>
    public ICapturedStep Capture(ReadOnlySpan<int> ids, int position, Action body, Tensor? sampleLogits = null, int allowedVocabulary = 0)
    {
        ArgumentNullException.ThrowIfNull(body);
        Enter();
        if (recording is not null)
        {
            throw new InvalidOperationException("a step is already being recorded on this backend");
        }

        if (ids.Length == 0 || ids.Length > StepIdCapacity)
        {
            throw new ArgumentException($"a recorded step takes 1 to {StepIdCapacity} token ids, not {ids.Length}");
        }

        if (sampleLogits is not null)
        {
            // The same checks as the op (one row; the parameters come from the step buffer at replay).
            SampleChecks.Check(sampleLogits, allowedVocabulary, [SampleRow.Greedy], stackalloc int[1]);
        }

        // A bf16 copy made before must not be given back inside the recording (its block would join the graph's).
        DropBf16Copy();
        var session = new RecordingSession(ids.ToArray(), position, sampleLogits is not null, allowedVocabulary);
        Device.Driver.BeginCapture(Stream);
        lock (cacheLock)
        {
            recording = session;
        }

        try
        {
            // The first node of the graph: the replay's position, sample row and ids, from pinned memory to the step buffer.
            Device.Driver.CopyHostToDeviceAsync(stepDevice.Pointer, stepHost.Pointer, StepIds + ((long)ids.Length * sizeof(int)), Stream);
            body();
            if (sampleLogits is not null)
            {
                // The last nodes: Sample with the row of the step buffer, its id (or error code) stored by the kernel
                // straight into the pinned buffer. A copy node back took ~8 µs a token more (the kernel-to-copy node
                // switch: H200 trace, 2026-11-29; NOTES, eighteenth session).
                ((CudaOps)Ops).QueueSample(sampleLogits, allowedVocabulary, 1, stepDevice.Pointer + StepSampleRow, stepSampledIdOnDevice);
            }
        }
        catch
        {
            EndRecording();
            AbandonPrefetches();
            Device.Driver.AbandonCapture(Stream);
            GiveBack(session.Free);
            throw;
        }

        JoinPrefetches();
        EndRecording();
        nint graph;
        try
        {
            graph = Device.Driver.EndCapture(Stream);
        }
        catch
        {
            GiveBack(session.Free);
            throw;
        }

        try
        {
            var step = new RecordedStep(this, new CudaGraphExec(Device, graph), session);
            Recordings++;
            return step;
        }
        catch
        {
            GiveBack(session.Free);
            throw;
        }
    }

    private void EndRecording()
    {
        lock (cacheLock)
        {
            recording = null;
        }
    }

    /// <summary>Blocks a recording reserved go back to the cache (its graph is gone, or was never made).</summary>
    private void GiveBack(Dictionary<long, Stack<DeviceMemory>> blocks)
    {
        foreach (var stack in blocks.Values)
        {
            while (stack.TryPop(out var block))
            {
                Return(block);
            }
        }
    }

    /// <summary>
    /// Writes the step buffer (position, ids, and the sample row: a negative temperature tells a recorded Sample to do
    /// nothing) and queues one replay of <paramref name="graph"/>.
    /// </summary>
    private void Replay(CudaGraphExec graph, RecordingSession session, ReadOnlySpan<int> ids, int position, SampleRow? row = null)
    {
        Enter();
        if (ids.Length != session.Ids.Length)
        {
            throw new ArgumentException($"this step was recorded for {session.Ids.Length} token id(s), not {ids.Length}");
        }

        if (position < 0 || position > session.LastPosition)
        {
            throw new InvalidOperationException(
                $"this step was recorded with KV caches covering positions up to {session.LastPosition}, not {position}: record it again (ICapturedStep.CanReplayAt)");
        }

        // The previous replay's first node may still be reading the pinned buffer.
        stepRead.Synchronize();
        var step = (byte*)stepHost.Pointer;
        *(int*)step = position;
        var sample = row ?? new SampleRow(-1f, 0, 1f, 0f, 0.0);
        *(float*)(step + StepSampleRow) = sample.Temperature;
        *(int*)(step + StepSampleRow + 4) = sample.TopK;
        *(float*)(step + StepSampleRow + 8) = sample.TopP;
        *(float*)(step + StepSampleRow + 12) = sample.MinP;
        *(double*)(step + StepSampleRow + 16) = sample.Uniform;
        ids.CopyTo(new Span<int>(step + StepIds, ids.Length));
        graph.Launch(stream);
        stepRead.Record(stream);
        Replays++;
    }

    /// <summary>A replay with the recorded Sample: waits for it and returns the id (or throws on non-finite logits).</summary>
    private int ReplaySample(CudaGraphExec graph, RecordingSession session, ReadOnlySpan<int> ids, int position, SampleRow row)
    {
        if (!session.Samples)
        {
            throw new InvalidOperationException("this step was recorded without a Sample");
        }

        SampleChecks.CheckRow(row);
        Replay(graph, session, ids, position, row);
        stream.Synchronize();
        int code = Volatile.Read(ref *(int*)((byte*)stepHost.Pointer + StepSampledId));
        return CudaOps.DecodeSampled(code, 0, 1, session.AllowedVocabulary);
    }

    private sealed class RecordingSession(int[] ids, int position, bool samples, int allowedVocabulary)
    {
        public int[] Ids { get; } = ids;

        public int Position { get; } = position;

        /// <summary>Whether the recording ends with a Sample (of <see cref="AllowedVocabulary"/> ids).</summary>
        public bool Samples { get; } = samples;

        public int AllowedVocabulary { get; } = allowedVocabulary;

        /// <summary>Blocks freed while recording: reused within the recording, then reserved for its graph.</summary>
        public Dictionary<long, Stack<DeviceMemory>> Free { get; } = [];

        /// <summary>The last position a replay may take: KV cache rows the recorded ops write and read must exist.</summary>
        public int LastPosition { get; set; } = int.MaxValue;
    }

    private sealed class RecordedStep(CudaBackend backend, CudaGraphExec graph, RecordingSession session) : ICapturedStep
    {
        private bool disposed;

        public void Replay(ReadOnlySpan<int> ids, int position)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            backend.Replay(graph, session, ids, position);
        }

        public int ReplaySample(ReadOnlySpan<int> ids, int position, SampleRow row)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return backend.ReplaySample(graph, session, ids, position, row);
        }

        public bool CanReplayAt(int position) => !disposed && position >= 0 && position <= session.LastPosition;

        public void Dispose()
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
            if (!backend.disposed)
            {
                // A replay may still be running: destroying the executable graph waits for it, but the blocks
                // must not be handed out before it ends either; the stream orders both.
                backend.Device.MakeCurrent();
                backend.stream.Synchronize();
            }

            graph.Dispose();
            backend.GiveBack(session.Free);
        }
    }
}
