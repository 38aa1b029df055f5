using Radlads.Checkpoints;

namespace Radlads.Training;

/// <summary>
/// Where a student mixer's initial parameter values come from: the student checkpoint in training, a dictionary of
/// values in tests. Names are full checkpoint names (<c>model.layers.{l}.self_attn.w0</c>).
/// </summary>
internal interface IParameterSource
{
    bool Has(string name);

    /// <summary>The stored shape (e.g. [1, 1, C] for a vector).</summary>
    int[] Shape(string name);

    /// <summary>The values as fp32, row-major; <paramref name="count"/> elements are expected.</summary>
    float[] Read(string name, long count);
}

/// <summary>Parameters read from an open checkpoint (any stored dtype, converted to fp32 exactly).</summary>
internal sealed class CheckpointParameterSource(Checkpoint checkpoint) : IParameterSource
{
    public bool Has(string name) => checkpoint.Contains(name);

    public int[] Shape(string name) => checkpoint.Get(name).Shape;

    public float[] Read(string name, long count)
    {
        var data = checkpoint.Get(name);
        if (data.ElementCount != count)
        {
            throw new RadladsException($"{name} in {checkpoint.Directory} has shape {data.ShapeText} ({data.ElementCount} elements), expected {count} elements");
        }

        return Float32Conversion.ToFloat32(data, checkpoint.Directory);
    }
}
