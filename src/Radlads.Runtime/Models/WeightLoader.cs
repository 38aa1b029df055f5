using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Models;

/// <summary>Reads named tensors from a checkpoint onto a backend, checking shapes, and counts what it loaded.</summary>
internal sealed class WeightLoader(Checkpoint checkpoint, IBackend backend)
{
    private readonly HashSet<string> used = [];

    public Checkpoint Checkpoint { get; } = checkpoint;

    public IBackend Backend { get; } = backend;

    /// <summary>Parameters in the tensors the model uses.</summary>
    public long ParameterCount { get; private set; }

    public IReadOnlySet<string> Used => used;

    public bool Has(string name) => Checkpoint.Contains(name);

    /// <summary>A matrix kept in its stored dtype, checked to be [rows, cols] (or the given shape).</summary>
    public Tensor Matrix(string name, params int[] shape)
    {
        var data = Checkpoint.Get(name, shape);
        Count(name, data.ElementCount);
        return Backend.LoadWeight(data);
    }

    /// <summary>A vector parameter as fp32 [length]; [1,1,length]-style shapes are accepted.</summary>
    public Tensor Vector(string name, int length)
    {
        var values = Checkpoint.ReadVector(name, length);
        Count(name, length);
        return Backend.FromFloats(values, length);
    }

    /// <summary>Several vectors stacked into one fp32 tensor [names.Length, length].</summary>
    public Tensor Stack(IReadOnlyList<string> names, int length)
    {
        var values = new float[names.Count * length];
        for (int i = 0; i < names.Count; i++)
        {
            Checkpoint.ReadVector(names[i], length).CopyTo(values, i * length);
            Count(names[i], length);
        }

        return Backend.FromFloats(values, names.Count, length);
    }

    /// <summary>The second dimension of a 2-D tensor: LoRA ranks are read from shapes, never trusted from config.</summary>
    public int Columns(string name)
    {
        var shape = Checkpoint.Get(name).Shape;
        if (shape.Length != 2)
        {
            throw new RadladsException($"tensor '{name}' in {Checkpoint.Directory} has shape [{string.Join(", ", shape)}], expected 2 dimensions");
        }

        return shape[1];
    }

    private void Count(string name, long elements)
    {
        if (used.Add(name))
        {
            ParameterCount += elements;
        }
    }
}
