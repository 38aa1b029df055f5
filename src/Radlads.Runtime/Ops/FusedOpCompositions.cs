namespace Radlads.Ops;

/// <summary>
/// The ops a fused op stands for, called on a given <see cref="IOps"/>: the fused op's default (the CPU reference) and a
/// backend's fallback where its one-launch version does not apply run the same sequence from here.
/// </summary>
public static class FusedOpCompositions
{
    /// <summary><see cref="IOps.Rwkv7RopeKeysWkv7"/> as its seven ops (arguments checked by the caller).</summary>
    public static void RopeKeysWkv7(IOps ops, Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, bool rope, int startPosition,
        float theta, Tensor decayZ, Tensor w0, Tensor rateZ, Tensor a0, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor? residualZ,
        Tensor? v0, Tensor? vFirst, Tensor kh, Tensor vh, Tensor w, Tensor removal, Tensor replacement, Tensor kTilde, Tensor state, Tensor y)
    {
        ops.Rwkv7Decay(decayZ, w0, w);
        ops.AddSigmoid(rateZ, a0, rateZ);
        if (residualZ is not null)
        {
            ops.AddSigmoid(residualZ, v0!, residualZ);
        }

        if (rope)
        {
            ops.RopeExpand(r, k, v, heads, kvHeads, headDim, startPosition, theta, kh, vh);
        }
        else
        {
            ops.ExpandKv(k, v, heads, kvHeads, headDim, kh, vh);
        }

        ops.Rwkv7KeysValueResidual(kh, w, rateZ, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde, vh, vFirst, residualZ);
        ops.Wkv7(r, w, kTilde, vh, removal, replacement, state, y);
    }
}
