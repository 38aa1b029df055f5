using Radlads.Ops;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Cpu;

public sealed partial class CpuOps
{
    // RAD-RWKV6 clamps the log-decay at −5 (spec §3.2 step 3), so w ≥ e^−5.
    private const float Rwkv6LogDecayFloor = -5f;

    public void TokenShift(Tensor x, Tensor shiftState, Tensor delta)
    {
        int c = x.RowLength;
        if (shiftState.ElementCount != c || delta.ElementCount != x.ElementCount)
        {
            throw new ArgumentException($"TokenShift: x {x.ShapeText}, state {shiftState.ShapeText}, delta {delta.ShapeText}");
        }

        var xs = F(x);
        var ds = F(delta);
        var state = F(shiftState);
        int tokens = x.RowCount;
        if (tokens == 0)
        {
            return;
        }

        TensorPrimitives.Subtract(state, xs[..c], ds[..c]);
        for (int t = 1; t < tokens; t++)
        {
            TensorPrimitives.Subtract(xs.Slice((t - 1) * c, c), xs.Slice(t * c, c), ds.Slice(t * c, c));
        }

        xs.Slice((tokens - 1) * c, c).CopyTo(state);
    }

    public void MixShift(Tensor x, Tensor delta, Tensor mix, Tensor y)
    {
        int c = x.RowLength;
        var m = Row0(mix, c);
        var xs = F(x);
        var ds = F(delta);
        var ys = F(y);
        for (int t = 0; t < x.RowCount; t++)
        {
            TensorPrimitives.FusedMultiplyAdd(ds.Slice(t * c, c), m, xs.Slice(t * c, c), ys.Slice(t * c, c));
        }
    }

    public void Rwkv6Ddlerp(Tensor x, Tensor delta, Tensor lora, Tensor w2, Tensor mixes, Tensor outputs)
    {
        int c = x.RowLength;
        int tokens = x.RowCount;
        if (w2.Shape.Length != 3 || w2.Shape[0] != 5 || w2.Shape[2] != c)
        {
            throw new ArgumentException($"Rwkv6Ddlerp: w2 {w2.ShapeText} is not [5, R, {c}]");
        }

        int rank = w2.Shape[1];
        if (lora.RowLength != 5 * rank || lora.RowCount != tokens || outputs.RowCount != 5 * tokens || mixes.ElementCount != 5 * c)
        {
            throw new ArgumentException($"Rwkv6Ddlerp: lora {lora.ShapeText}, mixes {mixes.ShapeText}, outputs {outputs.ShapeText}");
        }

        var weights = new float[5 * rank * c];
        Cpu(w2).ReadRange(0, weights);
        var mix = Row0(mixes, 5 * c).ToArray();
        var xs = F(x);
        var ds = F(delta);
        var ls = F(lora);
        var os = F(outputs);
        var m = new float[c];
        for (int i = 0; i < 5; i++)
        {
            for (int t = 0; t < tokens; t++)
            {
                // m = λ_i + lora_i · w2[i]
                mix.AsSpan(i * c, c).CopyTo(m);
                for (int r = 0; r < rank; r++)
                {
                    TensorPrimitives.MultiplyAdd(weights.AsSpan(((i * rank) + r) * c, c), ls[(t * 5 * rank) + (i * rank) + r], m, m);
                }

                TensorPrimitives.FusedMultiplyAdd(ds.Slice(t * c, c), m, xs.Slice(t * c, c), os.Slice(((i * tokens) + t) * c, c));
            }
        }
    }

    public void Rwkv6Decay(Tensor d, Tensor bias, Tensor w)
    {
        int a = d.RowLength;
        var b = Row0(bias, a);
        var ds = F(d);
        var ws = F(w);
        for (int t = 0; t < d.RowCount; t++)
        {
            for (int i = 0; i < a; i++)
            {
                float logDecay = -MathF.Exp(b[i] + ds[(t * a) + i]);
                // NaN must survive the clamp so that a broken run is caught, not hidden.
                ws[(t * a) + i] = MathF.Exp(float.IsNaN(logDecay) ? logDecay : MathF.Max(logDecay, Rwkv6LogDecayFloor));
            }
        }
    }

    public void Rwkv6BalanceKeys(Tensor k, Tensor w, Tensor y)
    {
        SameCount(k, w, nameof(Rwkv6BalanceKeys));
        var ks = F(k);
        var ws = F(w);
        var ys = F(y);
        for (int i = 0; i < ks.Length; i++)
        {
            ys[i] = ks[i] * (1f - ws[i]);
        }
    }

    public void Wkv6(Tensor r, Tensor k, Tensor v, Tensor w, Tensor state, float scale, Tensor y)
    {
        int width = r.RowLength;
        int tokens = r.RowCount;
        if (state.Shape.Length != 3 || state.Shape[1] != state.Shape[2] || state.Shape[0] * state.Shape[1] != width)
        {
            throw new ArgumentException($"Wkv6: state {state.ShapeText} does not match rows of {width}");
        }

        int heads = state.Shape[0];
        int n = state.Shape[1];
        var rc = Cpu(r);
        var kc = Cpu(k);
        var vc = Cpu(v);
        var wc = Cpu(w);
        var sc = Cpu(state);
        var yc = Cpu(y);
        For(heads, (long)tokens * n * n * 3, h =>
        {
            var s = sc.Floats.Slice(h * n * n, n * n);
            for (int t = 0; t < tokens; t++)
            {
                int o = (t * width) + (h * n);
                var rs = rc.Floats.Slice(o, n);
                var ks = kc.Floats.Slice(o, n);
                var vs = vc.Floats.Slice(o, n);
                var ws = wc.Floats.Slice(o, n);
                var ys = yc.Floats.Slice(o, n);
                ys.Clear();
                for (int i = 0; i < n; i++)
                {
                    // Row i of S (key i): S[i,:] = w_i·S[i,:] + k_i·v, then y += (scale·r_i)·S[i,:].
                    var row = s.Slice(i * n, n);
                    TensorPrimitives.Multiply(row, ws[i], row);
                    TensorPrimitives.MultiplyAdd(vs, ks[i], row, row);
                    TensorPrimitives.MultiplyAdd(row, scale * rs[i], ys, ys);
                }
            }
        });
    }
}
