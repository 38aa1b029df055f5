using Radlads.Native;

namespace Radlads.Cuda;

/// <summary>
/// A second stream for prefill work that may run beside the main stream's: <see cref="Fork"/> makes it wait for what
/// the main stream has queued so far, the ops between <see cref="BeginSide"/> and <see cref="EndSide"/> launch on it
/// (<see cref="Stream"/> answers it, and its cuBLASLt GEMMs get their own workspace), and <see cref="Join"/> makes the
/// main stream wait for it. Blocks freed while forked go back to the cache only at the join: a block freed by one
/// stream's op must not be handed to the other stream's op while the first may still use it. Never while recording a
/// step (CudaOps forks only at prefill). Two users: the prefill LoRA set beside q/k/v (CudaOps.AddRmsNormMatMulShared
/// LoraSet: eight small GEMMs, ranks 64–416, each a fraction of the GPU), and IOps.BeginBeside sections (a prompt's
/// low-rank gate LoRA beside the 7B recurrence, whose scan leaves ~20 SMs idle).
/// </summary>
public sealed partial class CudaBackend
{
    private CudaStream? sideStream;
    private CudaEvent? sideFork;
    private CudaEvent? sideJoin;
    private bool onSide;
    private List<DeviceMemory>? forkFreed;
    private bool besideOpen;

    /// <summary>
    /// Whether prefill runs RAD-RWKV7's LoRA set on the second stream beside q/k/v, and the ops of an IOps.BeginBeside
    /// section (the low-rank gate's LoRA) beside the recurrence (default on; RADLADS_CONCURRENT_LORA=0 runs them in
    /// order on the main stream, for A/B timings: the same bits).
    /// </summary>
    internal bool ConcurrentLora { get; set; } = EnvironmentChoice("RADLADS_CONCURRENT_LORA", 1, [0, 1],
        "1: prefill's LoRA set runs on a second stream beside q/k/v, 0: after them") == 1;

    /// <summary>How many times work has forked onto the second stream (tests check that the path ran).</summary>
    internal long SideForks { get; private set; }

    /// <summary>Whether the second stream may be used now (not recording a step, not already forked).</summary>
    internal bool CanFork => recording is null && forkFreed is null;

    /// <summary>Whether prefill work should fork now: <see cref="ConcurrentLora"/> on and <see cref="CanFork"/>.</summary>
    internal bool ForksPrefill => ConcurrentLora && CanFork;

    /// <summary>The second stream waits for everything queued on the main stream so far; frees are held until <see cref="Join"/>.</summary>
    internal void Fork()
    {
        if (!CanFork)
        {
            throw new InvalidOperationException("Fork: already forked, or recording a step");
        }

        if (sideStream is null)
        {
            sideStream = new CudaStream(Device);
            sideFork = new CudaEvent(Device, timing: false);
            sideJoin = new CudaEvent(Device, timing: false);
            Gemm?.UseSideStream(sideStream.Handle);
        }

        Device.Driver.RecordEvent(sideFork!.Handle, stream.Handle);
        Device.Driver.WaitEvent(sideStream.Handle, sideFork.Handle);
        lock (cacheLock)
        {
            forkFreed = [];
        }

        SideForks++;
    }

    /// <summary>Launches go to the second stream until <see cref="EndSide"/> (between <see cref="Fork"/> and <see cref="Join"/>).</summary>
    internal void BeginSide()
    {
        if (forkFreed is null)
        {
            throw new InvalidOperationException("BeginSide outside Fork/Join");
        }

        onSide = true;
    }

    internal void EndSide() => onSide = false;

    /// <summary>The main stream waits for the second; the blocks freed since <see cref="Fork"/> return to the cache.</summary>
    internal void Join()
    {
        onSide = false;
        List<DeviceMemory> freed;
        lock (cacheLock)
        {
            freed = forkFreed ?? throw new InvalidOperationException("Join without Fork");
            forkFreed = null;
        }

        Device.Driver.RecordEvent(sideJoin!.Handle, sideStream!.Handle);
        Device.Driver.WaitEvent(stream.Handle, sideJoin.Handle);
        // The main stream now runs after everything either stream queued: the blocks are free for its later work.
        foreach (var block in freed)
        {
            Return(block);
        }
    }

    /// <summary>
    /// IOps.BeginBeside: a fork onto the second stream and its side section (when <see cref="ConcurrentLora"/> is on
    /// and the backend may fork; otherwise nothing, and the ops run in order). A beside section left unjoined (an op
    /// threw between) is joined first.
    /// </summary>
    internal void BeginBeside()
    {
        if (besideOpen)
        {
            JoinBeside();
        }

        if (!ForksPrefill)
        {
            return;
        }

        Fork();
        BeginSide();
        besideOpen = true;
    }

    /// <summary>IOps.JoinBeside: the main stream waits for the beside ops (nothing when none are open).</summary>
    internal void JoinBeside()
    {
        if (besideOpen)
        {
            besideOpen = false;
            Join();
        }
    }

    /// <summary>Holds a freed block while forked (under the cache lock); false when not forked.</summary>
    private bool HoldWhileForked(DeviceMemory block)
    {
        if (forkFreed is null)
        {
            return false;
        }

        forkFreed.Add(block);
        return true;
    }

    private void DisposeSideStream()
    {
        sideStream?.Dispose();
        sideFork?.Dispose();
        sideJoin?.Dispose();
    }
}
