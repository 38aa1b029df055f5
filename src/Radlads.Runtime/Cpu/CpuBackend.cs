using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Cpu;

/// <summary>
/// The reference backend: clear code, fp32 accumulation, vectorised with System.Numerics.Tensors and
/// parallel across cores. Weights stay in the memory-mapped checkpoint and are converted as they are read.
/// </summary>
public sealed class CpuBackend : IBackend
{
    public string Name => "cpu";

    public string Description => $"CPU, {Environment.ProcessorCount} threads, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}";

    public IOps Ops { get; } = new CpuOps();

    /// <summary>The hand-derived backward of the student-mixer ops and the training ops.</summary>
    public IBackwardOps BackwardOps { get; } = new CpuBackwardOps();

    public Tensor Allocate(params int[] shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d);
            count *= d;
        }

        if (count > Array.MaxLength)
        {
            throw new RadladsException($"a CPU tensor of shape [{string.Join(", ", shape)}] exceeds {Array.MaxLength} elements");
        }

        return new CpuTensor(new float[count], 0, (int[])shape.Clone());
    }

    /// <summary>
    /// Views the weight's bytes where they are (no copy: they must outlive the tensor); a shape that claims more bytes
    /// than the data holds would read past its end, so it is refused.
    /// </summary>
    public unsafe Tensor LoadWeight(TensorData data)
    {
        long elements = data.Shape.Aggregate(1L, (p, d) => p * d);
        if (data.Shape.Any(d => d < 0) || elements * data.DType.Size() != data.ByteLength)
        {
            throw new ArgumentException($"weight '{data.Name}': shape {data.ShapeText} of {data.DType} does not match its {data.ByteLength} bytes");
        }

        return new CpuTensor(data.Pointer, data.DType, (int[])data.Shape.Clone());
    }

    public Tensor FromFloats(ReadOnlySpan<float> values, params int[] shape)
    {
        var t = (CpuTensor)Allocate(shape);
        if (values.Length != t.ElementCount)
        {
            throw new ArgumentException($"{values.Length} values for shape {t.ShapeText}");
        }

        values.CopyTo(t.Floats);
        return t;
    }

    public void Upload(ReadOnlySpan<float> source, Tensor destination) => source.CopyTo(((CpuTensor)destination).Floats);

    public void Download(Tensor source, Span<float> destination) => ((CpuTensor)source).ReadRange(0, destination[..checked((int)source.ElementCount)]);

    public void Copy(Tensor source, Tensor destination) => ((CpuTensor)source).Floats.CopyTo(((CpuTensor)destination).Floats);

    public void Dispose()
    {
    }
}
