using Radlads.Ops;

namespace Radlads.Cpu;

/// <summary>The training ops of <see cref="IBackwardOps"/> (loss, fill, norms, AdamW): filled in by the trainer work of issue #7.</summary>
public sealed partial class CpuBackwardOps
{
    public double AlignmentLoss(Tensor teacher, Tensor student, float gradScale, Tensor? dStudent) =>
        throw new NotImplementedException("AlignmentLoss: not written yet (issue #7)");

    public void Fill(Tensor x, float value) => throw new NotImplementedException("Fill: not written yet (issue #7)");

    public double SumOfSquares(Tensor x) => throw new NotImplementedException("SumOfSquares: not written yet (issue #7)");

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
        float weightDecay, float gradScale, int step) => throw new NotImplementedException("AdamW: not written yet (issue #7)");
}
