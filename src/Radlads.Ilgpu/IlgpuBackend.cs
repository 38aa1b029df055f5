using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using Radlads.Checkpoints;
using Radlads.Ops;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Ilgpu;

/// <summary>
/// The ILGPU backend: every op as a C# kernel that ILGPU compiles for the chosen accelerator (CUDA, OpenCL or its
/// CPU simulator), queued on one stream per backend. Activations and state are fp32; weights keep their checkpoint
/// dtype (bf16, f16, f32) and are converted inside the kernels. The accelerator and its compiled kernels are shared
/// by every backend of the same kind in the process; creating the first one compiles them (see
/// <see cref="KernelCompileTime"/>). Creating it where no accelerator of that kind exists throws
/// <see cref="RadladsException"/> saying what is missing.
/// </summary>
public sealed unsafe partial class IlgpuBackend : IBackend
{
    // The attention scores of one launch are at most this many floats (64 MiB); longer prefills go in row slices.
    internal const long MaxScoreFloats = 1L << 24;

    private readonly AcceleratorStream stream;
    private MemoryBuffer1D<int, Stride1D.Dense>? ids;
    private MemoryBuffer1D<float, Stride1D.Dense>? scores;
    private MemoryBuffer1D<double, Stride1D.Dense>? sampleParameters;
    private MemoryBuffer1D<int, Stride1D.Dense>? sampleIds;
    private readonly Dictionary<(float Theta, int HeadDim), (MemoryBuffer1D<float, Stride1D.Dense>? Buffer, long Positions)> ropeTables = [];
    private readonly MemoryBuffer1D<int, Stride1D.Dense> splitCounters;
    private bool disposed;

    /// <summary>Opens the accelerator of <paramref name="kind"/> (compiling the kernels once per process).</summary>
    public IlgpuBackend(IlgpuDeviceKind kind = IlgpuDeviceKind.Auto)
        : this(kind, threadPerOutputKernels: null, baseline: Environment.GetEnvironmentVariable("RADLADS_ILGPU_BASELINE") == "1")
    {
    }

    /// <summary>
    /// As the public constructor, choosing the MatMul (out×in) and Wkv7 kernel variants: thread per output (no warp
    /// shuffles; the CPU simulator's default, where every shuffle costs several thread barriers) or warp per row (the
    /// GPU default). Tests use it to run the GPU variants on the simulator too.
    /// </summary>
    internal IlgpuBackend(IlgpuDeviceKind kind, bool? threadPerOutputKernels, bool baseline = false)
    {
        Baseline = baseline;
        Unfused = baseline || Environment.GetEnvironmentVariable("RADLADS_ILGPU_FUSED") == "0";
        Device = IlgpuDevice.Get(kind);
        ThreadPerOutputKernels = threadPerOutputKernels ?? Device.Kind == IlgpuDeviceKind.Cpu;
        UseBlockCache = Device.Kind != IlgpuDeviceKind.Cpu;
        lock (Device.Sync)
        {
            Device.MakeCurrent();
            stream = Device.Accelerator.CreateStream();
            splitCounters = Device.Accelerator.Allocate1D<int>(SplitCounterCount + 1);
            splitCounters.MemSetToZero();
        }

        Ops = new IlgpuOps(this);
        (CaptureUnsupported, driver) = CaptureSupport(Device.Kind, baseline);
        captureEnabled = CaptureUnsupported is null && Environment.GetEnvironmentVariable("RADLADS_ILGPU_GRAPHS") != "0";
        Description = Device.Describe() + (baseline ? "; RADLADS_ILGPU_BASELINE=1: the first version's kernels and allocation" : "")
            + (Unfused && !baseline ? "; RADLADS_ILGPU_FUSED=0: fused ops run as their op sequences" : "")
            + (Device.Kind == IlgpuDeviceKind.Cuda ? "; " + CaptureText() : "");
    }

    public string Name => "ilgpu";

    public string Description { get; }

    public IOps Ops { get; }

    /// <summary>The accelerator actually used (never <see cref="IlgpuDeviceKind.Auto"/>).</summary>
    public IlgpuDeviceKind Kind => Device.Kind;

    /// <summary>How long loading (compiling) every kernel took when this process first opened the accelerator.</summary>
    public TimeSpan KernelCompileTime => Device.Kernels.CompileTime;

    internal IlgpuDevice Device { get; }

    /// <summary>Whether MatMul (out×in) and Wkv7 use their thread-per-output kernels instead of warp-per-row ones.</summary>
    internal bool ThreadPerOutputKernels { get; }

    /// <summary>
    /// The kernels and allocation of the first ILGPU version (2026-11-27), for before/after comparisons in one process
    /// (RADLADS_ILGPU_BASELINE=1): no block cache (every tensor allocated, zero-filled, and freed after a stream wait),
    /// per-element weight loads in every MatMul, attention in three launches. The RoPE table is the new cached one.
    /// </summary>
    internal bool Baseline { get; }

    /// <summary>
    /// Whether the fused ops (AddRmsNorm, LoraSet, RopeExpand, ExpandKv, ScaleMultiply, Rwkv7KeysValueResidual,
    /// GateUpSwiGlu, Wkv7DecodeScaleGate, Rwkv7RopeKeysValueResidualRows) run as the op sequences they replace (RADLADS_ILGPU_FUSED=0, and the baseline), for a before/after
    /// comparison in one process.
    /// </summary>
    internal bool Unfused { get; }

    internal AcceleratorStream Stream => stream;

    /// <summary>Column tiles a split-K kernel with a last-group reduction may have (one counter each).</summary>
    internal const int SplitCounterCount = 64;

    /// <summary>
    /// Zeroed counters of this backend's split-K kernels (<see cref="Kernels.LoraKernels.LoraDown"/>): the last group of a
    /// tile finds itself by counting and sets the counter back to zero, so they are zero between launches. One set per
    /// backend (per stream), allocated with it, so recording a step allocates nothing.
    /// </summary>
    internal ArrayView<int> SplitCounters => splitCounters.View.SubView(0, SplitCounterCount);

    /// <summary>
    /// The counter of <see cref="Kernels.FusedKernels.NormGateUpSwiGlu{TW}"/> (after the split-K ones): zero between launches,
    /// one for the backend, since its launches run one after another on the stream.
    /// </summary>
    internal ArrayView<int> NormCounter => splitCounters.View.SubView(SplitCounterCount, 1);

    /// <summary>How many fused norm + gate/up kernels this backend has launched (tests: the decode path takes them).</summary>
    internal long NormGemvLaunches { get; set; }

    /// <summary>
    /// The groups a multiprocessor should get from a decode GEMV (default 2; RADLADS_ILGPU_GEMV_GROUPS_PER_SM, 1–64,
    /// for measuring). 2 rather than the earlier 8, as CUDA's CudaBackend.GemvBlocksPerSm: small matrices then run one
    /// warp a row in fuller groups. H200, 2026-11-28, one call, device sampling: 0.5B RAD-RWKV7 1.920 → 1.756 ms,
    /// Qwen2 2.116 → 1.966; 1.5B 2.967 → 2.900 and 3.586 → 3.482 (NOTES, sixteenth session).
    /// </summary>
    public int GemvGroupsPerMultiprocessor { get; set; } = ParseGemvGroupsPerMultiprocessor(Environment.GetEnvironmentVariable("RADLADS_ILGPU_GEMV_GROUPS_PER_SM")) ?? 2;

    /// <summary>RADLADS_ILGPU_GEMV_GROUPS_PER_SM's value (null when unset): 1 to 64, anything else an error naming the variable.</summary>
    internal static int? ParseGemvGroupsPerMultiprocessor(string? text) =>
        TuningVariable.WholeNumber("RADLADS_ILGPU_GEMV_GROUPS_PER_SM", text, 1, 64, "groups a multiprocessor");

    /// <summary>
    /// Whether decode (T = 1) runs the residual norm inside the q and gate/up GEMVs (FusedKernels.NormGemvOutIn,
    /// NormGateUpSwiGlu): same bits either way. Off by default (RADLADS_NORM_GEMV=1 turns it on, as on CUDA): every group
    /// recomputes the norm before its rows, and that cost more than the launches it saves (H200, 2026-11-27, graphs,
    /// host sampling: 7B RAD-RWKV7 6.7 → 8.2 ms, 7B Qwen2 7.0 → 8.6 ms; NOTES, seventh session).
    /// </summary>
    public bool FuseNormGemv { get; set; } = Environment.GetEnvironmentVariable("RADLADS_NORM_GEMV") == "1";

    /// <summary>Groups LoraSet's first launch aims for (null: two per multiprocessor); tests raise it to split K widely.</summary>
    internal int? LoraDownGroups { get; set; }

    /// <summary>Branches LoraSet has run on its two kernels so far (tests check which path a call took).</summary>
    internal long LoraKernelBranches { get; set; }

    /// <summary>Positions a new RoPE table covers at least (tests make it small to cross a table's end quickly).</summary>
    internal int RopeTableMinimum { get; set; } = 4096;

    /// <summary>
    /// Starts an entry point: checks the backend is alive, takes the device's lock (backends of one accelerator may be
    /// used from several threads) and binds the accelerator to this thread.
    /// </summary>
    internal Lock.Scope Enter()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var scope = Device.Sync.EnterScope();
        Device.MakeCurrent();
        return scope;
    }

    internal void SynchronizeBeforeFree()
    {
        if (!disposed)
        {
            using var scope = Device.Sync.EnterScope();
            NotWhileRecording("Freeing a tensor's own device memory");
            Device.MakeCurrent();
            stream.Synchronize();
        }
    }

    /// <summary>Waits until everything queued on this backend's stream has run.</summary>
    public void Synchronize()
    {
        using var scope = Enter();
        NotWhileRecording(nameof(Synchronize));
        stream.Synchronize();
    }

    /// <summary>
    /// Host cost of one launch, in µs: <paramref name="launches"/> launches of an empty kernel (one group), queued and
    /// then waited for once, after one warm-up launch. With a GPU much faster than the host this is ILGPU's own
    /// overhead per kernel (argument marshalling and cuLaunchKernel), the floor of any op on this backend.
    /// </summary>
    public double MeasureLaunchMicroseconds(int launches)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(launches, 1);
        using var scope = Enter();
        NotWhileRecording(nameof(MeasureLaunchMicroseconds));
        var empty = Device.Kernels.Empty;
        empty(stream, 1, 0);
        stream.Synchronize();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < launches; i++)
        {
            empty(stream, 1, 0);
        }

        stream.Synchronize();
        return watch.Elapsed.TotalMicroseconds / launches;
    }

    internal static IlgpuTensor Ilgpu(Tensor t) =>
        t as IlgpuTensor ?? throw new ArgumentException($"a {t.GetType().Name} {t.ShapeText} was passed to the ILGPU backend");

    public Tensor Allocate(params int[] shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d);
            count *= d;
        }

        using var scope = Enter();
        var tensor = Cached((int[])shape.Clone(), count * sizeof(float));
        if (count > 0)
        {
            tensor.Bytes.MemSetToZero(stream);
        }

        return tensor;
    }

    public Tensor AllocateUninitialized(params int[] shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d);
            count *= d;
        }

        if (Baseline)
        {
            return Allocate(shape);
        }

        using var scope = Enter();
        return Cached((int[])shape.Clone(), count * sizeof(float));
    }

    public Tensor LoadWeight(TensorData data)
    {
        using var scope = Enter();
        NotWhileRecording(nameof(LoadWeight));
        var tensor = New(data.DType, (int[])data.Shape.Clone(), data.ByteLength);
        if (data.ByteLength > 0)
        {
            tensor.Bytes.CopyFromCPU(stream, ref *data.Pointer, data.ByteLength);
        }

        return tensor;
    }

    public Tensor FromFloats(ReadOnlySpan<float> values, params int[] shape)
    {
        var tensor = Allocate(shape);
        if (values.Length != tensor.ElementCount)
        {
            tensor.Dispose();
            throw new ArgumentException($"{values.Length} values for shape {tensor.ShapeText}");
        }

        Upload(values, tensor);
        return tensor;
    }

    public void Upload(ReadOnlySpan<float> source, Tensor destination)
    {
        var d = Ilgpu(destination);
        Float32(d, nameof(Upload));
        if (source.Length > d.ElementCount)
        {
            throw new ArgumentException($"Upload: {source.Length} values do not fit {d.ShapeText}");
        }

        using var scope = Enter();
        NotWhileRecording(nameof(Upload));
        if (source.Length > 0)
        {
            CopyIn(d.Floats, source);
        }
    }

    public void Download(Tensor source, Span<float> destination)
    {
        var s = Ilgpu(source);
        long count = s.ElementCount;
        if (destination.Length < count)
        {
            throw new ArgumentException($"Download: {s.ShapeText} does not fit {destination.Length} values");
        }

        using var scope = Enter();
        NotWhileRecording(nameof(Download));
        if (count == 0)
        {
            return;
        }

        var target = destination[..checked((int)count)];
        if (s.DType == DType.F32)
        {
            CopyOut(s.Floats, target);
            return;
        }

        // A bf16/f16 weight: fetch the bits and widen them as the CPU backend's ReadRange does.
        var bits = new ushort[count];
        CopyOut(s.Bytes.Cast<ushort>(), bits);
        if (s.DType == DType.BF16)
        {
            Bf16.ToSingle(bits, target);
        }
        else
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, System.Half>(bits), target);
        }
    }

    public void Copy(Tensor source, Tensor destination)
    {
        var s = Ilgpu(source);
        var d = Ilgpu(destination);
        Float32(s, nameof(Copy));
        Float32(d, nameof(Copy));
        if (d.ElementCount < s.ElementCount)
        {
            throw new ArgumentException($"Copy: {s.ShapeText} does not fit {d.ShapeText}");
        }

        using var scope = Enter();
        if (s.ElementCount > 0)
        {
            var target = d.Bytes.SubView(0, s.ByteLength);
            s.Bytes.CopyTo(stream, in target);
        }
    }

    /// <summary>The token ids of one Embedding call on the accelerator (a buffer reused across calls, stream-ordered).</summary>
    internal ArrayView<int> UploadIds(ReadOnlySpan<int> values)
    {
        if (recording is not null)
        {
            // A recorded step reads the ids its replay writes to the step buffer.
            return RecordedIds(values);
        }

        Grow(ref ids, values.Length);
        var view = ids!.View.SubView(0, values.Length);
        CopyIn(view, values);
        return view;
    }

    /// <summary>
    /// RoPE's cos and sin tables [P, N/2] covering positions start .. start + T − 1 (P ≥ start + T), with the device zero
    /// and start as the kernel's position and offset. One table per (θ, N) kept on the accelerator: computed on the host
    /// in float64 as the CPU reference computes them, rounded to fp32, and uploaded once for a range of positions that
    /// grows (doubling) when a call goes past it, so a decode step uploads nothing. (Accurate float64 sin/cos are not
    /// available in ILGPU kernels on every accelerator.) A replaced table is freed, or kept until no recorded step may
    /// read it. Not while recording (<see cref="RecordedRope"/>). Caller holds Enter.
    /// </summary>
    internal (ArrayView<float> Cos, ArrayView<float> Sin, ArrayView<int> Position, int Offset) RopeTable(float theta, int headDim, int start, int tokens)
    {
        int half = headDim / 2;
        long needed = (long)start + tokens;
        if (!ropeTables.TryGetValue((theta, headDim), out var entry) || entry.Positions < needed)
        {
            NotWhileRecording("Growing a RoPE table");
            long positions = Math.Max(RopeTableMinimum, entry.Positions);
            while (positions < needed)
            {
                positions *= 2;
            }

            var inverseFrequency = new double[half];
            for (int i = 0; i < half; i++)
            {
                inverseFrequency[i] = Math.Pow(theta, -2.0 * i / headDim);
            }

            var values = new float[2 * positions * half];
            for (long p = 0; p < positions; p++)
            {
                double position = p;
                for (int i = 0; i < half; i++)
                {
                    (double sin, double cos) = Math.SinCos(position * inverseFrequency[i]);
                    values[(p * half) + i] = (float)cos;
                    values[((positions + p) * half) + i] = (float)sin;
                }
            }

            if (entry.Buffer is not null)
            {
                RetireTable(entry.Buffer);
            }

            var buffer = Device.Accelerator.Allocate1D<float>(values.LongLength);
            CopyIn(buffer.View.BaseView, values);
            entry = (buffer, positions);
            ropeTables[(theta, headDim)] = entry;
        }

        var view = entry.Buffer!.View.BaseView;
        return (view.SubView(0, entry.Positions * half), view.SubView(entry.Positions * half, entry.Positions * half), Device.Zero.View, start);
    }

    /// <summary>The parameters of one Sample call on the accelerator (reused buffer, stream-ordered).</summary>
    internal ArrayView<double> UploadSampleParameters(ReadOnlySpan<double> values)
    {
        NotWhileRecording("Sample (it returns ids to the host; a recorded step samples through Capture's sampleLogits)");
        Grow(ref sampleParameters, values.Length);
        var view = sampleParameters!.View.SubView(0, values.Length);
        CopyIn(view, values);
        return view;
    }

    /// <summary>Where one Sample call writes its ids (reused buffer, stream-ordered).</summary>
    internal ArrayView<int> SampleIds(int count)
    {
        Grow(ref sampleIds, count);
        return sampleIds!.View.SubView(0, count);
    }

    /// <summary>Copies ids written by a kernel to the host and waits for them.</summary>
    internal void DownloadIds(ArrayView<int> source, Span<int> destination)
    {
        CopyOut(source, destination);
    }

    /// <summary>
    /// Copies host values to the start of <paramref name="target"/> and waits for the copy, with the host memory pinned:
    /// ILGPU's copies that take <c>ref T</c> make a raw pointer of it and allocate before they copy, so a managed array
    /// that is not pinned may be moved by the GC in between and the copy read its old place (the stress test
    /// IlgpuHostCopyTests; an all-zero download in one CI run).
    /// </summary>
    private void CopyIn<T>(ArrayView<T> target, ReadOnlySpan<T> source)
        where T : unmanaged
    {
        if (source.IsEmpty)
        {
            return;
        }

        fixed (T* pinned = source)
        {
            target.SubView(0, source.Length).CopyFromCPU(stream, ref *pinned, source.Length);
        }
    }

    /// <summary>Copies the start of <paramref name="source"/> into host memory, pinned, and waits (see <see cref="CopyIn"/>).</summary>
    private void CopyOut<T>(ArrayView<T> source, Span<T> destination)
        where T : unmanaged
    {
        if (destination.IsEmpty)
        {
            return;
        }

        fixed (T* pinned = destination)
        {
            source.SubView(0, destination.Length).CopyToCPU(stream, ref *pinned, destination.Length);
        }
    }

    /// <summary>Scratch for attention scores, at least <paramref name="count"/> floats (reused, stream-ordered).</summary>
    internal ArrayView<float> Scores(long count)
    {
        Grow(ref scores, count);
        return scores!.View.SubView(0, count);
    }

    private void Grow<T>(ref MemoryBuffer1D<T, Stride1D.Dense>? buffer, long count)
        where T : unmanaged
    {
        if (buffer is not null && buffer.Length >= count)
        {
            return;
        }

        NotWhileRecording("Growing a scratch buffer");
        if (buffer is not null)
        {
            stream.Synchronize();
            buffer.Dispose();
        }

        buffer = Device.Accelerator.Allocate1D<T>(Math.Max(count, 1024));
    }

    private IlgpuTensor New(DType dtype, int[] shape, long bytes)
    {
        MemoryBuffer1D<byte, Stride1D.Dense> buffer;
        try
        {
            // At least one word, so that empty tensors still have a buffer to view.
            buffer = Device.Accelerator.Allocate1D<byte>(Math.Max(bytes, 4));
        }
        catch (Exception e) when (e is not RadladsException)
        {
            throw OutOfMemory(dtype, shape, bytes, e);
        }

        return new IlgpuTensor(this, buffer, buffer.View.SubView(0, bytes), dtype, shape, owner: true);
    }

    private static void Float32(IlgpuTensor t, string op)
    {
        if (t.DType != DType.F32)
        {
            throw new InvalidOperationException($"{op}: tensor is {t.DType}, not F32");
        }
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        using (Device.Sync.EnterScope())
        {
            Device.MakeCurrent();
            stream.Synchronize();
            ids?.Dispose();
            scores?.Dispose();
            sampleParameters?.Dispose();
            sampleIds?.Dispose();
            splitCounters.Dispose();
            foreach (var (buffer, _) in ropeTables.Values)
            {
                buffer?.Dispose();
            }

            FreeCache();
            DisposeCapture();
            disposed = true;
            stream.Dispose();
        }

    }
}
