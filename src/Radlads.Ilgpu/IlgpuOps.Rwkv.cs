using ILGPU;
using ILGPU.Runtime;
using Radlads.Ops;

namespace Radlads.Ilgpu;

internal sealed partial class IlgpuOps
{
    // log w = −e^−0.5 · σ(z), rounded to fp32 as the CPU reference rounds it.
    private static readonly float Rwkv7DecayScale = (float)-Math.Exp(-0.5);

    public void TokenShift(Tensor x, Tensor shiftState, Tensor delta)
    {
        int c = x.RowLength;
        if (shiftState.ElementCount != c || delta.ElementCount != x.ElementCount)
        {
            throw new ArgumentException($"TokenShift: x {x.ShapeText}, state {shiftState.ShapeText}, delta {delta.ShapeText}");
        }

        int tokens = x.RowCount;
        if (tokens == 0 || c == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        var xs = F(x);
        var state = F(shiftState);
        K.TokenShift(S, Extent((long)tokens * c, nameof(TokenShift)), xs, state, c, F(delta));
        // Queued after the kernel, so every delta has read the old state first.
        var last = state.SubView(0L, (long)c);
        xs.SubView((long)(tokens - 1) * c, (long)c).CopyTo(S, in last);
    }

    public void MixShift(Tensor x, Tensor delta, Tensor mix, Tensor y)
    {
        int c = x.RowLength;
        var m = Param(mix, c);
        long n = x.ElementCount;
        Fits(delta, n, nameof(MixShift));
        Fits(y, n, nameof(MixShift));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.MixShift(S, Extent(n, nameof(MixShift)), F(x), F(delta), m, c, F(y));
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

        var m = Param(mixes, 5 * c);
        long n = 5L * tokens * c;
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Rwkv6Ddlerp(S, Extent(n, nameof(Rwkv6Ddlerp)), F(x), F(delta), F(lora), I(w2).Weight(Device), m, tokens, c, rank, F(outputs));
        }
    }

    public void Rwkv6Decay(Tensor d, Tensor bias, Tensor w)
    {
        int width = d.RowLength;
        var b = Param(bias, width);
        long n = d.ElementCount;
        Fits(w, n, nameof(Rwkv6Decay));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Rwkv6Decay(S, Extent(n, nameof(Rwkv6Decay)), F(d), b, width, F(w));
        }
    }

    public void Rwkv6BalanceKeys(Tensor k, Tensor w, Tensor y)
    {
        SameCount(k, w, nameof(Rwkv6BalanceKeys));
        long n = k.ElementCount;
        Fits(y, n, nameof(Rwkv6BalanceKeys));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Rwkv6BalanceKeys(S, Extent(n, nameof(Rwkv6BalanceKeys)), F(k), F(w), F(y));
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
        RecurrenceInputs("Wkv6", tokens * (long)width, r, k, v, w, y);
        if (tokens == 0 || heads == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        K.Wkv6(S, Extent((long)heads * n, nameof(Wkv6)), F(r), F(k), F(v), F(w), F(state), scale, tokens, heads, n, F(y));
    }

    /// <summary>Every recurrence input and the output hold T·A elements.</summary>
    private static void RecurrenceInputs(string op, long count, params ReadOnlySpan<Tensor> tensors)
    {
        foreach (var t in tensors)
        {
            if (t.ElementCount != count)
            {
                throw new ArgumentException($"{op}: {t.ShapeText} does not hold {count} elements");
            }
        }
    }

    public void Rwkv7Decay(Tensor z, Tensor w0, Tensor w)
    {
        int width = z.RowLength;
        var b = Param(w0, width);
        long n = z.ElementCount;
        Fits(w, n, nameof(Rwkv7Decay));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Rwkv7Decay(S, Extent(n, nameof(Rwkv7Decay)), F(z), b, Rwkv7DecayScale, width, F(w));
        }
    }

    public void Rwkv7Keys(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor removal, Tensor replacement, Tensor kTilde)
    {
        int width = k.RowLength;
        if (headDim <= 0 || width % headDim != 0 || w.ElementCount != k.ElementCount || a.ElementCount != k.ElementCount)
        {
            throw new ArgumentException($"Rwkv7Keys: k {k.ShapeText}, w {w.ShapeText}, a {a.ShapeText}, head dim {headDim}");
        }

        if (!balanced && (keyScale is null || iclrMix is null))
        {
            throw new ArgumentException("Rwkv7Keys: stock keys need k_k and k_a");
        }

        var kk = balanced ? None : Param(keyScale!, width);
        var ka = balanced ? None : Param(iclrMix!, width);
        long n = k.ElementCount;
        Fits(removal, n, nameof(Rwkv7Keys));
        Fits(replacement, n, nameof(Rwkv7Keys));
        Fits(kTilde, n, nameof(Rwkv7Keys));
        long items = (long)k.RowCount * (width / headDim);
        if (items == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        K.Rwkv7Keys(S, Groups(items, nameof(Rwkv7Keys)), F(k), F(w), F(a), kk, ka, width, headDim, balanced ? 1 : 0,
            F(removal), F(replacement), F(kTilde));
    }

    public void Rwkv7ValueResidual(Tensor v, Tensor vFirst, Tensor nu, Tensor y)
    {
        SameCount(v, vFirst, nameof(Rwkv7ValueResidual));
        SameCount(v, nu, nameof(Rwkv7ValueResidual));
        long n = v.ElementCount;
        Fits(y, n, nameof(Rwkv7ValueResidual));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Rwkv7ValueResidual(S, Extent(n, nameof(Rwkv7ValueResidual)), F(v), F(vFirst), F(nu), F(y));
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
        RecurrenceInputs("Wkv7", tokens * (long)width, r, w, k, v, a, b, y);
        if (tokens == 0 || heads == 0)
        {
            return;
        }

        LaunchWkv7(r, w, k, v, a, b, state, tokens, heads, n, y, 1f, null);
    }

    /// <summary>
    /// One launch of the Wkv7 kernel (the thread-per-row variant on the CPU simulator); with a gate, y is written as
    /// (y · scale) ⊙ gate (<see cref="IOps.Wkv7DecodeScaleGate"/>).
    /// </summary>
    private void LaunchWkv7(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state, int tokens, int heads, int n, Tensor y,
        float scale, Tensor? gate)
    {
        using var scope = backend.Enter();
        ArrayView<float> g = gate is null ? Device.DummyFloats.View : F(gate);
        int gated = gate is null ? 0 : 1;
        if (backend.ThreadPerOutputKernels)
        {
            K.Wkv7Rows(S, Extent((long)heads * n, nameof(Wkv7)), F(r), F(w), F(k), F(v), F(a), F(b), F(state), tokens, heads, n, F(y), scale, g, gated);
            return;
        }

        // One warp per state row.
        int warps = GroupSize / Device.WarpSize;
        K.Wkv7(S, Groups(((long)heads * n + warps - 1) / warps, nameof(Wkv7)), F(r), F(w), F(k), F(v), F(a), F(b), F(state), tokens, heads, n, F(y),
            scale, g, gated);
    }
}
