using System.Globalization;
using Radlads.Checkpoints;
using Radlads.Native;
using Radlads.Ops;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Cuda;

/// <summary>
/// The CUDA backend: tensors in device memory, ops as hand-written kernels (kernels/*.cu) compiled by NVRTC for
/// the device and launched on one stream per backend. Activations and state are fp32, weights keep their
/// checkpoint dtype (bf16, f16, f32) and are copied to the device by <see cref="LoadWeight"/>.
/// Creating it on a machine without a usable GPU throws <see cref="RadladsException"/> saying what is missing.
/// Activations come from a cache of device blocks (<see cref="Allocate"/>): every op runs on the backend's one
/// stream, so a block given back can be handed out again at once, without a free or a wait. A decode step can be
/// recorded as a CUDA graph and replayed (<see cref="IStepCapture"/>).
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend, IStepCapture
{
    /// <summary>Token ids a recorded step may take (its pinned step buffer holds the position and these).</summary>
    private const int StepIdCapacity = 1023;

    // The step buffer (pinned on the host, mirrored on the device; a replay's first node copies it over):
    // int position at 0, the sampled id at 4 (the recorded Sample stores it into the pinned copy, through
    // stepSampledIdOnDevice), the SampleRow of sampling.cu (24 bytes) at 8, the token ids from 32 on.
    private const int StepSampledId = 4;
    private const int StepSampleRow = 8;
    private const int StepIds = 32;
    private const int StepBytes = StepIds + (StepIdCapacity * sizeof(int));

    private readonly CudaStream stream;
    private readonly Lock idsLock = new();
    private DeviceMemory? ids;
    private DeviceMemory? sampleBuffer;
    private readonly DeviceMemory stepDevice;
    private readonly PinnedMemory stepHost;
    private readonly ulong stepSampledIdOnDevice;
    private readonly CudaEvent stepRead;
    private readonly DeviceMemory splitCounters;
    private bool disposed;

    /// <summary>Opens GPU <paramref name="device"/> (default 0) and compiles or loads the kernels.</summary>
    public CudaBackend(int device = 0)
    {
        try
        {
            Device = CudaDevice.Get(device);
            Library = KernelLibrary.For(Device);
            Kernels = new Kernels(Library);
            stream = new CudaStream(Device);
            // Allocated up front so that the memory a model holds is all released when it is disposed.
            ids = new DeviceMemory(Device, 4096);
            stepDevice = new DeviceMemory(Device, StepBytes);
            stepHost = new PinnedMemory(Device, StepBytes);
            stepSampledIdOnDevice = stepHost.DevicePointer + StepSampledId;
            stepRead = new CudaEvent(Device);
            stepRead.Record(stream);
            splitCounters = new DeviceMemory(Device, (SplitCounterCount + 3) * sizeof(int));
            Device.Driver.SetAsync(splitCounters.Pointer, 0, SplitCounterCount + 3, Stream);
            Gemm = CudaGemm.TryCreate(Device, out var gemmStatus);
            GemmStatus = gemmStatus;
            if (Gemm is not null)
            {
                Gemm.Tune = EnvironmentChoice("RADLADS_CUBLASLT_TUNE", 1, [0, 1],
                    "1: large prefill GEMMs time cuBLASLt's candidate algorithms at their first call, 0: the heuristic's first choice") == 1;
                Gemm.TuneMinFlops = CudaGemm.ParseTuneMinFlops(Environment.GetEnvironmentVariable("RADLADS_CUBLASLT_TUNE_MIN_GFLOP"))
                    ?? CudaGemm.DefaultTuneMinFlops;
            }

            GemmMinRows = ParseGemmMinRows(Environment.GetEnvironmentVariable("RADLADS_CUBLASLT_MIN_ROWS")) ?? DefaultGemmMinRows;
            GemvBlocksPerSm = ParseGemvBlocksPerSm(Environment.GetEnvironmentVariable("RADLADS_GEMV_BLOCKS_PER_SM")) ?? GemvBlocksPerSm;

            Wkv7TileRows = EnvironmentChoice("RADLADS_WKV7_TILE_ROWS", Wkv7TileRows, [1, 2], "rows of the state per thread");
            Wkv7TileLanes = EnvironmentChoice("RADLADS_WKV7_TILE_LANES", Wkv7TileLanes, [8, 16], "lanes a state row is spread over");
            Wkv7Chunked = EnvironmentChoice("RADLADS_WKV7_CHUNKED", 1, [0, 1], "1: long Wkv7 prefills in chunks, 0: the token-by-token scan") == 1;
            Bf16Mlp = EnvironmentChoice("RADLADS_BF16_MLP", 1, [0, 1], "1: prefill MLPs keep gate, up and act in bf16, 0: in fp32 as the ops they fuse") == 1;
            Wkv7ChunkedMinTokens = ParseWkv7ChunkedMinTokens(Environment.GetEnvironmentVariable("RADLADS_WKV7_CHUNKED_MIN_TOKENS")) ?? Wkv7ChunkedMinTokens;
            Wkv7ChunkScanRows = EnvironmentChoice("RADLADS_WKV7_SCAN_ROWS", Wkv7ChunkScanRows, CudaOps.Wkv7ChunkScanRowChoices,
                "state rows a block of the chunked Wkv7 scan holds");


            AttentionTensorCores = Device.ComputeMajor >= 8 && Environment.GetEnvironmentVariable("RADLADS_ATTENTION_TC") != "0";
            ProgrammaticLaunch = Device.ComputeMajor >= 9 && Device.Driver.HasLaunchEx && Environment.GetEnvironmentVariable("RADLADS_CUDA_PDL") != "0";
        }
        catch (CudaUnavailableException e)
        {
            throw new RadladsException("CUDA is not available: " + e.Message, e);
        }
        catch (CudaException e)
        {
            throw new RadladsException("the CUDA backend could not start: " + e.Message, e);
        }

        Ops = new CudaOps(this);
        var nvrtc = Nvrtc.Instance;
        Description = string.Create(CultureInfo.InvariantCulture,
            $"CUDA device {Device.Ordinal}: {Device.Name} (sm_{Device.ComputeCapability}, {Device.TotalMemory / (1024.0 * 1024 * 1024):F1} GiB, {Device.MultiprocessorCount} SMs), driver CUDA {Device.Driver.DriverVersionText} ({Device.Driver.LibraryName}), NVRTC {nvrtc.Version} ({nvrtc.LibraryName}), kernels {Library.Target}, GEMMs: {GemmStatus}");
    }

    public string Name => "cuda";

    public string Description { get; }

    public IOps Ops { get; }

    public CudaDevice Device { get; }

    public KernelLibrary Library { get; }

    internal Kernels Kernels { get; }

    /// <summary>The CUstream every op of this backend is queued on (prefetches have their own: CudaBackend.Prefetch.cs).</summary>
    public nint Stream => onSide ? sideStream!.Handle : stream.Handle;

    internal CudaStream StreamObject => stream;

    /// <summary>
    /// The decode GEMVs take the fewest warps per row that still give this many blocks per SM (default 2; the
    /// environment variable RADLADS_GEMV_BLOCKS_PER_SM overrides it, for tuning with `bench-decode --gemv`). 2 rather
    /// than the earlier 8: small matrices then run one warp a row in fewer, fuller blocks instead of 8 warps a row with
    /// most lanes idle (0.5B o_proj: 112 blocks of 8 rows, not 896 of one). H200, 2026-11-28, two interleaved rounds,
    /// device sampling: 0.5B RAD-RWKV7 0.759–0.761 → 0.703–0.708 ms, Qwen2 1.139–1.141 → 1.001–1.005 ms; 7B within
    /// noise (RAD-RWKV7 3.907–3.932 → 3.883–3.895); 1 and 4 were between (NOTES, sixteenth session).
    /// </summary>
    public int GemvBlocksPerSm { get; set; } = 2;

    /// <summary>
    /// How many blocks a SM the decode LoRA down projections' split over K aims at (lora_down alone and inside the q/k/v
    /// launch alike, so the two give the same bits): <see cref="DefaultLoraDownBlocksPerSm"/> unless
    /// RADLADS_LORA_DOWN_BLOCKS_PER_SM sets it (a number above 0, at most 64). Results change in the last bits with it
    /// (another order of the partial sums).
    /// </summary>
    public double LoraDownBlocksPerSm { get; set; } = ParseLoraDownBlocksPerSm(Environment.GetEnvironmentVariable("RADLADS_LORA_DOWN_BLOCKS_PER_SM"));

    /// <summary>
    /// One block a SM: 7B's LoRA set (K 3,584, 3 column tiles, 132 SMs) in 44 splits of 82 rows, 132 blocks beside the
    /// q/k/v GEMV's 576 (1.8 waves at 3 blocks a SM, not 2.1). H200, 2026-11-29, CUPTI trace of a 7B RAD-RWKV7 step: the
    /// q/k/v + LoRA down launch's end increment 13.8 µs at 2 (88 splits of 41 rows, the earlier default), 11.2 at 0.75–1.5,
    /// 13.6 at 1.75; `bench-decode` 3.945–3.955 → 3.888–3.915 ms in three interleaved rounds. 0.5B is capped at one split
    /// per 32 rows either way (28 splits), so unchanged (NOTES, eighteenth session).
    /// </summary>
    public const double DefaultLoraDownBlocksPerSm = 1;

    /// <summary>RADLADS_LORA_DOWN_BLOCKS_PER_SM's value (null: unset, <see cref="DefaultLoraDownBlocksPerSm"/>); anything but a number in (0, 64] is an error that names the variable.</summary>
    internal static double ParseLoraDownBlocksPerSm(string? text) =>
        TuningVariable.Number("RADLADS_LORA_DOWN_BLOCKS_PER_SM", text, 0, minExcluded: true, 64,
            "a number of blocks a SM above 0 and at most 64 (e.g. 0.5, 1, 2)") ?? DefaultLoraDownBlocksPerSm;

    /// <summary>
    /// The environment variable <paramref name="name"/> as one of <paramref name="allowed"/>, or
    /// <paramref name="fallback"/> when it is not set; any other value is an error naming the allowed ones.
    /// </summary>
    private static int EnvironmentChoice(string name, int fallback, int[] allowed, string meaning)
    {
        if (Environment.GetEnvironmentVariable(name) is not { } text)
        {
            return fallback;
        }

        foreach (int value in allowed)
        {
            if (text == value.ToString(CultureInfo.InvariantCulture))
            {
                return value;
            }
        }

        throw new RadladsException($"{name}={text}: use {string.Join(" or ", allowed)} ({meaning})");
    }

    /// <summary>
    /// Rows of the state per thread in wkv7_tile_f32 (RADLADS_WKV7_TILE_ROWS, 1 or 2): 2 halves the shared-memory
    /// reads per row, 1 doubles the warps.
    /// </summary>
    internal int Wkv7TileRows { get; set; } = 2;

    /// <summary>
    /// Lanes a state row is spread over in wkv7_tile_f32 (RADLADS_WKV7_TILE_LANES, 8 or 16; 16 applies with 2 rows a
    /// thread at head dim ≤ 128): 16 gives twice the warps for the same rows, 8 fewer shuffles per row.
    /// </summary>
    internal int Wkv7TileLanes { get; set; } = 8;

    /// <summary>
    /// Whether Wkv7 prefills of at least <see cref="Wkv7ChunkedMinTokens"/> tokens at head dim 64 or 128 run in chunks of
    /// 16 tokens (kernels/wkv7_chunked.cu: T/16 sequential matrix steps instead of T row reductions; within fp32 rounding
    /// of the recurrence, not bit-identical to decode). RADLADS_WKV7_CHUNKED=0 keeps the scan, whose state is bit for bit
    /// what token-by-token decode leaves.
    /// </summary>
    internal bool Wkv7Chunked { get; set; } = true;

    /// <summary>The fewest tokens a Wkv7 prefill takes the chunked kernels from (RADLADS_WKV7_CHUNKED_MIN_TOKENS).</summary>
    internal int Wkv7ChunkedMinTokens { get; set; } = 32;

    /// <summary>
    /// State rows a block of the chunked Wkv7 scan holds (RADLADS_WKV7_SCAN_ROWS): 32 (wkv7_chunk_scan_f32_n{N}, one
    /// block an SM at N = 128) or 16 (_r16: half the warps and shared memory, two blocks an SM, twice the blocks).
    /// </summary>
    internal int Wkv7ChunkScanRows { get; set; } = 16;

    /// <summary>Chunked Wkv7 prefills queued so far (tests check which path ran).</summary>
    internal long Wkv7ChunkedLaunches { get; set; }

    /// <summary>
    /// Whether IOps.AddRmsNormMlp at prefill on cuBLASLt keeps its intermediates in bf16 (CudaOps.Mlp.cs: gate and up
    /// written by their GEMMs in bf16, act = SwiGLU of them in bf16, no fp32 copy of either; act and upScratch are the
    /// op's scratch). RADLADS_BF16_MLP=0 runs the ops it stands for, whose gate and up are fp32 (only act is rounded to
    /// bf16, by the down GEMM).
    /// </summary>
    internal bool Bf16Mlp { get; set; } = true;

    /// <summary>Prefill MLPs run with bf16 intermediates so far (tests check which path ran).</summary>
    internal long Bf16MlpLaunches { get; set; }

    /// <summary>Whether decode steps are recorded as CUDA graphs and replayed (default on; RADLADS_CUDA_GRAPHS=0 turns it off).</summary>
    public bool CaptureEnabled { get; set; } = Environment.GetEnvironmentVariable("RADLADS_CUDA_GRAPHS") != "0";

    /// <summary>
    /// From how many rows (tokens × sequences) a MatMul with bf16 weights runs on cuBLASLt (bf16 activations,
    /// fp32 accumulation) instead of the built-in kernels (fp32 activations). Below it, and for decode (one row,
    /// the GEMVs) or other weight dtypes, the built-in kernels run. Measured on an H200 (2026-11-27, `bench-decode --gemm`,
    /// bench/results/h200/2026-11-27-prefill-cublaslt.md): cuBLASLt is 4.7–60× faster than the tiled kernel from T = 2 on
    /// every 0.5B/7B matrix, so two rows is the crossover.
    /// </summary>
    public const int DefaultGemmMinRows = 2;

    /// <summary>
    /// Whether prefill attention (T &gt; 1) runs on the tensor cores (attention_prefill_tc_N: Q, K, V and the softmax
    /// probabilities rounded to bf16, fp32 accumulation and softmax) where the head dim has a kernel (16, 32, 64, 128)
    /// and the device has bf16 mma (sm_80+); otherwise, and when false, the fp32 kernel runs. Default on from sm_80;
    /// RADLADS_ATTENTION_TC=0 turns it off (A/B timings, fallback). Setting it on a device before sm_80 has no effect.
    /// </summary>
    public bool AttentionTensorCores { get; set; }

    /// <summary>
    /// Whether Attention over <paramref name="tokens"/> query rows at head dim <paramref name="headDim"/> takes the
    /// tensor-core kernel (with 16-byte aligned tensors, as every allocation of this backend is).
    /// </summary>
    internal bool TakesTensorCoreAttention(int tokens, int headDim) =>
        tokens > 1 && AttentionTensorCores && Device.ComputeMajor >= 8 && Kernels.TensorCoreAttentionHeadDims.Contains(headDim)
        && Kernels.TensorCoreAttentionSharedWords(headDim) * sizeof(uint) <= Kernels.MaxDynamicShared;

    /// <summary>cuBLASLt for the prefill GEMMs, or null (<see cref="GemmStatus"/> says why).</summary>
    internal CudaGemm? Gemm { get; }

    /// <summary>Whether cuBLASLt was found and started on this device.</summary>
    public bool HasGemmLibrary => Gemm is not null;

    /// <summary>One line for the log and `radlads info`: the cuBLASLt library and version, or why it is not used.</summary>
    public string GemmStatus { get; }

    /// <summary>
    /// Whether cuBLASLt can be loaded on this machine (no GPU needed), for `radlads info`: its version and file, or
    /// the names tried and what the CUDA backend does instead.
    /// </summary>
    public static string ProbeGemmLibrary() => CublasLt.TryGet(out var lt, out var reason)
        ? $"cuBLASLt {lt!.Version} ({lt.LibraryName}): prefill MatMuls with bf16 weights from {DefaultGemmMinRows} rows on"
        : reason + "; CUDA prefill uses the built-in tiled matmul";

    /// <summary>
    /// Rows from which MatMul uses cuBLASLt (<see cref="DefaultGemmMinRows"/>, or RADLADS_CUBLASLT_MIN_ROWS; at
    /// least 2: one row is the GEMV's). int.MaxValue keeps every MatMul on the built-in kernels.
    /// </summary>
    public int GemmMinRows { get; set; }

    /// <summary>
    /// Binds the device's context to the calling thread; every entry point that may write device memory (ops,
    /// zeroed allocations, uploads, copies, replays) calls it first, and each call counts as one <see cref="Entries"/>.
    /// </summary>
    internal void Enter()
    {
        EnterWithoutWrites();
        Entries++;
        if (bf16Copy is not null && Entries > bf16CopyEntry + 1)
        {
            // Nobody took the copy at the entry after its producer: it is stale from now on.
            DropBf16Copy();
        }
    }

    /// <summary>
    /// <see cref="Enter"/> for an entry point that writes no device memory (an uninitialized allocation): binds the
    /// context without counting, so a kept bf16 copy stays valid across it.
    /// </summary>
    private void EnterWithoutWrites()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        Device.MakeCurrent();
    }

    internal void SynchronizeBeforeFree()
    {
        if (!disposed)
        {
            Device.MakeCurrent();
            SynchronizeStreams();
        }
    }

    /// <summary>
    /// Waits until everything queued on this backend's stream has run. It writes nothing, so it is not an
    /// <see cref="Entries"/> (a profiler's waits between two ops leave a bf16 copy valid for the second).
    /// </summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        Device.MakeCurrent();
        SynchronizeStreams();
    }

    internal static CudaTensor Cuda(Tensor t) =>
        t as CudaTensor ?? throw new ArgumentException($"a {t.GetType().Name} {t.ShapeText} was passed to the CUDA backend");

    public Tensor Allocate(params int[] shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d);
            count *= d;
        }

        var tensor = Cached((int[])shape.Clone(), count * sizeof(float), zeroed: true);
        if (count > 0)
        {
            Device.Driver.SetAsync(tensor.Pointer, 0, count, Stream);
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

        return Cached((int[])shape.Clone(), count * sizeof(float), zeroed: false);
    }

    public Tensor LoadWeight(TensorData data)
    {
        var tensor = New(data.DType, (int[])data.Shape.Clone(), data.ByteLength);
        if (data.ByteLength > 0)
        {
            // Queued on the stream (so kernels see it); returns once the pageable source has been staged.
            Device.Driver.CopyHostToDeviceAsync(tensor.Pointer, data.Pointer, data.ByteLength, Stream);
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
        var d = Cuda(destination);
        Float32(d, nameof(Upload));
        if (source.Length > d.ElementCount)
        {
            throw new ArgumentException($"Upload: {source.Length} values do not fit {d.ShapeText}");
        }

        Enter();
        NotWhileRecording(nameof(Upload));
        if (source.Length > 0)
        {
            fixed (float* p = source)
            {
                Device.Driver.CopyHostToDeviceAsync(d.Pointer, p, (long)source.Length * sizeof(float), Stream);
            }
        }
    }

    public void Download(Tensor source, Span<float> destination)
    {
        var s = Cuda(source);
        long count = s.ElementCount;
        if (destination.Length < count)
        {
            throw new ArgumentException($"Download: {s.ShapeText} does not fit {destination.Length} values");
        }

        Enter();
        NotWhileRecording(nameof(Download));
        if (count == 0)
        {
            return;
        }

        var target = destination[..checked((int)count)];
        if (s.DType == DType.F32)
        {
            fixed (float* p = target)
            {
                Device.Driver.CopyDeviceToHostAsync(p, s.Pointer, count * sizeof(float), Stream);
                stream.Synchronize();
            }

            return;
        }

        // A bf16/f16 weight: fetch the bits and widen them as the CPU backend's ReadRange does.
        var bits = new ushort[count];
        fixed (ushort* p = bits)
        {
            Device.Driver.CopyDeviceToHostAsync(p, s.Pointer, count * sizeof(ushort), Stream);
            stream.Synchronize();
        }

        if (s.DType == DType.BF16)
        {
            Bf16.ToSingle(bits, target);
        }
        else
        {
            TensorPrimitives.ConvertToSingle(System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(bits), target);
        }
    }

    public void Copy(Tensor source, Tensor destination)
    {
        var s = Cuda(source);
        var d = Cuda(destination);
        Float32(s, nameof(Copy));
        Float32(d, nameof(Copy));
        if (d.ElementCount < s.ElementCount)
        {
            throw new ArgumentException($"Copy: {s.ShapeText} does not fit {d.ShapeText}");
        }

        Enter();
        if (s.ElementCount > 0)
        {
            Device.Driver.CopyDeviceToDeviceAsync(d.Pointer, s.Pointer, s.ByteLength, Stream);
        }
    }

    /// <summary>The token ids of one Embedding call on the device (a buffer reused across calls, stream-ordered).</summary>
    internal ulong UploadIds(ReadOnlySpan<int> values)
    {
        if (recording is { } session)
        {
            // A recorded step reads the ids its replay writes to the step buffer.
            if (!values.SequenceEqual(session.Ids))
            {
                throw new InvalidOperationException("while recording a step, Embedding must be given the ids the recording was started with");
            }

            return stepDevice.Pointer + StepIds;
        }

        lock (idsLock)
        {
            long bytes = (long)values.Length * sizeof(int);
            if (ids is null || ids.Bytes < bytes)
            {
                if (ids is not null)
                {
                    stream.Synchronize();
                    ids.Dispose();
                }

                ids = new DeviceMemory(Device, Math.Max(bytes, 4096));
            }

            fixed (int* p = values)
            {
                Device.Driver.CopyHostToDeviceAsync(ids.Pointer, p, bytes, Stream);
            }

            return ids.Pointer;
        }
    }

    /// <summary>
    /// A device buffer for one Sample call of <paramref name="rows"/> rows: their parameters (24 bytes each) and, after
    /// them, their ids (4 bytes each). Reused across calls (stream-ordered: the call reads the ids back before returning).
    /// </summary>
    internal ulong SampleBuffer(int rows)
    {
        long bytes = (long)rows * 28;
        if (sampleBuffer is null || sampleBuffer.Bytes < bytes)
        {
            if (sampleBuffer is not null)
            {
                stream.Synchronize();
                sampleBuffer.Dispose();
            }

            sampleBuffer = new DeviceMemory(Device, Math.Max(bytes, 4096));
        }

        return sampleBuffer.Pointer;
    }

    /// <summary>
    /// Whether kernels are launched with programmatic dependent launch (Hopper and later; RADLADS_CUDA_PDL=0 turns
    /// it off): each kernel may start while the previous one finishes, and waits in griddepcontrol.wait before it
    /// touches memory; the GEMVs load their first weights before that wait.
    /// </summary>
    public bool ProgrammaticLaunch { get; set; }

    /// <summary>
    /// A cooperative launch (every block resident at once, for grid barriers), by default never early by PDL: its blocks
    /// must all find room, and a grid sized to what fits lands unevenly next to a finishing kernel (NOTES, the wkv7_tile
    /// lesson). programmatic: true (with <see cref="ProgrammaticLaunch"/> on) launches it early all the same, for a grid
    /// of one block an SM that no SM can hold twice (mlp_stream's ring).
    /// </summary>
    internal void LaunchCooperative(nint function, string name, uint gridX, uint block, uint sharedBytes, void** arguments, bool programmatic = false) =>
        Device.Driver.LaunchCooperative(function, gridX, block, sharedBytes, Stream, arguments, name, programmatic && ProgrammaticLaunch);

    /// <summary>
    /// Queues a kernel on the stream, with programmatic dependent launch when <see cref="ProgrammaticLaunch"/> is on.
    /// programmatic: false launches this kernel plainly even when <see cref="ProgrammaticLaunch"/> is on: for a latency-bound kernel
    /// of about one wave whose blocks must spread evenly over the SMs. Launched early, while the kernel before it still
    /// holds SMs, its blocks land where room is, two on some SMs and none on others (wkv7_tile_f32 at 7B, T = 2048,
    /// H200: 0.70 ms a layer launched plainly, 1.13 ms launched early; CUPTI trace, 2026-11-27).
    /// </summary>
    internal void Launch(nint function, string name, uint gridX, uint gridY, uint block, uint sharedBytes, void** arguments,
        uint gridZ = 1, bool programmatic = true)
    {
        if (ProgrammaticLaunch && programmatic)
        {
            Device.Driver.LaunchProgrammatic(function, gridX, gridY, gridZ, block, 1, 1, sharedBytes, Stream, arguments, name);
        }
        else
        {
            Device.Driver.Launch(function, gridX, gridY, gridZ, block, 1, 1, sharedBytes, Stream, arguments, name);
        }
    }

    /// <summary>
    /// The position offset argument of RoPE: null (0) outside a recording; inside one, the step buffer, whose
    /// first int the replay sets to its position, and <paramref name="start"/> made relative to the recording's.
    /// </summary>
    internal ulong PositionOffset(ref int start)
    {
        if (recording is not { } session)
        {
            return 0;
        }

        start -= session.Position;
        return stepDevice.Pointer;
    }

    /// <summary>
    /// <see cref="PositionOffset(ref int)"/> for an op on rows start .. start + tokens − 1 of a KV cache of
    /// <paramref name="rows"/> rows: a recording then covers replays only at positions whose rows exist
    /// (<see cref="ICapturedStep.CanReplayAt"/>).
    /// </summary>
    internal ulong PositionOffset(ref int start, int tokens, long rows)
    {
        ulong offset = PositionOffset(ref start);
        if (recording is { } session)
        {
            // A replay at q touches rows q + start .. q + start + tokens − 1 (start now relative).
            session.LastPosition = (int)Math.Min(session.LastPosition, rows - tokens - start);
        }

        return offset;
    }

    internal bool Recording => recording is not null;

    /// <summary>Split-K GEMVs count finished splits per column tile here; the last block of a tile resets its counter.</summary>
    internal const int SplitCounterCount = 4096;

    internal ulong SplitCounters => splitCounters.Pointer;

    /// <summary>
    /// The fused norm + GEMV kernels (matmul.cu ResidualNorm) count their blocks here; the last block resets it. One for
    /// the backend: launches on its stream count one after another (each after its griddepcontrol.wait).
    /// </summary>
    internal ulong NormCounter => splitCounters.Pointer + (SplitCounterCount * sizeof(int));

    /// <summary>
    /// The two ints of grid_barrier state (common.cuh) that the persistent kernels (mlp_decode) wait on: the arrival
    /// count, back at 0 after every barrier, and the generation. One pair for the backend: its launches run one at a time.
    /// </summary>
    internal ulong GridBarrier => splitCounters.Pointer + ((SplitCounterCount + 1) * sizeof(int));

    /// <summary>
    /// Whether decode (T = 1, bf16) runs the whole MLP after its residual norm as one persistent kernel
    /// (IOps.AddRmsNormMlp: norm, gate/up + SwiGLU, a grid barrier, down; mlp_decode in matmul.cu) instead of three
    /// launches, with the same bits. Off by default (RADLADS_PERSISTENT_MLP=1 turns it on): it measured slower (H200,
    /// 2026-11-28, graphs, device sampling: 7B RAD-RWKV7 4.31–4.32 → 4.50 ms, 0.5B 0.98–0.99 → 1.07 ms; NOTES, eighth
    /// session): at 64 registers it holds 4 blocks a SM where gate_up_swiglu alone holds 8, and the 7B MLP streams at
    /// 75 % of DRAM peak against the separate kernels' ~80 %. Kept, tested, for the persistent layer kernel it is the
    /// first step of.
    /// </summary>
    public bool PersistentMlp { get; set; } = Environment.GetEnvironmentVariable("RADLADS_PERSISTENT_MLP") == "1";

    /// <summary>How many persistent MLP kernels this backend has queued (tests: the decode path takes them).</summary>
    internal long PersistentMlpLaunches { get; set; }

    /// <summary>
    /// Whether decode (T = 1, bf16, sm_90) runs the MLP after its residual norm as one persistent kernel whose weights
    /// stream into a shared-memory ring by bulk copies from a producer warp (mlp_stream in matmul.cu), so the next phase's
    /// weights are in flight across the norm, the row ends and the grid barrier; same bits as the three launches. Takes
    /// precedence over <see cref="PersistentMlp"/>. Off by default (RADLADS_STREAM_MLP=1 turns it on): alone it is a
    /// little faster than the three launches (H200, 2026-11-28, ncu at the card's clocks: 7B 105.6 µs against 107.0),
    /// but in the decode pipeline it is slower (7B RAD-RWKV7 3.96 → 4.17 ms a token, 0.5B 0.79 → 0.88 ms), because the
    /// three launches overlap their neighbours by PDL and this kernel, holding an SM's shared memory, cannot
    /// (bench/results/h200/2026-11-28-session15, NOTES fifteenth session).
    /// </summary>
    public bool StreamMlp { get; set; } = Environment.GetEnvironmentVariable("RADLADS_STREAM_MLP") == "1";

    /// <summary>
    /// Whether <see cref="StreamMlp"/>'s kernel is launched early by PDL (cooperative and programmatic), so its producer
    /// streams the first weights while the kernel before it finishes. Off by default (RADLADS_STREAM_PDL=1: a measurement).
    /// </summary>
    public bool StreamPdl { get; set; } = Environment.GetEnvironmentVariable("RADLADS_STREAM_PDL") == "1";

    /// <summary>
    /// The most ring stages (16 KB each) <see cref="StreamMlp"/>'s kernel may take; null: as many as fit (≤ 16). Fewer
    /// leave shared memory for the next kernel's blocks to land beside it early (PDL). RADLADS_STREAM_STAGES sets it (4–16).
    /// </summary>
    public int? StreamStages { get; set; } = ParseStreamStages(Environment.GetEnvironmentVariable("RADLADS_STREAM_STAGES"));

    internal static int? ParseStreamStages(string? text) =>
        TuningVariable.WholeNumber("RADLADS_STREAM_STAGES", text, CudaOps.StreamMinStages, CudaOps.StreamMaxStages, "ring stages");

    /// <summary>RADLADS_GEMV_BLOCKS_PER_SM's value (null when unset): 1 to 64, anything else an error naming the variable.</summary>
    internal static int? ParseGemvBlocksPerSm(string? text) => TuningVariable.WholeNumber("RADLADS_GEMV_BLOCKS_PER_SM", text, 1, 64, "blocks a SM");

    /// <summary>RADLADS_WKV7_CHUNKED_MIN_TOKENS's value (null when unset): 2 or more, anything else an error naming the variable.</summary>
    internal static int? ParseWkv7ChunkedMinTokens(string? text) =>
        TuningVariable.WholeNumber("RADLADS_WKV7_CHUNKED_MIN_TOKENS", text, 2, int.MaxValue, "tokens");

    /// <summary>RADLADS_CUBLASLT_MIN_ROWS's value (null when unset): 2 or more (one row is always a GEMV), anything else an error naming the variable.</summary>
    internal static int? ParseGemmMinRows(string? text) => TuningVariable.WholeNumber("RADLADS_CUBLASLT_MIN_ROWS", text, 2, int.MaxValue, "rows");

    /// <summary>How many streamed MLP kernels this backend has queued.</summary>
    internal long StreamMlpLaunches { get; set; }

    /// <summary>
    /// Whether decode runs RAD-RWKV7's q/k/v GEMV and LoRA down projections in one launch (IOps.AddRmsNormMatMulSharedLoraSet,
    /// gemv_group_lora_down; same bits as the two launches). On by default; RADLADS_GROUP_LORA=0 runs the two, for comparison.
    /// </summary>
    public bool GroupLoraDown { get; set; } = Environment.GetEnvironmentVariable("RADLADS_GROUP_LORA") != "0";

    /// <summary>
    /// RAD-RWKV7's one-token RoPE, keys, residual, recurrence, scale and gate in one launch (IOps.Rwkv7RopeKeysWkv7Rows:
    /// rwkv7_rope_keys_wkv7_rows_f32; same bits as the two launches). On by default; RADLADS_ROPE_KEYS_WKV7=0 runs the
    /// two, for comparison.
    /// </summary>
    public bool FuseRopeKeysWkv7 { get; set; } = Environment.GetEnvironmentVariable("RADLADS_ROPE_KEYS_WKV7") != "0";

    /// <summary>How many rwkv7_rope_keys_wkv7_rows launches (IOps.Rwkv7RopeKeysWkv7Rows) this backend has queued (tests: the decode path takes them).</summary>
    internal long RopeKeysWkv7Launches { get; set; }

    /// <summary>
    /// A prompt chunk's RAD-RWKV7 steps 2–9 with the keys formed inside the chunked Wkv7's prep (IOps.Rwkv7RopeKeysWkv7:
    /// wkv7_chunk_prep_keys_f32; same bits as the composed ops). On by default; RADLADS_ROPE_KEYS_WKV7_PROMPT=0 runs the
    /// composed ops, for comparison.
    /// </summary>
    public bool FuseRopeKeysWkv7Prompt { get; set; } = Environment.GetEnvironmentVariable("RADLADS_ROPE_KEYS_WKV7_PROMPT") != "0";

    /// <summary>How many wkv7_chunk_prep_keys launches (IOps.Rwkv7RopeKeysWkv7) this backend has queued (tests: the prompt path takes them).</summary>
    internal long RopeKeysWkv7PromptLaunches { get; set; }

    /// <summary>How many gemv_group_lora_down launches (IOps.AddRmsNormMatMulSharedLoraSet) this backend has queued (tests: the decode path takes them).</summary>
    internal long GroupLoraLaunches { get; set; }

    /// <summary>
    /// Whether decode (T = 1) runs the residual norm inside the q/k/v and gate/up GEMVs (IOps.AddRmsNormMatMulShared,
    /// IOps.AddRmsNormGateUpSwiGlu): two launches fewer a layer, same bits either way. Off by default (RADLADS_NORM_GEMV=1
    /// turns it on): every block of those multi-wave GEMVs recomputes the norm before it can use its weights, and that
    /// cost more than the launches it saves (H200, 2026-11-27, graphs, device sampling: 7B RAD-RWKV7 4.31 → 5.52 ms,
    /// 0.5B 1.01 → 1.53 ms; NOTES, seventh session). Kept for a persistent kernel, where a block computes it once.
    /// </summary>
    public bool FuseNormGemv { get; set; } = Environment.GetEnvironmentVariable("RADLADS_NORM_GEMV") == "1";

    /// <summary>How many fused norm + GEMV kernels this backend has queued (tests: the decode path takes them).</summary>
    internal long NormGemvLaunches { get; set; }

    private void NotWhileRecording(string what)
    {
        if (recording is not null)
        {
            throw new InvalidOperationException($"{what} cannot be part of a recorded step (it needs the host)");
        }
    }

    /// <summary>A tensor with its own allocation; <paramref name="entry"/> false: the caller has entered already.</summary>
    private CudaTensor New(DType dtype, int[] shape, long bytes, bool entry = true)
    {
        if (entry)
        {
            Enter();
        }

        try
        {
            return new CudaTensor(this, new DeviceMemory(Device, bytes), 0, dtype, shape, owner: true);
        }
        catch (CudaException e) when (e.ErrorName == "CUDA_ERROR_OUT_OF_MEMORY")
        {
            var (free, total) = Device.MemoryInfo();
            throw new RadladsException(string.Create(CultureInfo.InvariantCulture,
                $"out of GPU memory: a tensor of shape [{string.Join(", ", shape)}] ({dtype}, {bytes:N0} bytes) does not fit; {free:N0} of {total:N0} bytes free on {Device.Name}"), e);
        }
    }

    private static void Float32(CudaTensor t, string op)
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

        Device.MakeCurrent();
        // A beside section an op left open (it threw before the join) still holds the blocks freed since its fork.
        JoinBeside();
        ropeTable?.Dispose();
        ReleaseCachedMemory();
        ids?.Dispose();
        sampleBuffer?.Dispose();
        stepDevice.Dispose();
        stepHost.Dispose();
        stepRead.Dispose();
        splitCounters.Dispose();
        Gemm?.Dispose();
        DisposePrefetchStream();
        DisposeSideStream();
        stream.Dispose();
        disposed = true;
    }
}
