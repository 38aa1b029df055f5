using Radlads.Ops;

namespace Radlads.Models;

/// <summary>
/// The teacher's q/k/v/o Linears, kept by every student (q → receptance, k → key, v → value, o → output).
/// q [H·N, C], k and v [KVH·N, C] with biases when present; o [C, H·N] without bias (spec §1).
/// </summary>
internal sealed class Projections : IDisposable
{
    public Projections(WeightLoader w, string prefix, ModelConfig c)
    {
        int a = c.NumAttentionHeads * c.HeadDim;
        int kv = c.NumKeyValueHeads * c.HeadDim;
        Query = w.Matrix(prefix + "q_proj.weight", a, c.HiddenSize);
        Key = w.Matrix(prefix + "k_proj.weight", kv, c.HiddenSize);
        Value = w.Matrix(prefix + "v_proj.weight", kv, c.HiddenSize);
        Output = w.Matrix(prefix + "o_proj.weight", c.HiddenSize, a);
        QueryBias = w.Has(prefix + "q_proj.bias") ? w.Vector(prefix + "q_proj.bias", a) : null;
        KeyBias = w.Has(prefix + "k_proj.bias") ? w.Vector(prefix + "k_proj.bias", kv) : null;
        ValueBias = w.Has(prefix + "v_proj.bias") ? w.Vector(prefix + "v_proj.bias", kv) : null;
        OutputBias = w.Has(prefix + "o_proj.bias") ? w.Vector(prefix + "o_proj.bias", c.HiddenSize) : null;
    }

    public Tensor Query { get; }

    public Tensor Key { get; }

    public Tensor Value { get; }

    public Tensor Output { get; }

    public Tensor? QueryBias { get; }

    public Tensor? KeyBias { get; }

    public Tensor? ValueBias { get; }

    public Tensor? OutputBias { get; }

    public void Dispose()
    {
        foreach (var t in new[] { Query, Key, Value, Output, QueryBias, KeyBias, ValueBias, OutputBias })
        {
            t?.Dispose();
        }
    }
}
