namespace Radlads.Ops;

/// <summary>How a weight matrix is stored, which decides what <see cref="IOps.MatMul"/> computes.</summary>
public enum WeightLayout
{
    /// <summary>PyTorch Linear, [out, in]: y = x·Wᵀ.</summary>
    OutIn,

    /// <summary>LoRA factors such as <c>w1 [C, R]</c>, [in, out]: y = x·W.</summary>
    InOut,
}
