using Radlads.Ops;

namespace Radlads.Models;

/// <summary>How a RAD-RWKV mixer gates its output, detected from the tensors present (spec §6.4).</summary>
public enum GateKind
{
    /// <summary>No gate tensors: y = o.</summary>
    None,

    /// <summary><c>gate.weight [A, C]</c>: g = σ(x·Wᵀ).</summary>
    FullRank,

    /// <summary><c>g1 [C, Rg]</c>, <c>g2 [Rg, A]</c>: g = σ(x·g1)·g2.</summary>
    LowRank,
}

/// <summary>The output gate of a RAD-RWKV mixer.</summary>
internal sealed class Gate : IDisposable
{
    private readonly Tensor? full;
    private readonly Tensor? down;
    private readonly Tensor? up;

    public Gate(WeightLoader w, string prefix, int hidden, int width)
    {
        if (w.Has(prefix + "gate.weight"))
        {
            Kind = GateKind.FullRank;
            full = w.Matrix(prefix + "gate.weight", width, hidden);
        }
        else if (w.Has(prefix + "g1") || w.Has(prefix + "g2"))
        {
            Kind = GateKind.LowRank;
            Rank = w.Columns(prefix + "g1");
            down = w.Matrix(prefix + "g1", hidden, Rank);
            up = w.Matrix(prefix + "g2", Rank, width);
        }
    }

    public GateKind Kind { get; }

    public int Rank { get; }

    /// <summary>g [T, A] from the gate input x [T, C]; null when there is no gate.</summary>
    public Tensor? Compute(ForwardPass pass, Tensor x, int width)
    {
        var ops = pass.Ops;
        switch (Kind)
        {
            case GateKind.FullRank:
                var g = pass.Scratch(pass.Rows, width);
                ops.MatMul(x, full!, null, g);
                ops.Sigmoid(g, g);
                return g;
            case GateKind.LowRank:
                return pass.Lora(x, down!, up!, LoraInner.Sigmoid);
            default:
                return null;
        }
    }

    /// <summary>
    /// The low-rank gate as a LoRA branch (g = σ(x·g1)·g2), for a mixer that runs it in one <see cref="IOps.LoraSet"/>
    /// with its other branches; null for the other kinds (use <see cref="Compute"/>).
    /// </summary>
    public LoraBranch? LowRankBranch(ForwardPass pass) =>
        Kind == GateKind.LowRank ? pass.LoraBranch(down!, up!, LoraInner.Sigmoid) : null;

    public void Dispose()
    {
        full?.Dispose();
        down?.Dispose();
        up?.Dispose();
    }
}
