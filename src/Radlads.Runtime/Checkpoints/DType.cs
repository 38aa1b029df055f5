namespace Radlads.Checkpoints;

/// <summary>Element types the runtime computes with. Other safetensors dtypes are reported as unsupported.</summary>
public enum DType
{
    F32,
    F16,
    BF16,
}

public static class DTypeExtensions
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType dtype) => dtype switch
    {
        DType.F32 => 4,
        DType.F16 => 2,
        DType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>The safetensors header spelling ("F32", "F16", "BF16").</summary>
    public static string SafetensorsName(this DType dtype) => dtype.ToString();
}
