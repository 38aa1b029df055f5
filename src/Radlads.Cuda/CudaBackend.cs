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
/// </summary>
public sealed unsafe class CudaBackend : IBackend
{
    private readonly CudaStream stream;
    private readonly Lock idsLock = new();
    private DeviceMemory? ids;
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
            $"CUDA device {Device.Ordinal}: {Device.Name} (sm_{Device.ComputeCapability}, {Device.TotalMemory / (1024.0 * 1024 * 1024):F1} GiB, {Device.MultiprocessorCount} SMs), driver CUDA {Device.Driver.DriverVersionText} ({Device.Driver.LibraryName}), NVRTC {nvrtc.Version} ({nvrtc.LibraryName}), kernels {Library.Target}");
    }

    public string Name => "cuda";

    public string Description { get; }

    public IOps Ops { get; }

    public CudaDevice Device { get; }

    public KernelLibrary Library { get; }

    internal Kernels Kernels { get; }

    /// <summary>The CUstream every op of this backend is queued on.</summary>
    public nint Stream => stream.Handle;

    /// <summary>Binds the device's context to the calling thread; every entry point calls it first.</summary>
    internal void Enter()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        Device.MakeCurrent();
    }

    internal void SynchronizeBeforeFree()
    {
        if (!disposed)
        {
            Device.MakeCurrent();
            stream.Synchronize();
        }
    }

    /// <summary>Waits until everything queued on this backend's stream has run.</summary>
    public void Synchronize()
    {
        Enter();
        stream.Synchronize();
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

        var tensor = New(DType.F32, (int[])shape.Clone(), count * sizeof(float));
        if (count > 0)
        {
            Device.Driver.SetAsync(tensor.Pointer, 0, count, Stream);
        }

        return tensor;
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

    internal void Launch(nint function, string name, uint gridX, uint gridY, uint block, uint sharedBytes, void** arguments) =>
        Device.Driver.Launch(function, gridX, gridY, 1, block, 1, 1, sharedBytes, Stream, arguments, name);

    private CudaTensor New(DType dtype, int[] shape, long bytes)
    {
        Enter();
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
        stream.Synchronize();
        ids?.Dispose();
        stream.Dispose();
        disposed = true;
    }
}
