using System.Globalization;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Radlads.Ilgpu.Kernels;

namespace Radlads.Ilgpu;

/// <summary>
/// One ILGPU accelerator with every kernel loaded, opened once per process and kind and shared by all backends of
/// that kind (each backend has its own stream and memory). Opening compiles the kernels, which is the expensive part:
/// seconds on a GPU, far less than a model load, and never again in the process.
/// </summary>
internal sealed class IlgpuDevice
{
    private static readonly Lock OpenGate = new();
    private static readonly Dictionary<IlgpuDeviceKind, IlgpuDevice> Opened = [];

    private IlgpuDevice(IlgpuDeviceKind kind, Context context, Accelerator accelerator)
    {
        Kind = kind;
        Context = context;
        Accelerator = accelerator;
        // A group of up to 256 threads, a whole number of warps (the CPU simulator's default device allows 16).
        int warp = accelerator.WarpSize;
        GroupSize = Math.Max(warp, Math.Min(256, accelerator.MaxNumThreadsPerGroup) / warp * warp);
        if (GroupSize / warp > GroupedKernels.MaxWarpsPerGroup || GroupSize > GroupedKernels.MaxGroupSize)
        {
            throw new RadladsException(
                $"ILGPU device {accelerator.Name} reports warps of {warp} threads; the kernels need warps of at most {GroupedKernels.MaxGroupSize} threads and at most {GroupedKernels.MaxWarpsPerGroup} per group");
        }

        Kernels = new KernelSet(accelerator);
        DummyFloats = accelerator.Allocate1D<float>(4);
        DummyHalves = accelerator.Allocate1D<ushort>(4);
        Zero = accelerator.Allocate1D<int>(1);
        Zero.MemSetToZero();
        accelerator.Synchronize();
    }

    public IlgpuDeviceKind Kind { get; }

    public Context Context { get; }

    public Accelerator Accelerator { get; }

    public KernelSet Kernels { get; }

    /// <summary>Threads per group of the explicitly grouped kernels.</summary>
    public int GroupSize { get; }

    public int WarpSize => Accelerator.WarpSize;

    /// <summary>Serialises work on the accelerator across threads (tests run backends of one device in parallel).</summary>
    public Lock Sync { get; } = new();

    /// <summary>Stand-ins for the unused half of a <see cref="WeightView"/>.</summary>
    public MemoryBuffer1D<float, Stride1D.Dense> DummyFloats { get; }

    public MemoryBuffer1D<ushort, Stride1D.Dense> DummyHalves { get; }

    /// <summary>One int 0 on the accelerator: the position an eager RoPE call adds its start to (see ElementwiseKernels.Rope).</summary>
    public MemoryBuffer1D<int, Stride1D.Dense> Zero { get; }

    /// <summary>
    /// Binds the accelerator to the calling thread. For CUDA this always sets ILGPU's context current: ILGPU's own
    /// <see cref="Accelerator.Bind"/> skips that when it believes the thread is already bound, which is wrong after
    /// other code (our CUDA backend, on the primary context) changed the thread's current context, and launches then
    /// fail with "invalid resource handle".
    /// </summary>
    public void MakeCurrent()
    {
        Accelerator.Bind();
        if (Accelerator is CudaAccelerator cuda)
        {
            var error = CudaAPI.CurrentAPI.SetCurrentContext(cuda.NativePtr);
            if (error != CudaError.CUDA_SUCCESS)
            {
                throw new RadladsException($"ILGPU: cuCtxSetCurrent failed: {error}");
            }
        }
    }

    /// <summary>One line: accelerator, its limits, the native library it uses, and the kernel compile time.</summary>
    public string Describe()
    {
        var a = Accelerator;
        string details = a switch
        {
            CudaAccelerator cuda => string.Create(CultureInfo.InvariantCulture,
                $"{cuda.Architecture}, PTX ISA {cuda.InstructionSet}, driver {cuda.DriverVersion}, {a.MemorySize / (1024.0 * 1024 * 1024):F1} GiB, {a.NumMultiprocessors} SMs"),
            CLAccelerator cl => string.Create(CultureInfo.InvariantCulture,
                $"{cl.Vendor}, OpenCL C {cl.CVersion}, {a.MemorySize / (1024.0 * 1024 * 1024):F1} GiB, {a.NumMultiprocessors} compute units"),
            _ => $"simulator: warp {a.WarpSize}, {a.MaxNumThreadsPerGroup} threads per group, {a.NumMultiprocessors} multiprocessor(s)",
        };
        string library = Kind switch
        {
            IlgpuDeviceKind.Cuda => NativeLibraries.Resolved.TryGetValue("cuda", out var l) ? $", {l}" : "",
            IlgpuDeviceKind.OpenCL => NativeLibraries.Resolved.TryGetValue("OpenCL", out var c) || NativeLibraries.Resolved.TryGetValue("opencl", out c) ? $", {c}" : "",
            _ => "",
        };
        var version = typeof(Context).Assembly.GetName().Version;
        return string.Create(CultureInfo.InvariantCulture,
            $"ILGPU {version?.ToString(3)} {Kind.Name()}: {a.Name} ({details}{library}); {KernelSet.Count} kernels compiled in {Kernels.CompileTime.TotalSeconds:F2} s (once per process)");
    }

    /// <summary>The device of <paramref name="kind"/>, opened (and its kernels compiled) on first use.</summary>
    public static IlgpuDevice Get(IlgpuDeviceKind kind)
    {
        lock (OpenGate)
        {
            if (kind == IlgpuDeviceKind.Auto)
            {
                var reasons = new List<string>();
                foreach (var candidate in (ReadOnlySpan<IlgpuDeviceKind>)[IlgpuDeviceKind.Cuda, IlgpuDeviceKind.OpenCL, IlgpuDeviceKind.Cpu])
                {
                    try
                    {
                        return GetLocked(candidate);
                    }
                    catch (RadladsException e)
                    {
                        reasons.Add(e.Message);
                    }
                }

                throw new RadladsException("ILGPU found no accelerator: " + string.Join("; ", reasons));
            }

            return GetLocked(kind);
        }
    }

    private static IlgpuDevice GetLocked(IlgpuDeviceKind kind)
    {
        if (Opened.TryGetValue(kind, out var device))
        {
            return device;
        }

        NativeLibraries.Install();
        Context? context = null;
        try
        {
            context = Context.Create(builder =>
            {
                builder.Optimize(OptimizationLevel.O2).EnableAlgorithms();
                switch (kind)
                {
                    case IlgpuDeviceKind.Cuda:
                        builder.Cuda();
                        break;
                    case IlgpuDeviceKind.OpenCL:
                        builder.OpenCL();
                        break;
                    default:
                        // A small simulated device: warps of 4 and groups of 2 warps still exercise the kernels'
                        // independence from warp and group size, and each simulated thread is an OS thread that every
                        // barrier must wake, so fewer threads run far faster on a small machine.
                        builder.CPU(new CPUDevice(numThreadsPerWarp: 4, numWarpsPerMultiprocessor: 2, numMultiprocessors: 1));
                        break;
                }
            });
            var type = kind switch
            {
                IlgpuDeviceKind.Cuda => AcceleratorType.Cuda,
                IlgpuDeviceKind.OpenCL => AcceleratorType.OpenCL,
                _ => AcceleratorType.CPU,
            };
            // Among OpenCL devices a GPU comes first (a machine may also offer a CPU OpenCL runtime).
            var found = context.Devices.Where(d => d.AcceleratorType == type)
                .OrderByDescending(d => d is CLDevice cl && cl.DeviceType == CLDeviceType.CL_DEVICE_TYPE_GPU)
                .FirstOrDefault()
                ?? throw new RadladsException(Missing(kind));
            var accelerator = found.CreateAccelerator(context);
            device = new IlgpuDevice(kind, context, accelerator);
            Opened[kind] = device;
            return device;
        }
        catch (RadladsException)
        {
            context?.Dispose();
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            context?.Dispose();
            throw new RadladsException($"ILGPU could not open a {kind.Name()} accelerator: {e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}", e);
        }
    }

    /// <summary>Why ILGPU listed no device of <paramref name="kind"/>, as precisely as this machine lets us say.</summary>
    private static string Missing(IlgpuDeviceKind kind)
    {
        switch (kind)
        {
            case IlgpuDeviceKind.Cuda:
                {
                    string import = OperatingSystem.IsWindows() ? "nvcuda" : "cuda";
                    var library = NativeLibraries.FindLoadable(import, out var tried);
                    return library is null
                        ? $"no CUDA device for ILGPU: the CUDA driver library is missing (tried {tried}); install the NVIDIA driver"
                        : $"no CUDA device for ILGPU: the driver library {library} loaded but ILGPU found no usable GPU (none present, cuInit failed, or an architecture ILGPU 1.5.3 does not know)";
                }

            case IlgpuDeviceKind.OpenCL:
                {
                    var library = NativeLibraries.FindLoadable("OpenCL", out var tried);
                    return library is null
                        ? $"no OpenCL device for ILGPU: no OpenCL loader library (tried {tried})"
                        : $"no OpenCL device for ILGPU: {library} loaded but no platform offers a device ILGPU supports (OpenCL 2.0+ with generic address space, or an ICD is missing)";
                }

            default:
                return "ILGPU listed no CPU accelerator";
        }
    }
}
