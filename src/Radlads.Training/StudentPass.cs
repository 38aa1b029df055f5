using Radlads.Ops;

namespace Radlads.Training;

/// <summary>
/// What one training forward/backward shares across the student layers: the backend, the windows (independent
/// sequences of equal length, rows [i·Length, (i+1)·Length) of every [Windows·Length, ·] activation, each from position
/// 0 and a zero state), and RAD-RWKV7's v_first with its gradient.
/// </summary>
internal sealed class StudentPass(IBackend backend, IBackwardOps backward, int windows, int length) : IDisposable
{
    public IBackend Backend { get; } = backend;

    public IOps Ops => Backend.Ops;

    public IBackwardOps Back { get; } = backward;

    public int Windows { get; } = windows;

    public int Length { get; } = length;

    public int Rows => Windows * Length;

    /// <summary>RAD-RWKV7: layer 0's value after GQA [Rows, A], read by every later layer (owned by layer 0's activations).</summary>
    public Tensor? ValueFirst { get; set; }

    /// <summary>RAD-RWKV7: ∂loss/∂v_first [Rows, A], accumulated by the later layers' backward, read by layer 0's.</summary>
    public Tensor? ValueFirstGradient { get; set; }

    /// <summary>Rows of window <paramref name="i"/>.</summary>
    public Tensor Window(Tensor t, int i) => t.Rows(i * Length, Length);

    public void Dispose()
    {
        ValueFirstGradient?.Dispose();
        ValueFirstGradient = null;
    }
}

/// <summary>Tensors of one layer's training forward that its backward reads (or a backward's temporaries); freed together.</summary>
internal class Scratch(IBackend backend) : IDisposable
{
    private readonly List<Tensor> tensors = [];

    /// <summary>Contents undefined: for outputs an op writes in full.</summary>
    public Tensor New(params int[] shape) => Keep(backend.AllocateUninitialized(shape));

    /// <summary>Zero-filled: for states, accumulated gradients and buffers written in parts.</summary>
    public Tensor Zeros(params int[] shape) => Keep(backend.Allocate(shape));

    public Tensor Keep(Tensor t)
    {
        tensors.Add(t);
        return t;
    }

    public void Dispose()
    {
        foreach (var t in tensors)
        {
            t.Dispose();
        }

        tensors.Clear();
    }
}
