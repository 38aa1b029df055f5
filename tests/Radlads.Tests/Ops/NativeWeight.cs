using System.Runtime.InteropServices;
using Radlads.Checkpoints;

namespace Radlads.Tests.Ops;

/// <summary>
/// Weight bytes in native memory, as a checkpoint would hold them, in bf16, f16 or f32.
/// <see cref="Values"/> are the values after rounding to that dtype, for the float64 references.
/// </summary>
public sealed unsafe class NativeWeight : IDisposable
{
    private readonly byte* memory;

    public NativeWeight(float[] values, DType dtype, params int[] shape)
    {
        DType = dtype;
        Shape = shape;
        memory = (byte*)NativeMemory.Alloc((nuint)(values.Length * dtype.Size()));
        Values = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            switch (dtype)
            {
                case DType.F32:
                    ((float*)memory)[i] = values[i];
                    Values[i] = values[i];
                    break;
                case DType.F16:
                    ((Half*)memory)[i] = (Half)values[i];
                    Values[i] = (float)((Half*)memory)[i];
                    break;
                default:
                    ushort bits = Bf16.FromSingle(values[i]);
                    ((ushort*)memory)[i] = bits;
                    Values[i] = BitConverter.UInt32BitsToSingle((uint)bits << 16);
                    break;
            }
        }
    }

    public DType DType { get; }

    public int[] Shape { get; }

    public float[] Values { get; }

    public TensorData Data => new("test", DType, Shape, memory, Values.Length * (long)DType.Size());

    public void Dispose() => NativeMemory.Free(memory);
}
