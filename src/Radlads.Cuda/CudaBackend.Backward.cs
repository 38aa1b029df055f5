using Radlads.Ops;

namespace Radlads.Cuda;

public sealed partial class CudaBackend
{
    private CudaBackwardOps? backwardOps;

    /// <summary>The backward and training ops on this GPU (kernels/backward*.cu), resolved on first use.</summary>
    public IBackwardOps BackwardOps
    {
        get
        {
            Enter();
            return LazyInitializer.EnsureInitialized(ref backwardOps, () => new CudaBackwardOps(this));
        }
    }
}
