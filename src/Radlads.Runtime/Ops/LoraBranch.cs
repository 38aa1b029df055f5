namespace Radlads.Ops;

/// <summary>The activation between the two factors of a LoRA branch (<see cref="IOps.LoraSet"/>).</summary>
public enum LoraInner
{
    /// <summary>h = x·A.</summary>
    None,

    /// <summary>h = tanh(x·A) (RAD-RWKV decay).</summary>
    Tanh,

    /// <summary>h = σ(x·A) (RAD-RWKV7 low-rank gate).</summary>
    Sigmoid,
}

/// <summary>What a LoRA branch applies to its output z = h·B (<see cref="IOps.LoraSet"/>); the offset is a vector [M].</summary>
public enum LoraOuter
{
    /// <summary>y = z.</summary>
    None,

    /// <summary>y = σ(offset + z): <see cref="IOps.AddSigmoid"/> (RAD-RWKV7 in-context rate a0, value residual v0).</summary>
    AddSigmoid,

    /// <summary>y = exp(−e^−0.5 · σ(offset + z)): <see cref="IOps.Rwkv7Decay"/> with w0 = offset.</summary>
    Rwkv7Decay,

    /// <summary>y = exp(max(−exp(offset + z), −5)): <see cref="IOps.Rwkv6Decay"/> with bias = offset.</summary>
    Rwkv6Decay,
}

/// <summary>
/// One LoRA branch of <see cref="IOps.LoraSet"/>: y = outer(inner(x·Down)·Up). Down = A [C, R] and Up = B [R, M] are
/// stored in×out (as the checkpoints' LoRA tensors), any weight dtype. Hidden [T, R] and Y [T, M] are fp32 and
/// written: Hidden ends up holding inner(x·A) (the caller's scratch, because an op cannot allocate), Y the result.
/// Offset [M] (any dtype) is required by every <see cref="LoraOuter"/> but None, and must be null for None.
/// </summary>
public readonly record struct LoraBranch(Tensor Down, Tensor Up, Tensor Hidden, Tensor Y,
    LoraInner Inner = LoraInner.None, LoraOuter Outer = LoraOuter.None, Tensor? Offset = null);
