namespace Radlads.Ops;

/// <summary>
/// Argument checks shared by every backend's fused ops (<see cref="IOps.RopeExpand"/>, <see cref="IOps.RopeExpandRows"/>,
/// <see cref="IOps.ExpandKv"/>, <see cref="IOps.ScaleMultiply"/>, <see cref="IOps.Wkv7DecodeScaleGate"/>), so a wrong shape gives the same message everywhere.
/// </summary>
public static class FusedOpChecks
{
    /// <summary>
    /// The keys' shapes (k [T, A] with A a multiple of the head dim, w and a k's size, k_k and k_a for stock keys), v as
    /// many elements as k, and vFirst and nu both null (layer 0) or both of v's size.
    /// </summary>
    public static void KeysValueResidual(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor v, Tensor? vFirst, Tensor? nu)
    {
        if (headDim <= 0 || k.RowLength % headDim != 0 || w.ElementCount != k.ElementCount || a.ElementCount != k.ElementCount)
        {
            throw new ArgumentException($"Rwkv7KeysValueResidual: k {k.ShapeText}, w {w.ShapeText}, a {a.ShapeText}, head dim {headDim}");
        }

        if (!balanced && (keyScale is null || iclrMix is null))
        {
            throw new ArgumentException("Rwkv7KeysValueResidual: stock keys need k_k and k_a");
        }

        if (v.ElementCount != k.ElementCount)
        {
            throw new ArgumentException($"Rwkv7KeysValueResidual: v {v.ShapeText} and k {k.ShapeText} differ in size; pass the expanded v [T, A]");
        }

        if ((vFirst is null) != (nu is null))
        {
            throw new ArgumentException("Rwkv7KeysValueResidual: pass both vFirst and nu (layers after the first) or neither (layer 0)");
        }

        if (vFirst is not null && (vFirst.ElementCount != v.ElementCount || nu!.ElementCount != v.ElementCount))
        {
            throw new ArgumentException($"Rwkv7KeysValueResidual: vFirst {vFirst.ShapeText} and nu {nu!.ShapeText} must match v {v.ShapeText}");
        }
    }

    /// <summary>
    /// The residual norm of <see cref="IOps.AddRmsNormMatMulShared"/> and <see cref="IOps.AddRmsNormGateUpSwiGlu"/>:
    /// branch (when given) and normed of h's shape, normed not h, and no output one of h, branch or normed (the fused
    /// kernels read h and branch while their GEMV blocks write the outputs).
    /// </summary>
    public static void ResidualNorm(string op, Tensor h, Tensor? branch, Tensor normed, IReadOnlyList<Tensor> outputs)
    {
        if ((branch is not null && (branch.RowCount != h.RowCount || branch.RowLength != h.RowLength))
            || normed.RowCount != h.RowCount || normed.RowLength != h.RowLength)
        {
            throw new ArgumentException($"{op}: h {h.ShapeText}, branch {branch?.ShapeText ?? "null"} and normed {normed.ShapeText} must have one shape");
        }

        if (ReferenceEquals(normed, h))
        {
            throw new ArgumentException($"{op}: normed must not alias h (h keeps the residual stream)");
        }

        foreach (var y in outputs)
        {
            if (ReferenceEquals(y, h) || ReferenceEquals(y, branch) || ReferenceEquals(y, normed))
            {
                throw new ArgumentException($"{op}: an output aliases h, branch or normed; pass separate tensors");
            }
        }
    }

    /// <summary><see cref="ResidualNorm"/> for AddRmsNormMatMulShared, and one bias and one output per weight (at least one).</summary>
    public static void ResidualNormShared(Tensor h, Tensor? branch, Tensor normed, IReadOnlyList<Tensor> weights,
        IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
    {
        ResidualNorm("AddRmsNormMatMulShared", h, branch, normed, outputs);
        if (weights.Count != biases.Count || weights.Count != outputs.Count || weights.Count == 0)
        {
            throw new ArgumentException($"AddRmsNormMatMulShared: {weights.Count} weights, {biases.Count} biases, {outputs.Count} outputs");
        }
    }

    /// <summary><see cref="ResidualNorm"/> for AddRmsNormGateUpSwiGlu, then <see cref="GateUpSwiGlu"/> on normed.</summary>
    public static void ResidualNormGateUp(Tensor h, Tensor? branch, Tensor normed, Tensor wGate, Tensor wUp, Tensor y, Tensor upScratch)
    {
        ResidualNorm("AddRmsNormGateUpSwiGlu", h, branch, normed, [y, upScratch]);
        GateUpSwiGlu(normed, wGate, wUp, y, upScratch);
    }

    /// <summary>
    /// <see cref="ResidualNormGateUp"/> for AddRmsNormMlp (act as its y), then W_down [C, F] and y [T, C], y none of
    /// h, normed, act or upScratch (the persistent kernel writes y while other blocks still read act). y may be
    /// branch, as the model passes it: branch is read only before y is written.
    /// </summary>
    public static void ResidualNormMlp(Tensor h, Tensor? branch, Tensor normed, Tensor wGate, Tensor wUp, Tensor wDown, Tensor act,
        Tensor upScratch, Tensor y)
    {
        ResidualNorm("AddRmsNormMlp", h, branch, normed, [act, upScratch]);
        if (ReferenceEquals(y, h) || ReferenceEquals(y, normed))
        {
            throw new ArgumentException("AddRmsNormMlp: y aliases h or normed; pass separate tensors");
        }

        GateUpSwiGlu(normed, wGate, wUp, act, upScratch);
        int c = h.RowLength, f = wGate.Shape[0];
        if (wDown.Shape.Length != 2 || wDown.Shape[0] != c || wDown.Shape[1] != f)
        {
            throw new ArgumentException($"AddRmsNormMlp: W_down {wDown.ShapeText} must be [{c}, {f}] for h {h.ShapeText} and W_gate {wGate.ShapeText}");
        }

        if (y.RowCount != h.RowCount || y.RowLength != c)
        {
            throw new ArgumentException($"AddRmsNormMlp: y {y.ShapeText} must be [{h.RowCount}, {c}]");
        }

        if (ReferenceEquals(y, act) || ReferenceEquals(y, upScratch))
        {
            throw new ArgumentException("AddRmsNormMlp: y must not alias act or upScratch; pass separate tensors");
        }
    }

    /// <summary>W_gate, W_up [F, C] with C = x's row length; y and upScratch [T, F]; y, upScratch and x distinct.</summary>
    public static void GateUpSwiGlu(Tensor x, Tensor wGate, Tensor wUp, Tensor y, Tensor upScratch)
    {
        int c = x.RowLength;
        if (wGate.Shape.Length != 2 || wUp.Shape.Length != 2 || wGate.Shape[1] != c || wUp.Shape[1] != c || wGate.Shape[0] != wUp.Shape[0])
        {
            throw new ArgumentException($"GateUpSwiGlu: W_gate {wGate.ShapeText} and W_up {wUp.ShapeText} must both be [F, {c}] for x {x.ShapeText}");
        }

        int f = wGate.Shape[0];
        if (y.RowCount != x.RowCount || y.RowLength != f || upScratch.RowCount != x.RowCount || upScratch.RowLength != f)
        {
            throw new ArgumentException($"GateUpSwiGlu: y {y.ShapeText} and upScratch {upScratch.ShapeText} must be [{x.RowCount}, {f}]");
        }

        if (ReferenceEquals(y, x) || ReferenceEquals(upScratch, x) || ReferenceEquals(y, upScratch))
        {
            throw new ArgumentException("GateUpSwiGlu: x, y and upScratch must be three different tensors");
        }
    }

    /// <summary>a, b and y hold the same number of elements.</summary>
    public static void ScaleMultiply(Tensor a, Tensor b, Tensor y)
    {
        if (a.ElementCount != b.ElementCount || y.ElementCount != a.ElementCount)
        {
            throw new ArgumentException($"ScaleMultiply: a {a.ShapeText}, b {b.ShapeText}, y {y.ShapeText} differ in size; pass three tensors of one shape");
        }
    }

    /// <summary>
    /// <see cref="IOps.Rwkv7RopeKeysValueResidualRows"/>: RopeExpandRows' shapes with v, kh and vh given, one row per
    /// position, and the keys' and residual's shapes on kh and vh.
    /// </summary>
    public static void RopeKeysValueResidualRows(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions,
        Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor kh, Tensor vh, Tensor? vFirst, Tensor? nu)
    {
        RopeExpand(nameof(IOps.Rwkv7RopeKeysValueResidualRows), r, k, v, heads, kvHeads, headDim, kh, vh);
        DecodeRowChecks.Rows(nameof(IOps.Rwkv7RopeKeysValueResidualRows), r, positions.Length);
        KeysValueResidual(kh, w, a, keyScale, iclrMix, headDim, balanced, vh, vFirst, nu);
    }

    /// <summary>
    /// <see cref="IOps.Wkv7DecodeScaleGate"/>: one row of r per state, gate and y r's size, gate not y (the scale reads y
    /// and gate together; a gate aliasing y would be read after it is overwritten).
    /// </summary>
    public static void Wkv7DecodeScaleGate(Tensor r, IReadOnlyList<Tensor> states, Tensor gate, Tensor y)
    {
        DecodeRowChecks.Rows(nameof(IOps.Wkv7DecodeScaleGate), r, states.Count);
        if (gate.ElementCount != r.ElementCount || y.ElementCount != r.ElementCount)
        {
            throw new ArgumentException(
                $"Wkv7DecodeScaleGate: r {r.ShapeText}, gate {gate.ShapeText}, y {y.ShapeText} differ in size; pass three tensors of one shape");
        }

        if (ReferenceEquals(gate, y))
        {
            throw new ArgumentException("Wkv7DecodeScaleGate: gate must not alias y");
        }
    }

    /// <summary>
    /// <see cref="IOps.Rwkv7RopeKeysWkv7Rows"/>: the checks of its two parts (<see cref="RopeKeysValueResidualRows"/>,
    /// <see cref="Wkv7DecodeScaleGate"/>), before anything runs.
    /// </summary>
    public static void RopeKeysWkv7Rows(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions,
        Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor kh, Tensor vh, Tensor? vFirst, Tensor? nu,
        IReadOnlyList<Tensor> states, Tensor gate, Tensor y)
    {
        RopeKeysValueResidualRows(r, k, v, heads, kvHeads, headDim, positions, w, a, keyScale, iclrMix, balanced, kh, vh, vFirst, nu);
        Wkv7DecodeScaleGate(r, states, gate, y);
    }

    /// <summary>
    /// <see cref="IOps.Rwkv7RopeKeysWkv7"/>: its RoPE/GQA and keys checks, the pre-activations and offsets (decayZ, rateZ
    /// and residualZ like r, w0, a0 and v0 one value a channel), residualZ, v0 and vFirst all given (layers after the
    /// first) or all null, the workspace like r, and the state [H, N, N].
    /// </summary>
    public static void RopeKeysWkv7(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, bool rope, Tensor decayZ, Tensor w0,
        Tensor rateZ, Tensor a0, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor? residualZ, Tensor? v0, Tensor? vFirst,
        Tensor kh, Tensor vh, Tensor w, Tensor removal, Tensor replacement, Tensor kTilde, Tensor state, Tensor y)
    {
        const string Op = nameof(IOps.Rwkv7RopeKeysWkv7);
        if (rope)
        {
            RopeExpand(Op, r, k, v, heads, kvHeads, headDim, kh, vh);
        }
        else
        {
            Heads(Op, heads, kvHeads, headDim);
            Expansion(Op, k, v, heads, kvHeads, headDim, kh, vh);
        }

        if ((residualZ is null) != (v0 is null) || (residualZ is null) != (vFirst is null))
        {
            throw new ArgumentException($"{Op}: pass residualZ, v0 and vFirst together (layers after the first) or none of them (layer 0)");
        }

        KeysValueResidual(kh, w, rateZ, keyScale, iclrMix, headDim, balanced, vh, vFirst, residualZ);
        foreach (var (name, t) in new[] { ("r", r), ("decayZ", decayZ), ("removal", removal), ("replacement", replacement), ("kTilde", kTilde), ("y", y) })
        {
            if (t.ElementCount != r.ElementCount || t.RowLength != r.RowLength)
            {
                throw new ArgumentException($"{Op}: {name} {t.ShapeText} is not [T, {heads}·{headDim}] like r {r.ShapeText}");
            }
        }

        foreach (var (name, t) in new[] { ("w0", w0), ("a0", a0), ("v0", v0) })
        {
            if (t is not null && t.ElementCount != r.RowLength)
            {
                throw new ArgumentException($"{Op}: {name} {t.ShapeText} must have one value a channel ({r.RowLength})");
            }
        }

        if (state.Shape.Length != 3 || state.Shape[0] != heads || state.Shape[1] != headDim || state.Shape[2] != headDim)
        {
            throw new ArgumentException($"{Op}: state {state.ShapeText} is not [{heads}, {headDim}, {headDim}]");
        }
    }

    /// <summary>
    /// r [T, H·N], k [T, KVH·N] with H a multiple of KVH and N even; v, kh, vh all null (RoPE only) or v [T, KVH·N] and
    /// kh, vh [T, H·N].
    /// </summary>
    public static void RopeExpand(string op, Tensor r, Tensor k, Tensor? v, int heads, int kvHeads, int headDim, Tensor? kh, Tensor? vh)
    {
        Heads(op, heads, kvHeads, headDim);
        if (headDim % 2 != 0)
        {
            throw new ArgumentException($"{op}: head dim {headDim} is odd; rotate-half RoPE needs an even head dim");
        }

        if (r.RowLength != heads * headDim || k.RowLength != kvHeads * headDim || k.RowCount != r.RowCount)
        {
            throw new ArgumentException(
                $"{op}: r {r.ShapeText}, k {k.ShapeText} are not [T, {heads}·{headDim}] and [T, {kvHeads}·{headDim}] with the same T");
        }

        if (v is null && kh is null && vh is null)
        {
            return;
        }

        if (v is null || kh is null || vh is null)
        {
            throw new ArgumentException($"{op}: pass v, kh and vh together (the GQA expansion) or none of them (RoPE only)");
        }

        Expansion(op, k, v, heads, kvHeads, headDim, kh, vh);
    }

    /// <summary>k, v [T, KVH·N]; kh, vh [T, H·N] with H a multiple of KVH.</summary>
    public static void ExpandKv(Tensor k, Tensor v, int heads, int kvHeads, int headDim, Tensor kh, Tensor vh)
    {
        const string Op = nameof(IOps.ExpandKv);
        Heads(Op, heads, kvHeads, headDim);
        if (k.RowLength != kvHeads * headDim)
        {
            throw new ArgumentException($"{Op}: k {k.ShapeText} is not [T, {kvHeads}·{headDim}]");
        }

        Expansion(Op, k, v, heads, kvHeads, headDim, kh, vh);
    }

    private static void Heads(string op, int heads, int kvHeads, int headDim)
    {
        if (heads <= 0 || kvHeads <= 0 || headDim <= 0 || heads % kvHeads != 0)
        {
            throw new ArgumentException(
                $"{op}: {heads} query heads, {kvHeads} KV heads of {headDim}: heads must be a positive multiple of KV heads and the head dim positive");
        }
    }

    private static void Expansion(string op, Tensor k, Tensor v, int heads, int kvHeads, int headDim, Tensor kh, Tensor vh)
    {
        int tokens = k.RowCount;
        int width = heads * headDim;
        if (v.RowCount != tokens || v.RowLength != kvHeads * headDim)
        {
            throw new ArgumentException($"{op}: v {v.ShapeText} is not the shape of k {k.ShapeText}");
        }

        if (kh.RowCount != tokens || kh.RowLength != width || vh.RowCount != tokens || vh.RowLength != width)
        {
            throw new ArgumentException($"{op}: kh {kh.ShapeText}, vh {vh.ShapeText} are not [{tokens}, {heads}·{headDim}]");
        }
    }
}
