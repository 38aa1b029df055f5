using Radlads.Ops;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Cpu;

public sealed partial class CpuOps
{
    // log w = −e^−0.5 · σ(z) (spec §4.2 step 2) keeps w in (0.545, 1).
    private static readonly float Rwkv7DecayScale = (float)-Math.Exp(-0.5);

    // F.normalize's eps: κ = k / max(‖k‖, eps).
    private const float NormalizeEps = 1e-12f;

    public void Rwkv7Decay(Tensor z, Tensor w0, Tensor w)
    {
        int a = z.RowLength;
        var b = Row0(w0, a);
        var zs = F(z);
        var ws = F(w);
        for (int t = 0; t < z.RowCount; t++)
        {
            var zr = zs.Slice(t * a, a);
            var wr = ws.Slice(t * a, a);
            TensorPrimitives.Add(zr, b, wr);
            TensorPrimitives.Sigmoid(wr, wr);
            TensorPrimitives.Multiply(wr, Rwkv7DecayScale, wr);
            TensorPrimitives.Exp(wr, wr);
        }
    }

    public void Rwkv7Keys(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor removal, Tensor replacement, Tensor kTilde)
    {
        int width = k.RowLength;
        if (width % headDim != 0 || w.ElementCount != k.ElementCount || a.ElementCount != k.ElementCount)
        {
            throw new ArgumentException($"Rwkv7Keys: k {k.ShapeText}, w {w.ShapeText}, a {a.ShapeText}, head dim {headDim}");
        }

        if (!balanced && (keyScale is null || iclrMix is null))
        {
            throw new ArgumentException("Rwkv7Keys: stock keys need k_k and k_a");
        }

        var kk = balanced ? ReadOnlySpan<float>.Empty : Row0(keyScale!, width);
        var ka = balanced ? ReadOnlySpan<float>.Empty : Row0(iclrMix!, width);
        var ks = F(k);
        var ws = F(w);
        var aa = F(a);
        var rem = F(removal);
        var rep = F(replacement);
        var kt = F(kTilde);
        var kappa = new float[headDim];
        for (int t = 0; t < k.RowCount; t++)
        {
            for (int h = 0; h < width / headDim; h++)
            {
                int o = (t * width) + (h * headDim);
                var kh = ks.Slice(o, headDim);
                if (balanced)
                {
                    kh.CopyTo(kappa);
                }
                else
                {
                    TensorPrimitives.Multiply(kh, kk.Slice(h * headDim, headDim), kappa);
                }

                float inv = 1f / MathF.Max(TensorPrimitives.Norm(kappa), NormalizeEps);
                for (int i = 0; i < headDim; i++)
                {
                    int j = o + i;
                    float kappaI = kappa[i] * inv;
                    float ai = aa[j];
                    float kj = ks[j];
                    kt[j] = balanced
                        ? kj * (1f - ws[j] + ai)
                        : kj * (1f + ((ai - 1f) * ka[(h * headDim) + i]));
                    rem[j] = -kappaI;
                    rep[j] = kappaI * ai;
                }
            }
        }
    }

    public void Rwkv7ValueResidual(Tensor v, Tensor vFirst, Tensor nu, Tensor y)
    {
        SameCount(v, vFirst, nameof(Rwkv7ValueResidual));
        SameCount(v, nu, nameof(Rwkv7ValueResidual));
        var vs = F(v);
        var fs = F(vFirst);
        var ns = F(nu);
        var ys = F(y);
        for (int i = 0; i < vs.Length; i++)
        {
            ys[i] = vs[i] + ((fs[i] - vs[i]) * ns[i]);
        }
    }

    public void Wkv7(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state, Tensor y)
    {
        int width = r.RowLength;
        int tokens = r.RowCount;
        if (state.Shape.Length != 3 || state.Shape[1] != state.Shape[2] || state.Shape[0] * state.Shape[1] != width)
        {
            throw new ArgumentException($"Wkv7: state {state.ShapeText} does not match rows of {width}");
        }

        int heads = state.Shape[0];
        int n = state.Shape[1];
        var rc = Cpu(r);
        var wc = Cpu(w);
        var kc = Cpu(k);
        var vc = Cpu(v);
        var ac = Cpu(a);
        var bc = Cpu(b);
        var sc = Cpu(state);
        var yc = Cpu(y);
        For(heads, (long)tokens * n * n * 4, h =>
        {
            var s = sc.Floats.Slice(h * n * n, n * n);
            for (int t = 0; t < tokens; t++)
            {
                int o = (t * width) + (h * n);
                var rs = rc.Floats.Slice(o, n);
                var ws = wc.Floats.Slice(o, n);
                var ks = kc.Floats.Slice(o, n);
                var vs = vc.Floats.Slice(o, n);
                var aas = ac.Floats.Slice(o, n);
                var bs = bc.Floats.Slice(o, n);
                var ys = yc.Floats.Slice(o, n);
                for (int i = 0; i < n; i++)
                {
                    // Row i of S (value i): sa from the old state, then decay, write and delta correction.
                    var row = s.Slice(i * n, n);
                    float sa = TensorPrimitives.Dot(aas, row);
                    TensorPrimitives.Multiply(row, ws, row);
                    TensorPrimitives.MultiplyAdd(ks, vs[i], row, row);
                    TensorPrimitives.MultiplyAdd(bs, sa, row, row);
                    ys[i] = TensorPrimitives.Dot(row, rs);
                }
            }
        });
    }
}
