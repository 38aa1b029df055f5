using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// IOps.Rwkv7RopeKeysWkv7 (a prompt chunk's RAD-RWKV7 steps 2–9 from the LoRA pre-activations: decay, rate and residual
/// activations, RoPE + GQA expansion, keys + value residual, the delta rule): on each backend the one call must give
/// exactly the bits of its composed ops on that backend for its outputs (y, the state, vh), write every output
/// (NaN-poisoned first), and agree with the CPU backend's composition within the recurrence tolerance. The rest is
/// workspace and not compared. Shapes: one token; prompts at and around CUDA's chunk boundaries (31: below the chunked
/// kernels' 32 tokens, 32, 33, 40, 48, 50), GQA groups 1, 2 and 7, head dims 64 and 128 (the chunked prep's) and 8 and
/// 40 (the composed ops on every backend), with and without RoPE, balanced and stock keys, layer 0 and later, positions
/// 0 to past 100,000, and w formed in place of its pre-activation.
/// </summary>
public abstract partial class OpConformanceTests
{
    public static TheoryData<int, int, int, int, bool, bool, bool, int> RopeKeysWkv7Shapes() => new()
    {
        { 1, 2, 1, 8, true, true, false, 5 },
        { 31, 2, 1, 64, true, true, true, 3 },
        { 32, 7, 1, 64, true, true, true, 7 },
        { 33, 4, 2, 64, true, false, true, 0 },
        { 40, 2, 1, 64, true, true, true, 4097 },
        { 48, 2, 2, 128, true, true, false, 100003 },
        { 50, 2, 1, 128, false, false, true, 0 },
        { 20, 3, 1, 40, true, true, true, 9 },
    };

    [Theory]
    [MemberData(nameof(RopeKeysWkv7Shapes))]
    public void Rwkv7RopeKeysWkv7(int t, int heads, int kvHeads, int n, bool rope, bool balanced, bool residual, int start)
    {
        var data = new TestData(700 + (t * 13) + (heads * 1009) + (kvHeads * 7) + (n * 17) + (rope ? 1 : 0) + (balanced ? 3 : 0) + (residual ? 5 : 0));
        int a = heads * n, kv = kvHeads * n, count = t * a;
        float[] r = data.Normal(count), k = data.Normal(t * kv), v = data.Normal(t * kv);
        float[] decayZ = data.Normal(count), rateZ = data.Normal(count), residualZ = data.Normal(count), first = data.Normal(count);
        float[] w0 = data.Normal(a), a0 = data.Normal(a), v0 = data.Normal(a);
        float[] keyScale = data.Uniform(a, 0.5f, 1.2f), iclrMix = data.Uniform(a, 0.5f, 1.5f);
        float[] s0 = data.Normal(heads * n * n, 0.5f);
        Array.Clear(k, t > 1 ? kv : 0, n); // token 1's first KV head (token 0's at T = 1) is zero: the keys' eps guard
        bool inPlace = t % 2 == 0; // w formed over its own pre-activation (as the model runs it) or apart

        // Runs on `on` and reads back y, vh and the state.
        float[][] Run(IBackend on, List<IDisposable> keep, bool fused)
        {
            var io = new RunTensors(on, keep);
            Tensor T(float[] x, params int[] shape) => io.Of(x, shape);
            Tensor Poisoned() => io.Poisoned(t, a);
            var (rt, kt, vt) = (T(r, t, a), T(k, t, kv), T(v, t, kv));
            var (zw, za) = (T(decayZ, t, a), T(rateZ, t, a));
            var (zv, fv) = residual ? (T(residualZ, t, a), T(first, t, a)) : (null, null);
            var (w0t, a0t, v0t) = (T(w0, a), T(a0, a), residual ? T(v0, a) : null);
            var (kk, ka) = balanced ? (null, null) : (T(keyScale, a), T(iclrMix, a));
            var (kh, vh, removal, replacement, kTilde, y) = (Poisoned(), Poisoned(), Poisoned(), Poisoned(), Poisoned(), Poisoned());
            var w = inPlace ? zw : Poisoned();
            var state = T(s0, heads, n, n);
            if (fused)
            {
                on.Ops.Rwkv7RopeKeysWkv7(rt, kt, vt, heads, kvHeads, n, rope, start, 1e6f, zw, w0t, za, a0t, kk, ka, balanced, zv, v0t, fv, kh, vh,
                    w, removal, replacement, kTilde, state, y);
            }
            else
            {
                on.Ops.Rwkv7Decay(zw, w0t, w);
                on.Ops.AddSigmoid(za, a0t, za);
                if (zv is not null)
                {
                    on.Ops.AddSigmoid(zv, v0t!, zv);
                }

                if (rope)
                {
                    on.Ops.RopeExpand(rt, kt, vt, heads, kvHeads, n, start, 1e6f, kh, vh);
                }
                else
                {
                    on.Ops.ExpandKv(kt, vt, heads, kvHeads, n, kh, vh);
                }

                on.Ops.Rwkv7KeysValueResidual(kh, w, za, kk, ka, n, balanced, removal, replacement, kTilde, vh, fv, zv);
                on.Ops.Wkv7(rt, w, kTilde, vh, removal, replacement, state, y);
            }

            return io.Read([y, vh, state]);
        }

        string[] names = ["y", "vh", "state"];
        FusedGivesTheBitsOfItsOps(Run, "rwkv7_rope_keys_wkv7", o => names[o], Tolerances.RecurrenceRelative, Tolerances.RecurrenceAbsolute);
    }

    [Fact]
    public void Rwkv7RopeKeysWkv7RejectsMismatchedShapes()
    {
        var x = In(new float[32], 2, 16);
        var kv = In(new float[16], 2, 8);
        var p = In(new float[16], 16);
        var state = In(new float[2 * 8 * 8], 2, 8, 8);
        void Call(Tensor? residualZ, Tensor? v0, Tensor? vFirst, Tensor s, Tensor? keyScale = null, bool balanced = true) =>
            Ops.Rwkv7RopeKeysWkv7(x, kv, kv, 2, 1, 8, true, 0, 1e6f, x, p, x, p, keyScale, keyScale, balanced, residualZ, v0, vFirst, Out(2, 16),
                Out(2, 16), Out(2, 16), Out(2, 16), Out(2, 16), Out(2, 16), s, Out(2, 16));
        var e = Assert.Throws<ArgumentException>(() => Call(x, null, x, state));
        Assert.Contains("pass residualZ, v0 and vFirst together", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Call(null, null, null, In(new float[2 * 8 * 4], 2, 8, 4)));
        Assert.Contains("state [2, 8, 4] is not [2, 8, 8]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Call(null, null, null, state, balanced: false));
        Assert.Contains("k_k and k_a", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7RopeKeysWkv7(x, kv, kv, 2, 1, 8, true, 0, 1e6f, x, In(new float[8], 8), x, p, null,
            null, true, null, null, null, Out(2, 16), Out(2, 16), Out(2, 16), Out(2, 16), Out(2, 16), Out(2, 16), state, Out(2, 16)));
        Assert.Contains("w0 [8] must have one value a channel (16)", e.Message, StringComparison.Ordinal);
    }
}
