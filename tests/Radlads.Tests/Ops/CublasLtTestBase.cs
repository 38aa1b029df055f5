using Radlads.Cuda;
using Radlads.Ops;
using Radlads.Tests.Models;

namespace Radlads.Tests.Ops;

/// <summary>
/// What the CUDA tests of the cuBLASLt paths share: one backend with cuBLASLt forced on from two rows
/// (<see cref="CudaBackend.GemmMinRows"/> = 2; skipped without a GPU or cuBLASLt), tensors owned and freed with it,
/// inputs uploaded and outputs poisoned with NaN (an unwritten element fails).
/// </summary>
public abstract class CublasLtTestBase : IDisposable
{
    private readonly List<IDisposable> owned = [];
    private CudaBackend? backend;

    protected CudaBackend Backend
    {
        get
        {
            if (backend is null)
            {
                backend = CudaAvailability.Backend();
                Assert.SkipWhen(!backend.HasGemmLibrary, backend.GemmStatus);
                backend.GemmMinRows = 2;
            }

            return backend;
        }
    }

    public void Dispose()
    {
        foreach (var d in owned)
        {
            d.Dispose();
        }

        backend?.Dispose();
        GC.SuppressFinalize(this);
    }

    protected T Own<T>(T d)
        where T : IDisposable
    {
        owned.Add(d);
        return d;
    }

    protected Tensor In(float[] values, params int[] shape) => Own(Backend.FromFloats(values, shape));

    protected Tensor Out(params int[] shape)
    {
        var t = Own(Backend.Allocate(shape));
        Backend.Upload(Enumerable.Repeat(float.NaN, (int)t.ElementCount).ToArray(), t);
        return t;
    }
}
