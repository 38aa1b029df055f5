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

    /// <summary>
    /// Several sequences, one token each, sequence i on row i: the mixers then run each per-sequence op once for all
    /// rows (IOps.RopeRows, AttentionDecode, Wkv7Decode …) instead of once per sequence. A single sequence keeps the
    /// per-segment path (its steps can be recorded as a CUDA graph).
    /// </summary>
    public bool BatchedDecode { get; } = segments.Count > 1 && segments.Select((s, i) => s.RowCount == 1 && s.RowStart == i).All(b => b);

    /// <summary>Each sequence's absolute position (the start of its segment), in segment order.</summary>
    public int[] Positions { get; } = [.. segments.Select(s => s.StartPosition)];

    /// <summary>Tensor <paramref name="index"/> of the current layer's state of every sequence, in segment order.</summary>
    public Tensor[] LayerTensors(int index) => [.. Segments.Select(s => s.State.Layers[Layer].Tensors[index])];

    /// <summary>Index of the layer being run (set by the model before each mixer call).</summary>
    public int Layer { get; set; } = layerIndex;

    /// <summary>RAD-RWKV7 value of layer 0 for each token [T, A], read by every later layer.</summary>
    public Tensor? ValueFirst { get; set; }

    /// <summary>An fp32 tensor that lives until the current layer ends; contents undefined (ops write their outputs in full).</summary>
    public Tensor Scratch(params int[] shape)
    {
        var t = Backend.AllocateUninitialized(shape);
        scratch.Add(t);
        return t;
    }

    /// <summary>
    /// A LoRA branch (x·A)·B with an optional activation between the factors; A [C, R] and B [R, M] are stored
    /// in×out. Returns [T, M].
    /// </summary>
    public Tensor Lora(Tensor x, Tensor a, Tensor b, Action<Tensor, Tensor>? activation = null)
    {
        var hidden = Scratch(Rows, a.Shape[1]);
        Ops.MatMul(x, a, null, hidden, WeightLayout.InOut);
        activation?.Invoke(hidden, hidden);
        var y = Scratch(Rows, b.Shape[1]);
        Ops.MatMul(hidden, b, null, y, WeightLayout.InOut);
        return y;
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
