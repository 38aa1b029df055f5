using ILGPU;
using ILGPU.Runtime;
using Radlads.Native;
using Radlads.Ops;
using IlgpuCudaStream = ILGPU.Runtime.Cuda.CudaStream;

namespace Radlads.Ilgpu;

/// <summary>
/// Recording a decode step as a CUDA graph on ILGPU's CUDA accelerator (<see cref="IStepCapture"/>), as the CUDA
/// backend does: the ops stay ILGPU kernels, launched by ILGPU on this backend's stream while our driver binding
/// (<see cref="CudaDriver"/>, the same libcuda, ILGPU's context current) captures that stream. A replay is one graph
/// launch instead of ~750 ILGPU launches. What changes per token comes from a small device step buffer that the graph's
/// first node fills from page-locked host memory: the token ids (Embedding), the position (RoPE) and the sample row.
/// Every kernel is loaded when the accelerator opens (<see cref="Kernels.KernelSet"/>), so nothing is compiled or
/// loaded while recording.
/// </summary>
public sealed unsafe partial class IlgpuBackend : IStepCapture
{
    /// <summary>Token ids a recorded step may take.</summary>
    private const int StepIdCapacity = 1023;

    // The step buffer (pinned on the host, mirrored on the device; a replay's first node copies it over): the sample
    // row as SamplingKernels' five doubles at 0 (a negative temperature: no sample), the sampled id (written by the
    // recorded Sample, copied back) at 40, the position at 44, the token ids from 48 on.
    private const int StepSampleRow = 0;
    private const int StepSampledId = 40;
    private const int StepPosition = 44;
    private const int StepIds = 48;
    private const int StepBytes = StepIds + (StepIdCapacity * sizeof(int));

    /// <summary>How often a recording is retried after growing a RoPE table it found too short.</summary>
    private const int RecordAttempts = 8;

    private readonly CudaDriver? driver;
    private bool captureEnabled;
    private StepBuffers? stepBuffers;
    private RecordingSession? recording;
    private int liveRecordings;

    // RoPE tables replaced while recorded steps may still read them: freed when none is left.
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> retiredTables = [];

    /// <summary>
    /// Null when decode steps can be recorded here (ILGPU's CUDA accelerator, our driver binding loaded), else why not.
    /// </summary>
    public string? CaptureUnsupported { get; }

    /// <summary>
    /// Whether decode steps are recorded as CUDA graphs and replayed: on by default on ILGPU's CUDA accelerator
    /// (RADLADS_ILGPU_GRAPHS=0 turns it off), always off on the CPU simulator and OpenCL. Setting it on where recording
    /// is not supported throws <see cref="InvalidOperationException"/> saying why.
    /// </summary>
    public bool CaptureEnabled
    {
        get => captureEnabled;
        set
        {
            if (value && CaptureUnsupported is not null)
            {
                throw new InvalidOperationException($"decode steps cannot be recorded on this backend: {CaptureUnsupported}");
            }

            captureEnabled = value;
        }
    }

    /// <summary>Recorded steps may hold Qwen2 attention: AppendKv and the fused Attention kernel read the position on the device.</summary>
    public bool RecordsAttention => !ThreadPerOutputKernels && !Baseline;

    /// <summary>How many recorded steps have been replayed on this backend (tests check that the recorded path ran).</summary>
    public long Replays { get; private set; }

    /// <summary>How many steps have been recorded on this backend.</summary>
    public long Recordings { get; private set; }

    /// <summary>Whether a step is being recorded now (ops then take their recording variants).</summary>
    internal bool Recording => recording is not null;

    private nint StreamHandle => ((IlgpuCudaStream)stream).StreamPtr;

    /// <summary>Why recording is unavailable for <paramref name="kind"/> (null: available), and the driver binding to record with.</summary>
    private static (string? Reason, CudaDriver? Driver) CaptureSupport(IlgpuDeviceKind kind, bool baseline)
    {
        if (kind != IlgpuDeviceKind.Cuda)
        {
            return ($"recording decode steps needs ILGPU's CUDA accelerator, not its {kind.Name()} one", null);
        }

        if (baseline)
        {
            return ("RADLADS_ILGPU_BASELINE=1 keeps the first version's eager launches", null);
        }

        try
        {
            return (null, CudaDriver.Instance);
        }
        catch (Exception e) when (e is CudaUnavailableException or CudaException)
        {
            return ("the CUDA driver binding could not start: " + e.Message, null);
        }
    }

    /// <summary>One line on recording for <see cref="Description"/>.</summary>
    private string CaptureText() => CaptureUnsupported is null
        ? (captureEnabled ? "decode steps recorded as CUDA graphs (RADLADS_ILGPU_GRAPHS=0 turns this off)" : "decode graphs off (RADLADS_ILGPU_GRAPHS=0)")
        : "decode graphs unavailable: " + CaptureUnsupported;

    /// <summary>Throws the error of a call that would need the host (a wait, a host copy, a free) while recording.</summary>
    internal void NotWhileRecording(string what)
    {
        if (recording is not null)
        {
            throw new InvalidOperationException(
                $"{what} cannot run while a step is being recorded: it needs the host (a stream wait, a synchronous copy or a free), which a CUDA graph cannot hold");
        }
    }

    /// <summary>The ids of an Embedding inside a recording: the step buffer's, which must be the ids the recording was started with.</summary>
    internal ArrayView<int> RecordedIds(ReadOnlySpan<int> values)
    {
        var session = recording!;
        if (!values.SequenceEqual(session.Ids))
        {
            throw new InvalidOperationException("while recording a step, Embedding must be given the ids the recording was started with");
        }

        return stepBuffers!.Device.View.BaseView.SubView(StepIds, (long)values.Length * sizeof(int)).Cast<int>();
    }

    /// <summary>
    /// RoPE inside a recording: the whole (θ, N) table, the step buffer's position, and <paramref name="start"/> made
    /// relative to the recording's position. A table too short for this call ends the recording attempt (the table is
    /// grown outside it and the step recorded again); the recording remembers the last position its tables cover.
    /// </summary>
    internal (ArrayView<float> Cos, ArrayView<float> Sin, ArrayView<int> Position, int Offset) RecordedRope(float theta, int headDim, int start, int tokens)
    {
        var session = recording!;
        long needed = (long)start + tokens;
        if (!ropeTables.TryGetValue((theta, headDim), out var entry) || entry.Positions < needed)
        {
            throw new RopeTableTooShort(theta, headDim, needed);
        }

        int half = headDim / 2;
        int offset = start - session.Position;
        // A replay at position q reads rows q + offset .. q + offset + tokens − 1.
        session.LastPosition = (int)Math.Min(session.LastPosition, entry.Positions - tokens - offset);
        var view = entry.Buffer!.View.BaseView;
        var position = stepBuffers!.Device.View.BaseView.SubView(StepPosition, sizeof(int)).Cast<int>();
        return (view.SubView(0, entry.Positions * half), view.SubView(entry.Positions * half, entry.Positions * half), position, offset);
    }

    /// <summary>
    /// Where an op on rows <paramref name="start"/> .. start + tokens − 1 of a cache of <paramref name="rows"/> rows reads
    /// its position: eager, a device zero and the start; recording, the step buffer's position and the start relative to
    /// the recording's (a replay at q touches rows q + offset ..), and the recording then covers positions only while
    /// those rows exist (<see cref="ICapturedStep.CanReplayAt"/>). Caller holds Enter.
    /// </summary>
    internal (ArrayView<int> Position, int Offset) PositionOf(int start, int tokens, long rows)
    {
        if (recording is not { } session)
        {
            return (Device.Zero.View, start);
        }

        int offset = start - session.Position;
        session.LastPosition = (int)Math.Min(session.LastPosition, rows - tokens - offset);
        return (stepBuffers!.Device.View.BaseView.SubView(StepPosition, sizeof(int)).Cast<int>(), offset);
    }

    /// <summary>A RoPE table is replaced: freed now unless a recorded step may still read it.</summary>
    private void RetireTable(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        if (liveRecordings > 0)
        {
            retiredTables.Add(buffer);
            return;
        }

        stream.Synchronize();
        buffer.Dispose();
    }

    /// <inheritdoc/>
    public ICapturedStep Capture(ReadOnlySpan<int> ids, int position, Action body, Tensor? sampleLogits = null, int allowedVocabulary = 0)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (!CaptureEnabled)
        {
            throw new InvalidOperationException(CaptureUnsupported is null
                ? "recording is switched off on this backend (CaptureEnabled is false)"
                : $"decode steps cannot be recorded on this backend: {CaptureUnsupported}");
        }

        if (ids.Length == 0 || ids.Length > StepIdCapacity)
        {
            throw new ArgumentException($"a recorded step takes 1 to {StepIdCapacity} token ids, not {ids.Length}");
        }

        if (sampleLogits is not null)
        {
            // The same checks as the op (one row; the parameters come from the step buffer at replay).
            SampleChecks.Check(sampleLogits, allowedVocabulary, [SampleRow.Greedy], stackalloc int[1]);
            Float32(Ilgpu(sampleLogits), nameof(Capture));
        }

        // The device lock is held for the whole recording: another backend of this accelerator cannot queue work or
        // wait in between (a synchronous call elsewhere in the context could invalidate the capture).
        using var scope = Enter();
        if (recording is not null)
        {
            throw new InvalidOperationException("a step is already being recorded on this backend");
        }

        stepBuffers ??= new StepBuffers(this);
        var recordedIds = ids.ToArray();
        for (int attempt = 1; ; attempt++)
        {
            var session = new RecordingSession(recordedIds, position, sampleLogits is not null, allowedVocabulary);
            try
            {
                return Record(session, body, sampleLogits, allowedVocabulary);
            }
            catch (RopeTableTooShort missing) when (attempt < RecordAttempts)
            {
                // Outside the recording now: grow the table (a host computation and upload) and record again.
                RopeTable(missing.Theta, missing.HeadDim, 0, checked((int)missing.Positions));
            }
        }
    }

    private RecordedStep Record(RecordingSession session, Action body, Tensor? sampleLogits, int allowedVocabulary)
    {
        var step = stepBuffers!;
        var d = driver!;
        nint handle = StreamHandle;
        d.BeginCapture(handle);
        lock (cacheLock)
        {
            recording = session;
        }

        try
        {
            // The first node of the graph: the replay's sample row, position and ids, from pinned memory to the step buffer.
            d.CopyHostToDeviceAsync(step.DevicePointer, step.Host, StepIds + ((long)session.Ids.Length * sizeof(int)), handle);
            body();
            if (sampleLogits is not null)
            {
                // The last nodes: Sample with the row of the step buffer, and its id (or error code) back to pinned memory.
                var view = step.Device.View.BaseView;
                ((IlgpuOps)Ops).QueueSample(sampleLogits, allowedVocabulary, 1,
                    view.SubView(StepSampleRow, Kernels.SamplingKernels.ParameterCount * sizeof(double)).Cast<double>(),
                    view.SubView(StepSampledId, sizeof(int)).Cast<int>());
                d.CopyDeviceToHostAsync((byte*)step.Host + StepSampledId, step.DevicePointer + StepSampledId, sizeof(int), handle);
            }
        }
        catch
        {
            EndRecording();
            d.AbandonCapture(handle);
            GiveBack(session.Free);
            throw;
        }

        EndRecording();
        nint graph;
        try
        {
            graph = d.EndCapture(handle);
        }
        catch
        {
            GiveBack(session.Free);
            throw;
        }

        nint exec;
        try
        {
            exec = d.InstantiateGraph(graph);
        }
        catch
        {
            GiveBack(session.Free);
            throw;
        }
        finally
        {
            d.DestroyGraph(graph);
        }

        liveRecordings++;
        Recordings++;
        return new RecordedStep(this, exec, session);
    }

    private void EndRecording()
    {
        lock (cacheLock)
        {
            recording = null;
        }
    }

    /// <summary>Blocks a recording reserved go back to the cache (its graph is gone, or was never made).</summary>
    private void GiveBack(Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> blocks)
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
    /// Writes the step buffer (sample row, position, ids; a negative temperature tells a recorded Sample to do nothing)
    /// and queues one launch of the recorded graph.
    /// </summary>
    private void Replay(nint exec, RecordingSession session, ReadOnlySpan<int> ids, int position, SampleRow? row = null)
    {
        if (ids.Length != session.Ids.Length)
        {
            throw new ArgumentException($"this step was recorded for {session.Ids.Length} token id(s), not {ids.Length}");
        }

        if (position < 0 || position > session.LastPosition)
        {
            throw new InvalidOperationException(
                $"this step was recorded with RoPE tables or KV caches covering positions up to {session.LastPosition}, not {position}: record it again (ICapturedStep.CanReplayAt)");
        }

        NotWhileRecording("Replaying a recorded step");
        var step = stepBuffers!;
        // The previous replay's first node may still be reading the pinned buffer.
        driver!.SynchronizeEvent(step.Read);
        var host = (byte*)step.Host;
        var sample = row ?? new SampleRow(-1f, 0, 1f, 0f, 0.0);
        var parameters = (double*)(host + StepSampleRow);
        parameters[0] = sample.Temperature;
        parameters[1] = sample.TopK;
        parameters[2] = sample.TopP;
        parameters[3] = sample.MinP;
        parameters[4] = sample.Uniform;
        *(int*)(host + StepPosition) = position;
        ids.CopyTo(new Span<int>(host + StepIds, ids.Length));
        driver.LaunchGraph(exec, StreamHandle);
        driver.RecordEvent(step.Read, StreamHandle);
        Replays++;
    }

    /// <summary>A replay with the recorded Sample: waits for it and returns the id (or throws on non-finite logits).</summary>
    private int ReplaySample(nint exec, RecordingSession session, ReadOnlySpan<int> ids, int position, SampleRow row)
    {
        if (!session.Samples)
        {
            throw new InvalidOperationException("this step was recorded without a Sample");
        }

        SampleChecks.CheckRow(row);
        Replay(exec, session, ids, position, row);
        stream.Synchronize();
        int code = *(int*)((byte*)stepBuffers!.Host + StepSampledId);
        return IlgpuOps.DecodeSampled(code, 0, 1, session.AllowedVocabulary);
    }

    /// <summary>Frees the step buffer and any retired RoPE tables (the backend is being disposed; caller holds the device).</summary>
    private void DisposeCapture()
    {
        stepBuffers?.Dispose();
        stepBuffers = null;
        foreach (var table in retiredTables)
        {
            table.Dispose();
        }

        retiredTables.Clear();
    }

    /// <summary>A recorded step is gone: when it was the last, the RoPE tables kept for recordings are freed.</summary>
    private void RecordingDisposed()
    {
        liveRecordings--;
        if (liveRecordings == 0 && retiredTables.Count > 0)
        {
            stream.Synchronize();
            foreach (var table in retiredTables)
            {
                table.Dispose();
            }

            retiredTables.Clear();
        }
    }

    /// <summary>Thrown inside a recording when a RoPE table must grow first (caught by <see cref="Capture"/>).</summary>
    private sealed class RopeTableTooShort(float theta, int headDim, long positions)
        : InvalidOperationException($"the RoPE table (theta {theta}, head dim {headDim}) must cover {positions} positions before recording")
    {
        public float Theta { get; } = theta;

        public int HeadDim { get; } = headDim;

        public long Positions { get; } = positions;
    }

    /// <summary>The step buffer: device memory, its page-locked host mirror, and the event of the last replay's copy.</summary>
    private sealed class StepBuffers : IDisposable
    {
        private readonly CudaDriver driver;

        public StepBuffers(IlgpuBackend backend)
        {
            driver = backend.driver!;
            Device = backend.Device.Accelerator.Allocate1D<byte>(StepBytes);
            try
            {
                Host = driver.AllocateHost(StepBytes);
                new Span<byte>(Host, StepBytes).Clear();
                Read = driver.CreateEvent();
                driver.RecordEvent(Read, backend.StreamHandle);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public MemoryBuffer1D<byte, Stride1D.Dense> Device { get; }

        public ulong DevicePointer => (ulong)Device.NativePtr;

        public void* Host { get; }

        public nint Read { get; }

        public void Dispose()
        {
            if (Read != 0)
            {
                driver.DestroyEvent(Read);
            }

            if (Host != null)
            {
                driver.FreeHost(Host);
            }

            Device.Dispose();
        }
    }

    private sealed class RecordingSession(int[] ids, int position, bool samples, int allowedVocabulary)
    {
        public int[] Ids { get; } = ids;

        public int Position { get; } = position;

        /// <summary>Whether the recording ends with a Sample (of <see cref="AllowedVocabulary"/> ids).</summary>
        public bool Samples { get; } = samples;

        public int AllowedVocabulary { get; } = allowedVocabulary;

        /// <summary>The last position a replay may take: the RoPE tables it read cover no further.</summary>
        public int LastPosition { get; set; } = int.MaxValue;

        /// <summary>Blocks freed while recording: reused within the recording, then reserved for its graph.</summary>
        public Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> Free { get; } = [];
    }

    private sealed class RecordedStep(IlgpuBackend backend, nint exec, RecordingSession session) : ICapturedStep
    {
        private bool disposed;

        public void Replay(ReadOnlySpan<int> ids, int position)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            using var scope = backend.Enter();
            backend.Replay(exec, session, ids, position);
        }

        public int ReplaySample(ReadOnlySpan<int> ids, int position, SampleRow row)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            using var scope = backend.Enter();
            return backend.ReplaySample(exec, session, ids, position, row);
        }

        public bool CanReplayAt(int position) => !disposed && position >= 0 && position <= session.LastPosition;

        public void Dispose()
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
            using var scope = backend.Device.Sync.EnterScope();
            backend.Device.MakeCurrent();
            if (!backend.disposed)
            {
                // A replay may still run: its blocks must not be handed out before it ends; the stream orders both.
                backend.stream.Synchronize();
            }

            backend.driver!.DestroyGraphExec(exec);
            backend.GiveBack(session.Free);
            if (!backend.disposed)
            {
                backend.RecordingDisposed();
            }
        }
    }
}
