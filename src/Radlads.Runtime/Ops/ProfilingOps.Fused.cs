namespace Radlads.Ops;

/// <summary>
/// The fused ops whose <see cref="IOps"/> default composes other ops (RoPE + GQA, scale + multiply, the wkv7 decode with
/// its scale and gate, RoPE + GQA + keys + value residual, a prompt's activations + RoPE + keys + recurrence, which also
/// counts as prefill token mixing): forwarded as one call so the wrapped backend's one-launch version runs and the
/// profile shows it under its own name.
/// </summary>
public sealed partial class ProfilingOps
{
    public void Rwkv7KeysValueResidual(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor removal, Tensor replacement, Tensor kTilde, Tensor v, Tensor? vFirst, Tensor? nu)
    {
        long start = Start();
        inner.Rwkv7KeysValueResidual(k, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde, v, vFirst, nu);
        Time(nameof(Rwkv7KeysValueResidual), start);
    }

    public void Rwkv7RopeKeysWkv7(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, bool rope, int startPosition, float theta,
        Tensor decayZ, Tensor w0, Tensor rateZ, Tensor a0, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor? residualZ,
        Tensor? v0, Tensor? vFirst, Tensor kh, Tensor vh, Tensor w, Tensor removal, Tensor replacement, Tensor kTilde, Tensor state,
        Tensor y)
    {
        long start = Start();
        inner.Rwkv7RopeKeysWkv7(r, k, v, heads, kvHeads, headDim, rope, startPosition, theta, decayZ, w0, rateZ, a0, keyScale, iclrMix,
            balanced, residualZ, v0, vFirst, kh, vh, w, removal, replacement, kTilde, state, y);
        Mixing(nameof(Rwkv7RopeKeysWkv7), start, r.RowCount);
    }

    public void GateUpSwiGlu(Tensor x, Tensor wGate, Tensor wUp, Tensor y, Tensor upScratch)
    {
        long start = Start();
        inner.GateUpSwiGlu(x, wGate, wUp, y, upScratch);
        Time(nameof(GateUpSwiGlu), start);
    }

    public void ScaleMultiply(Tensor a, float s, Tensor b, Tensor y)
    {
        long start = Start();
        inner.ScaleMultiply(a, s, b, y);
        Time(nameof(ScaleMultiply), start);
    }

    public void RopeExpand(Tensor r, Tensor k, Tensor? v, int heads, int kvHeads, int headDim, int startPosition, float theta,
        Tensor? kh, Tensor? vh)
    {
        long start = Start();
        inner.RopeExpand(r, k, v, heads, kvHeads, headDim, startPosition, theta, kh, vh);
        Time(nameof(RopeExpand), start);
    }

    public void ExpandKv(Tensor k, Tensor v, int heads, int kvHeads, int headDim, Tensor kh, Tensor vh)
    {
        long start = Start();
        inner.ExpandKv(k, v, heads, kvHeads, headDim, kh, vh);
        Time(nameof(ExpandKv), start);
    }

    public void RopeExpandRows(Tensor r, Tensor k, Tensor? v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions, float theta,
        Tensor? kh, Tensor? vh)
    {
        long start = Start();
        inner.RopeExpandRows(r, k, v, heads, kvHeads, headDim, positions, theta, kh, vh);
        Time(nameof(RopeExpandRows), start);
    }

    public void Wkv7DecodeScaleGate(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, IReadOnlyList<Tensor> states, float scale,
        Tensor gate, Tensor y)
    {
        long start = Start();
        inner.Wkv7DecodeScaleGate(r, w, k, v, a, b, states, scale, gate, y);
        Time(nameof(Wkv7DecodeScaleGate), start);
    }

    public void Rwkv7RopeKeysValueResidualRows(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions,
        float theta, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor kh, Tensor vh, Tensor removal,
        Tensor replacement, Tensor kTilde, Tensor? vFirst, Tensor? nu)
    {
        long start = Start();
        inner.Rwkv7RopeKeysValueResidualRows(r, k, v, heads, kvHeads, headDim, positions, theta, w, a, keyScale, iclrMix, balanced, kh, vh,
            removal, replacement, kTilde, vFirst, nu);
        Time(nameof(Rwkv7RopeKeysValueResidualRows), start);
    }

    public void Rwkv7RopeKeysWkv7Rows(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions,
        float theta, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor kh, Tensor vh, Tensor removal,
        Tensor replacement, Tensor kTilde, Tensor? vFirst, Tensor? nu, IReadOnlyList<Tensor> states, float scale, Tensor gate, Tensor y)
    {
        long start = Start();
        inner.Rwkv7RopeKeysWkv7Rows(r, k, v, heads, kvHeads, headDim, positions, theta, w, a, keyScale, iclrMix, balanced, kh, vh,
            removal, replacement, kTilde, vFirst, nu, states, scale, gate, y);
        Time(nameof(Rwkv7RopeKeysWkv7Rows), start);
    }
}
