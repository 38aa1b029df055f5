using Radlads.Ops;

namespace Radlads.Models;

/// <summary>What one forward call shares across layers: the segments, the backend, and RAD-RWKV7's v_first.</summary>
internal sealed class ForwardPass(IBackend backend, IReadOnlyList<Segment> segments, int layerIndex) : IDisposable
{
    private readonly List<Tensor> scratch = [];

    public IBackend Backend { get; } = backend;

    public IOps Ops => Backend.Ops;

    public IReadOnlyList<Segment> Segments { get; } = segments;

    public int Rows { get; } = segments.Sum(s => s.RowCount);

    /// <summary>Index of the layer being run (set by the model before each mixer call).</summary>
    public int Layer { get; set; } = layerIndex;

    /// <summary>RAD-RWKV7 value of layer 0 for each token [T, A], read by every later layer.</summary>
    public Tensor? ValueFirst { get; set; }

    /// <summary>A zeroed fp32 tensor that lives until the current layer ends.</summary>
    public Tensor Scratch(params int[] shape)
    {
        var t = Backend.Allocate(shape);
        scratch.Add(t);
        return t;
    }

    /// <summary>Frees the scratch tensors of the layer that just ran.</summary>
    public void EndLayer()
    {
        foreach (var t in scratch)
        {
            t.Dispose();
        }

        scratch.Clear();
    }

    public void Dispose()
    {
        EndLayer();
        ValueFirst?.Dispose();
    }
}
