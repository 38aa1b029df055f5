using Radlads.Ops;

namespace Radlads.Training;

/// <summary>
/// One trainable fp32 parameter on the training backend: the master value and its gradient accumulator (same shape).
/// <see cref="Name"/> is the student checkpoint's tensor name, so the trained values can be written back over it.
/// </summary>
public sealed class Parameter(string name, Tensor value, Tensor grad) : IDisposable
{
    public string Name { get; } = name;

    public Tensor Value { get; } = value;

    public Tensor Grad { get; } = grad;

    public void Dispose()
    {
        Value.Dispose();
        Grad.Dispose();
    }
}

/// <summary>
/// What the training loop optimises (step 1: the per-layer attention alignment). The loop owns the optimiser, the
/// schedule, clipping, checkpoints and progress; the objective owns the model maths (forward, loss, backward).
/// </summary>
public interface ITrainingObjective : IDisposable
{
    /// <summary>Every trained parameter, in a fixed order (checkpoints and optimiser state follow it).</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>
    /// Forward and backward on <paramref name="sequences"/> windows of <paramref name="length"/> tokens each
    /// (<paramref name="tokens"/> holds sequences × length ids, row-major). Adds the gradient of the mean loss over
    /// the batch into each <see cref="Parameter.Grad"/> (the loop zeroes them) and returns that mean loss.
    /// </summary>
    double ForwardBackward(ReadOnlySpan<int> tokens, int sequences, int length);

    /// <summary>
    /// The parts of the last <see cref="ForwardBackward"/>'s loss, one per layer (their mean is the loss), for the
    /// per-layer log; empty (the default) when the objective has no such parts. The length never changes.
    /// </summary>
    IReadOnlyList<double> LayerLosses => [];
}
