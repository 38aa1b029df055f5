using System.Numerics.Tensors;

namespace Radlads.Checkpoints;

/// <summary>Copies a mapped tensor of any supported dtype into a new fp32 array.</summary>
internal static unsafe class Float32Conversion
{
    public static float[] ToFloat32(TensorData tensor, string path)
    {
        var count = tensor.ElementCount;
        if (count > Array.MaxLength)
        {
            throw new RadladsException(
                $"{tensor.Name} in {path} has {count} elements, more than one fp32 array can hold ({Array.MaxLength})");
        }

        var result = new float[count];
        var n = (int)count;
        switch (tensor.DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>(tensor.Pointer, n).CopyTo(result);
                break;
            case DType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(tensor.Pointer, n), result);
                break;
            case DType.BF16:
                Bf16.ToSingle(new ReadOnlySpan<ushort>(tensor.Pointer, n), result);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(tensor), tensor.DType, "unknown dtype");
        }

        return result;
    }
}
