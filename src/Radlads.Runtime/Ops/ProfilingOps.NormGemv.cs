namespace Radlads.Ops;

/// <summary>
/// The residual norm fused into the GEMVs after it (<see cref="IOps.AddRmsNormMatMulShared"/>,
/// <see cref="IOps.AddRmsNormGateUpSwiGlu"/>, <see cref="IOps.AddRmsNormMlp"/>): forwarded as one call so the wrapped
/// backend's one-launch version runs.
/// </summary>
public sealed partial class ProfilingOps
{
    public void AddRmsNormMatMulShared(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed,
        IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
    {
        long start = Start();
        inner.AddRmsNormMatMulShared(h, branch, normWeight, eps, normed, weights, biases, outputs);
        Time(nameof(AddRmsNormMatMulShared), start);
    }

    public void AddRmsNormGateUpSwiGlu(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp,
        Tensor y, Tensor upScratch)
    {
        long start = Start();
        inner.AddRmsNormGateUpSwiGlu(h, branch, normWeight, eps, normed, wGate, wUp, y, upScratch);
        Time(nameof(AddRmsNormGateUpSwiGlu), start);
    }

    public void AddRmsNormMlp(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp, Tensor wDown,
        Tensor act, Tensor upScratch, Tensor y)
    {
        long start = Start();
        inner.AddRmsNormMlp(h, branch, normWeight, eps, normed, wGate, wUp, wDown, act, upScratch, y);
        Time(nameof(AddRmsNormMlp), start);
    }
}
