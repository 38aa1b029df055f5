namespace Radlads.Conversion;

/// <summary>The student architectures <see cref="StudentConverter"/> builds from a Qwen2 teacher.</summary>
public enum StudentArchitecture
{
    /// <summary><c>rad-rwkv6</c> → <c>rwkv6qwen2</c> (spec §3).</summary>
    RadRwkv6,

    /// <summary><c>rad-rwkv7</c> → <c>rwkv7qwen2</c> (spec §4).</summary>
    RadRwkv7,
}

/// <summary>How the student keeps its recurrent state in range (spec §4, variants B and G; §3.1 ln_x ablation for v6).</summary>
public enum StudentVariant
{
    /// <summary><c>balance_state: true</c>, no GroupNorm: k·(1−w) (v6), κ = k/‖k‖ and k·(1−w+a) with ×N^−1/2 (v7).</summary>
    Balanced,

    /// <summary><c>balance_state: false</c>, <c>groupnorm_att: true</c>, <c>ln_x</c> = 1 / 0 (v7 variant G; the v6 ablation).</summary>
    GroupNorm,
}

public static class StudentKindNames
{
    /// <summary>The command-line spelling: rad-rwkv6, rad-rwkv7.</summary>
    public static string CliName(this StudentArchitecture architecture) => architecture switch
    {
        StudentArchitecture.RadRwkv6 => "rad-rwkv6",
        StudentArchitecture.RadRwkv7 => "rad-rwkv7",
        _ => throw new ArgumentOutOfRangeException(nameof(architecture)),
    };

    /// <summary>The checkpoint's <c>model_type</c>.</summary>
    public static string ModelType(this StudentArchitecture architecture) => architecture switch
    {
        StudentArchitecture.RadRwkv6 => "rwkv6qwen2",
        StudentArchitecture.RadRwkv7 => "rwkv7qwen2",
        _ => throw new ArgumentOutOfRangeException(nameof(architecture)),
    };

    /// <summary>The command-line spelling: balanced, groupnorm.</summary>
    public static string CliName(this StudentVariant variant) => variant switch
    {
        StudentVariant.Balanced => "balanced",
        StudentVariant.GroupNorm => "groupnorm",
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    };
}
