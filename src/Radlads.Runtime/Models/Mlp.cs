using Radlads.Ops;

namespace Radlads.Models;

/// <summary>Qwen2's SwiGLU MLP, kept unchanged by the students: down(silu(gate(x)) ⊙ up(x)); no biases.</summary>
internal sealed class Mlp : IDisposable
{
    private readonly Tensor gate;
    private readonly Tensor up;
    private readonly Tensor down;
    private readonly int size;

    public Mlp(WeightLoader w, string prefix, ModelConfig c)
    {
        size = c.IntermediateSize;
        gate = w.Matrix(prefix + "gate_proj.weight", size, c.HiddenSize);
        up = w.Matrix(prefix + "up_proj.weight", size, c.HiddenSize);
        down = w.Matrix(prefix + "down_proj.weight", c.HiddenSize, size);
    }

    /// <summary>The MLP's weights in the order a decode step reads them: gate and up together, then down.</summary>
    public Tensor[][] WeightsInReadOrder => [[gate, up], [down]];

    /// <summary>x: post_attention_layernorm output [T, C] (or the pending norm's output, run here first); y [T, C].</summary>
    public void Forward(ForwardPass pass, Tensor x, Tensor y)
    {
        var ops = pass.Ops;
        var g = pass.Scratch(pass.Rows, size);
        var u = pass.Scratch(pass.Rows, size);
        // g = silu(x·gateᵀ) ⊙ (x·upᵀ), y = g·downᵀ; with the norm that writes x when it is pending, all of it is one
        // persistent launch on the CUDA decode path (IOps.AddRmsNormMlp).
        if (pass.TakeNorm(x) is { } n)
        {
            ops.AddRmsNormMlp(n.H, n.Branch, n.Weight, n.Eps, n.Normed, gate, up, down, g, u, y);
            return;
        }

        ops.GateUpSwiGlu(x, gate, up, g, u);
        ops.MatMul(g, down, null, y);
    }

    public void Dispose()
    {
        gate.Dispose();
        up.Dispose();
        down.Dispose();
    }
}
