using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>IOps.Prefetch: L2 prefetches of weights on a side stream (CudaBackend.Prefetch.cs).</summary>
internal sealed partial class CudaOps
{
    public void Prefetch(params Tensor[][] groups) => backend.Prefetch(groups);

    public void BeginBeside() => backend.BeginBeside();

    public void EndBeside() => backend.EndSide();

    public void JoinBeside() => backend.JoinBeside();
}
