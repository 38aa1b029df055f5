namespace Radlads.Ops;

/// <summary>
/// <see cref="IOps.LoraSet"/> as the composition of existing ops: per branch MatMul (in×out), Tanh or Sigmoid in place,
/// MatMul (in×out), then AddSigmoid, Rwkv7Decay or Rwkv6Decay in place on y. It is the interface's default (so the CPU
/// reference computes exactly what the model computed before the op existed) and every backend's fallback.
/// </summary>
public static class LoraSetReference
{
    /// <summary>Runs the branches one by one on <paramref name="ops"/>; the arguments must already be checked.</summary>
    public static void Run(IOps ops, Tensor x, ReadOnlySpan<LoraBranch> branches)
    {
        foreach (var b in branches)
        {
            ops.MatMul(x, b.Down, null, b.Hidden, WeightLayout.InOut);
            Inner(ops, b);
            ops.MatMul(b.Hidden, b.Up, null, b.Y, WeightLayout.InOut);
            Outer(ops, b);
        }
    }

    /// <summary>The branch's inner activation (Tanh or Sigmoid) in place on its hidden [T, R], or nothing.</summary>
    public static void Inner(IOps ops, LoraBranch b)
    {
        switch (b.Inner)
        {
            case LoraInner.Tanh:
                ops.Tanh(b.Hidden, b.Hidden);
                break;
            case LoraInner.Sigmoid:
                ops.Sigmoid(b.Hidden, b.Hidden);
                break;
        }
    }

    /// <summary>The branch's outer op (AddSigmoid, Rwkv7Decay or Rwkv6Decay with its offset) in place on its y, or nothing.</summary>
    public static void Outer(IOps ops, LoraBranch b)
    {
        switch (b.Outer)
        {
            case LoraOuter.AddSigmoid:
                ops.AddSigmoid(b.Y, b.Offset!, b.Y);
                break;
            case LoraOuter.Rwkv7Decay:
                ops.Rwkv7Decay(b.Y, b.Offset!, b.Y);
                break;
            case LoraOuter.Rwkv6Decay:
                ops.Rwkv6Decay(b.Y, b.Offset!, b.Y);
                break;
        }
    }
}
