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

    /// <summary>
    /// r = x_r·Wqᵀ + bq [T, A]; k = x_k·Wkᵀ + bk and v = x_v·Wvᵀ + bv [T, KVH·N]. With one x for all three, a norm
    /// pending for x (<see cref="ForwardPass.BeginNorm"/>) runs first, in one op with the projections.
    /// </summary>
    public (Tensor R, Tensor K, Tensor V) Project(ForwardPass pass, ModelConfig c, Tensor xr, Tensor xk, Tensor xv)
    {
        var (r, k, v) = Outputs(pass, c);
        if (ReferenceEquals(xr, xk) && ReferenceEquals(xr, xv))
        {
            // The input norm, when the model left it pending (IMixer.TakesPendingNorm), runs with the GEMVs.
            if (pass.TakeNorm(xr) is { } n)
            {
                pass.Ops.AddRmsNormMatMulShared(n.H, n.Branch, n.Weight, n.Eps, n.Normed, [Query, Key, Value], [QueryBias, KeyBias, ValueBias],
                    [r, k, v]);
            }
            else
            {
                pass.Ops.MatMulShared(xr, [Query, Key, Value], [QueryBias, KeyBias, ValueBias], [r, k, v]);
            }
        }
        else
        {
            pass.Ops.MatMul(xr, Query, QueryBias, r);
            pass.Ops.MatMul(xk, Key, KeyBias, k);
            pass.Ops.MatMul(xv, Value, ValueBias, v);
        }

        // What the layer reads next (o_proj, the MLP) streams into the cache while the mixing ops leave memory idle.
        pass.PrefetchAhead();
        return (r, k, v);
    }

    /// <summary>
    /// <see cref="Project"/> of one x for q, k and v together with a LoRA set on the same x: with the pending input norm,
    /// one op (IOps.AddRmsNormMatMulSharedLoraSet: on the CUDA decode path the LoRA down projections run in the q/k/v
    /// GEMV's launch); without one, MatMulShared then LoraSet.
    /// </summary>
    public (Tensor R, Tensor K, Tensor V) ProjectWithLoras(ForwardPass pass, ModelConfig c, Tensor x, ReadOnlySpan<LoraBranch> branches)
    {
        var (r, k, v) = Outputs(pass, c);
        if (pass.TakeNorm(x) is { } n)
        {
            pass.Ops.AddRmsNormMatMulSharedLoraSet(n.H, n.Branch, n.Weight, n.Eps, n.Normed, [Query, Key, Value], [QueryBias, KeyBias, ValueBias],
                [r, k, v], branches);
        }
        else
        {
            pass.Ops.MatMulShared(x, [Query, Key, Value], [QueryBias, KeyBias, ValueBias], [r, k, v]);
            pass.Ops.LoraSet(x, branches);
        }

        pass.PrefetchAhead();
        return (r, k, v);
    }

    /// <summary>The projections' outputs for this pass: r [T, A], k and v [T, KVH·N], scratch of the layer.</summary>
    private static (Tensor R, Tensor K, Tensor V) Outputs(ForwardPass pass, ModelConfig c)
    {
        int kvWidth = c.NumKeyValueHeads * c.HeadDim;
        return (pass.Scratch(pass.Rows, c.NumAttentionHeads * c.HeadDim), pass.Scratch(pass.Rows, kvWidth), pass.Scratch(pass.Rows, kvWidth));
    }

    /// <summary>
    /// The teacher's RoPE on r and k (when the config uses it) at each sequence's absolute positions, before
    /// GQA; then k and v expanded to H heads (query head h reads KV head ⌊h/G⌋). Returns k, v [T, A].
    /// One fused op per piece of the step (IOps.RopeExpandRows for the decode rows, RopeExpand per other segment,
    /// ExpandKv without RoPE): the same results as Rope/RopeRows then RepeatKv, in one launch instead of four.
    /// </summary>
    public static (Tensor K, Tensor V) RopeAndExpand(ForwardPass pass, ModelConfig c, Tensor r, Tensor k, Tensor v)
    {
        var ops = pass.Ops;
        int n = c.HeadDim;
        int h = c.NumAttentionHeads;
        int kvh = c.NumKeyValueHeads;
        var kh = pass.Scratch(pass.Rows, h * n);
        var vh = pass.Scratch(pass.Rows, h * n);
        if (!c.UseRope)
        {
            ops.ExpandKv(k, v, h, kvh, n, kh, vh);
            return (kh, vh);
        }

        float theta = (float)c.RopeTheta;
        int d = pass.DecodeCount;
        if (d > 0)
        {
            ops.RopeExpandRows(r.Rows(0, d), k.Rows(0, d), v.Rows(0, d), h, kvh, n, pass.DecodePositions, theta, kh.Rows(0, d), vh.Rows(0, d));
        }

        foreach (var s in pass.OtherSegments)
        {
            var (start, count) = (s.RowStart, s.RowCount);
            ops.RopeExpand(r.Rows(start, count), k.Rows(start, count), v.Rows(start, count), h, kvh, n, s.StartPosition, theta,
                kh.Rows(start, count), vh.Rows(start, count));
        }

        return (kh, vh);
    }

    /// <summary>
    /// y = (o ⊙ g)·Woᵀ, or o·Woᵀ without a gate; with <paramref name="scale"/>, o is first multiplied by it
    /// (RAD-RWKV7's balanced N^−1/2), fused with the gate into one IOps.ScaleMultiply. o is overwritten.
    /// </summary>
    public void OutputProjection(ForwardPass pass, Tensor o, Tensor? gate, Tensor y, float? scale = null)
    {
        if (scale is { } s)
        {
            if (gate is not null)
            {
                pass.Ops.ScaleMultiply(o, s, gate, o);
            }
            else
            {
                pass.Ops.Scale(o, s, o);
            }
        }
        else if (gate is not null)
        {
            pass.Ops.Multiply(o, gate, o);
        }

        pass.Ops.MatMul(o, Output, OutputBias, y);
    }

    public void Dispose()
    {
        foreach (var t in new[] { Query, Key, Value, Output, QueryBias, KeyBias, ValueBias, OutputBias })
        {
            t?.Dispose();
        }
    }
}
