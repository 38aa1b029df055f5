namespace Radlads.Checkpoints;

/// <summary>
/// The tensors of a Hugging Face checkpoint folder: a single <c>model.safetensors</c>, or shards listed
/// by <c>model.safetensors.index.json</c>. Files are memory-mapped and validated when opened.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    /// <summary>Opens every safetensors file of the folder. Errors name the file and what is wrong.</summary>
    public static Checkpoint Open(string directory) => throw new NotImplementedException();

    public string Directory => throw new NotImplementedException();

    public IReadOnlyCollection<string> Names => throw new NotImplementedException();

    public bool Contains(string name) => throw new NotImplementedException();

    /// <summary>The tensor, or a <see cref="RadladsException"/> naming the folder and the missing tensor.</summary>
    public TensorData Get(string name) => throw new NotImplementedException();

    /// <summary>The tensor, checked to have exactly <paramref name="expectedShape"/>.</summary>
    public TensorData Get(string name, params int[] expectedShape) => throw new NotImplementedException();

    /// <summary>
    /// A vector parameter of <paramref name="length"/> elements converted to fp32; any shape whose dims are
    /// all 1 except one equal to length is accepted ([C], [1,C], [1,1,C]).
    /// </summary>
    public float[] ReadVector(string name, int length) => throw new NotImplementedException();

    /// <summary>Any tensor converted to fp32, row-major, checked against <paramref name="expectedShape"/>.</summary>
    public float[] ReadFloat32(string name, params int[] expectedShape) => throw new NotImplementedException();

    public void Dispose() => throw new NotImplementedException();
}
