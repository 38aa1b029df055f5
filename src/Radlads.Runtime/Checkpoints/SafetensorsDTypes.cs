namespace Radlads.Checkpoints;

/// <summary>
/// Every dtype spelling the safetensors format defines, with its width in bits. Only F32, F16 and BF16
/// map to a <see cref="DType"/>; the rest are accepted in headers and reported as unsupported when read.
/// </summary>
internal static class SafetensorsDTypes
{
    private static readonly Dictionary<string, int> BitsByName = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 8,
        ["F4"] = 4,
        ["F6_E2M3"] = 6,
        ["F6_E3M2"] = 6,
        ["U8"] = 8,
        ["I8"] = 8,
        ["F8_E5M2"] = 8,
        ["F8_E4M3"] = 8,
        ["F8_E8M0"] = 8,
        ["I16"] = 16,
        ["U16"] = 16,
        ["F16"] = 16,
        ["BF16"] = 16,
        ["I32"] = 32,
        ["U32"] = 32,
        ["F32"] = 32,
        ["C64"] = 64,
        ["F64"] = 64,
        ["I64"] = 64,
        ["U64"] = 64,
    };

    /// <summary>"F32, F16, BF16": the dtypes <see cref="Checkpoint"/> can read.</summary>
    public static string SupportedList { get; } = string.Join(", ", Enum.GetNames<DType>());

    public static string KnownList { get; } = string.Join(", ", BitsByName.Keys);

    /// <summary>Element width in bits, or false for a name the format does not define.</summary>
    public static bool TryGetBits(string name, out int bits) => BitsByName.TryGetValue(name, out bits);

    public static bool TryGetSupported(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32":
                dtype = DType.F32;
                return true;
            case "F16":
                dtype = DType.F16;
                return true;
            case "BF16":
                dtype = DType.BF16;
                return true;
            default:
                dtype = default;
                return false;
        }
    }
}
