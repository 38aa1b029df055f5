using Radlads.Ops;
using static Radlads.Cpu.CpuOps;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Cpu;

public sealed partial class CpuBackwardOps
{
    // The forward's constants (CpuOps.Rwkv7): log w = −e^−0.5·σ(z), and F.normalize's eps.
    private static readonly float Rwkv7DecayScale = (float)-Math.Exp(-0.5);
    private const float NormalizeEps = 1e-12f;

    public void Rwkv7DecayBackward(Tensor z, Tensor w0, Tensor dw, Tensor dz, Tensor? dW0)
    {
        int a = z.RowLength;
        SameCount(z, dw, nameof(Rwkv7DecayBackward));
        SameCount(z, dz, nameof(Rwkv7DecayBackward));
        if (dW0 is not null && dW0.ElementCount != a)
        {
            throw new ArgumentException($"Rwkv7DecayBackward: dW0 {dW0.ShapeText} for rows of {a}");
        }

        var b = Row0(w0, a);
        var zs = F(z);
        var g = F(dw);
        var o = F(dz);
        var db = dW0 is null ? [] : F(dW0);
        for (int t = 0; t < z.RowCount; t++)
        {
            for (int i = 0; i < a; i++)
            {
                int j = (t * a) + i;
                // Forward: w = exp(c·σ(w0 + z)), c = −e^−0.5  ⇒  ∂w/∂z = w·c·σ·(1 − σ).
                float s = 1f / (1f + MathF.Exp(-(zs[j] + b[i])));
                float w = MathF.Exp(Rwkv7DecayScale * s);
                float grad = g[j] * w * Rwkv7DecayScale * s * (1f - s);
                o[j] = grad;
                if (dW0 is not null)
                {
                    db[i] += grad;
                }
            }
        }
    }

    public void Rwkv7KeysBackward(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor dRemoval, Tensor dReplacement, Tensor dKTilde, Tensor dk, Tensor? dw, Tensor da, Tensor? dKeyScale,
        Tensor? dIclrMix)
    {
        int width = k.RowLength;
        if (width % headDim != 0)
        {
            throw new ArgumentException($"Rwkv7KeysBackward: k {k.ShapeText} does not split into heads of {headDim}");
        }

        foreach (var t in new[] { w, a, dRemoval, dReplacement, dKTilde, dk, da })
        {
            SameCount(k, t, nameof(Rwkv7KeysBackward));
        }

        if (dw is not null)
        {
            SameCount(k, dw, nameof(Rwkv7KeysBackward));
        }

        if (!balanced && (keyScale is null || iclrMix is null))
        {
            throw new ArgumentException("Rwkv7KeysBackward: stock keys need k_k and k_a");
        }

        if ((dKeyScale is not null && dKeyScale.ElementCount != width) || (dIclrMix is not null && dIclrMix.ElementCount != width))
        {
            throw new ArgumentException($"Rwkv7KeysBackward: dKeyScale {dKeyScale?.ShapeText}, dIclrMix {dIclrMix?.ShapeText} for rows of {width}");
        }

        var kk = balanced ? [] : Row0(keyScale!, width);
        var ka = balanced ? [] : Row0(iclrMix!, width);
        var dkk = balanced || dKeyScale is null ? [] : F(dKeyScale);
        var dka = balanced || dIclrMix is null ? [] : F(dIclrMix);
        var ks = F(k);
        var ws = F(w);
        var aa = F(a);
        var gRem = F(dRemoval);
        var gRep = F(dReplacement);
        var gTil = F(dKTilde);
        var dks = F(dk);
        var dws = dw is null ? [] : F(dw);
        var das = F(da);
        var u = new float[headDim];
        var kappa = new float[headDim];
        var dKappa = new float[headDim];
        for (int t = 0; t < k.RowCount; t++)
        {
            for (int h = 0; h < width / headDim; h++)
            {
                int o = (t * width) + (h * headDim);
                // Forward: u = k (balanced) or k ⊙ k_k (stock); κ = u / max(‖u‖, eps); removal = −κ; replacement = κ ⊙ a.
                var kh = ks.Slice(o, headDim);
                if (balanced)
                {
                    kh.CopyTo(u);
                }
                else
                {
                    TensorPrimitives.Multiply(kh, kk.Slice(h * headDim, headDim), u);
                }

                float norm = TensorPrimitives.Norm(u);
                float inv = 1f / MathF.Max(norm, NormalizeEps);
                for (int i = 0; i < headDim; i++)
                {
                    kappa[i] = u[i] * inv;
                    dKappa[i] = -gRem[o + i] + (gRep[o + i] * aa[o + i]);
                }

                // ∂κ/∂u: for ‖u‖ ≥ eps, (I − κκᵀ)/‖u‖; below eps, κ = u/eps is linear, so I/eps.
                float projection = norm >= NormalizeEps ? TensorPrimitives.Dot(kappa, dKappa) : 0f;
                for (int i = 0; i < headDim; i++)
                {
                    int j = o + i;
                    float du = (dKappa[i] - (kappa[i] * projection)) * inv;
                    float kj = ks[j];
                    float aj = aa[j];
                    float gt = gTil[j];
                    if (balanced)
                    {
                        // k̃ = k ⊙ (1 − w + a)
                        dks[j] = (gt * (1f - ws[j] + aj)) + du;
                        if (dw is not null)
                        {
                            dws[j] = -gt * kj;
                        }

                        das[j] = (gRep[j] * kappa[i]) + (gt * kj);
                    }
                    else
                    {
                        // k̃ = k ⊙ (1 + (a − 1) ⊙ k_a); u = k ⊙ k_k
                        int c = (h * headDim) + i;
                        dks[j] = (gt * (1f + ((aj - 1f) * ka[c]))) + (du * kk[c]);
                        if (dw is not null)
                        {
                            dws[j] = 0f;
                        }

                        das[j] = (gRep[j] * kappa[i]) + (gt * kj * ka[c]);
                        if (dKeyScale is not null)
                        {
                            dkk[c] += du * kj;
                        }

                        if (dIclrMix is not null)
                        {
                            dka[c] += gt * kj * (aj - 1f);
                        }
                    }
                }
            }
        }
    }

    // y = v + (vFirst − v) ⊙ nu
    public void Rwkv7ValueResidualBackward(Tensor v, Tensor vFirst, Tensor nu, Tensor dy, Tensor? dv, Tensor? dVFirst, Tensor? dNu)
    {
        foreach (var t in new[] { vFirst, nu, dy })
        {
            SameCount(v, t, nameof(Rwkv7ValueResidualBackward));
        }

        foreach (var t in new[] { dv, dVFirst, dNu })
        {
            if (t is not null)
            {
                SameCount(v, t, nameof(Rwkv7ValueResidualBackward));
            }
        }

        var vs = F(v);
        var fs = F(vFirst);
        var ns = F(nu);
        var g = F(dy);
        var dvs = dv is null ? [] : F(dv);
        var dfs = dVFirst is null ? [] : F(dVFirst);
        var dns = dNu is null ? [] : F(dNu);
        for (int i = 0; i < vs.Length; i++)
        {
            float gi = g[i];
            if (dVFirst is not null)
            {
                dfs[i] += gi * ns[i];
            }

            if (dNu is not null)
            {
                dns[i] = gi * (fs[i] - vs[i]);
            }

            if (dv is not null)
            {
                dvs[i] = gi * (1f - ns[i]);
            }
        }
    }

    public void Wkv7Backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor initialState, Tensor dy,
        Tensor? dFinalState, Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db, Tensor? dInitialState)
    {
        int width = r.RowLength;
        int tokens = r.RowCount;
        if (initialState.Shape.Length != 3 || initialState.Shape[1] != initialState.Shape[2] || initialState.Shape[0] * initialState.Shape[1] != width)
        {
            throw new ArgumentException($"Wkv7Backward: state {initialState.ShapeText} does not match rows of {width}");
        }

        foreach (var t in new[] { w, k, v, a, b, dy, dr, dw, dk, dv, da, db })
        {
            SameCount(r, t, nameof(Wkv7Backward));
        }

        CheckState(initialState, dFinalState, dInitialState, nameof(Wkv7Backward));
        int heads = initialState.Shape[0];
        int n = initialState.Shape[1];
        var rc = Cpu(r);
        var wc = Cpu(w);
        var kc = Cpu(k);
        var vc = Cpu(v);
        var ac = Cpu(a);
        var bc = Cpu(b);
        var gc = Cpu(dy);
        var drc = Cpu(dr);
        var dwc = Cpu(dw);
        var dkc = Cpu(dk);
        var dvc = Cpu(dv);
        var dac = Cpu(da);
        var dbc = Cpu(db);
        var s0 = Cpu(initialState);
        var sT = dFinalState is null ? null : Cpu(dFinalState);
        var ds0 = dInitialState is null ? null : Cpu(dInitialState);
        For(heads, (long)tokens * n * n * 12, h =>
        {
            int nn = n * n;

            // Forward line, per row i (value i), exactly as CpuOps.Wkv7 computes it:
            // sa = a·S[i,:]; S[i,:] = S[i,:] ⊙ w + v_i·k + sa·b.
            void Step(Span<float> s, int t)
            {
                int o = (t * width) + (h * n);
                var ws = wc.Floats.Slice(o, n);
                var ks = kc.Floats.Slice(o, n);
                var aas = ac.Floats.Slice(o, n);
                var bs = bc.Floats.Slice(o, n);
                for (int i = 0; i < n; i++)
                {
                    var row = s.Slice(i * n, n);
                    float sa = TensorPrimitives.Dot(aas, row);
                    TensorPrimitives.Multiply(row, ws, row);
                    TensorPrimitives.MultiplyAdd(ks, vc.Floats[o + i], row, row);
                    TensorPrimitives.MultiplyAdd(bs, sa, row, row);
                }
            }

            // One step backwards, row by row. G = ∂L/∂S' (S' = state after step t) on entry, ∂L/∂S on exit.
            // y_i = S'[i,:]·r:                   G[i,:] += dy_i·r;  dr += dy_i·S'[i,:]
            // S'[i,:] = S[i,:] ⊙ w + v_i·k + sa_i·b:  dw += G[i,:] ⊙ S[i,:]; dk += v_i·G[i,:]; dv_i = G[i,:]·k;
            //                                        dsa_i = G[i,:]·b; db += sa_i·G[i,:]
            // sa_i = a·S[i,:]:                   da += dsa_i·S[i,:]
            // ∂L/∂S[i,:] = G[i,:] ⊙ w + dsa_i·a
            void Back(ReadOnlySpan<float> previous, ReadOnlySpan<float> current, Span<float> g, int t)
            {
                int o = (t * width) + (h * n);
                var rs = rc.Floats.Slice(o, n);
                var ws = wc.Floats.Slice(o, n);
                var ks = kc.Floats.Slice(o, n);
                var aas = ac.Floats.Slice(o, n);
                var bs = bc.Floats.Slice(o, n);
                var drs = drc.Floats.Slice(o, n);
                var dws = dwc.Floats.Slice(o, n);
                var dks = dkc.Floats.Slice(o, n);
                var das = dac.Floats.Slice(o, n);
                var dbs = dbc.Floats.Slice(o, n);
                drs.Clear();
                dws.Clear();
                dks.Clear();
                das.Clear();
                dbs.Clear();
                for (int i = 0; i < n; i++)
                {
                    var gr = g.Slice(i * n, n);
                    var sp = previous.Slice(i * n, n);
                    float dyi = gc.Floats[o + i];
                    TensorPrimitives.MultiplyAdd(rs, dyi, gr, gr);
                    TensorPrimitives.MultiplyAdd(current.Slice(i * n, n), dyi, drs, drs);
                    TensorPrimitives.FusedMultiplyAdd(gr, sp, dws, dws);
                    TensorPrimitives.MultiplyAdd(gr, vc.Floats[o + i], dks, dks);
                    dvc.Floats[o + i] = TensorPrimitives.Dot(gr, ks);
                    float dsa = TensorPrimitives.Dot(gr, bs);
                    float sa = TensorPrimitives.Dot(aas, sp);
                    TensorPrimitives.MultiplyAdd(gr, sa, dbs, dbs);
                    TensorPrimitives.MultiplyAdd(sp, dsa, das, das);
                    TensorPrimitives.Multiply(gr, ws, gr);
                    TensorPrimitives.MultiplyAdd(aas, dsa, gr, gr);
                }
            }

            var gradient = new float[nn];
            sT?.Floats.Slice(h * nn, nn).CopyTo(gradient);
            ThroughTime(s0.Floats.Slice(h * nn, nn), tokens, nn, Step, Back, gradient);
            if (ds0 is not null)
            {
                gradient.CopyTo(ds0.Floats.Slice(h * nn, nn));
            }
        });
    }
}
