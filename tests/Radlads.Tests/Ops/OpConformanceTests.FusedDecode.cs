using Radlads.Checkpoints;

namespace Radlads.Tests.Ops;

/// <summary>
/// IOps.Rwkv7KeysValueResidual and IOps.GateUpSwiGlu: on each backend the fused call must give exactly the bits of the
/// ops it replaces run on the same backend (Rwkv7Keys then Rwkv7ValueResidual; MatMulShared then SwiGlu), write every
/// output (NaN-poisoned first), and match the float64 definitions. Keys: T = 1 (decode) and 3; heads and head dims of
/// the 0.5B (14 × 64) and 7B (28 × 128) shapes scaled down, 8 (idle lanes), 256 (8 a lane) and 320 (CUDA's fallback);
/// balanced and stock; layer 0 (no residual); prefill-sized calls (1,204 and 1,170 items: CUDA's eight-warp blocks, the
/// last one partly filled). Gate/up: F in {64, 200, 4864}, bf16, f16 and f32 weights at T = 1 (the
/// one-launch paths), and T = 3 and K = 13 (not a multiple of the 16-byte chunk), which fall back.
/// </summary>
public abstract partial class OpConformanceTests
{
    [Theory]
    [InlineData(1, 2, 64, true, true)]
    [InlineData(1, 14, 64, false, true)]
    [InlineData(1, 4, 128, true, true)]
    [InlineData(1, 4, 128, false, false)]
    [InlineData(1, 3, 8, true, true)]
    [InlineData(1, 2, 256, false, true)]
    [InlineData(1, 2, 320, true, true)]
    [InlineData(3, 2, 64, true, false)]
    [InlineData(3, 4, 128, false, true)]
    [InlineData(3, 2, 40, false, true)]
    [InlineData(301, 4, 64, true, true)]
    [InlineData(130, 9, 128, false, true)]
    public void Rwkv7KeysValueResidual(int t, int heads, int n, bool balanced, bool residual)
    {
        var data = new TestData(60 + (t * 131) + (heads * 1009) + (n * 17) + (balanced ? 3 : 0) + (residual ? 5 : 0));
        int a = heads * n;
        var k = data.Normal(t * a);
        Array.Clear(k, 0, n); // a zero head: the eps guard
        var w = data.Uniform(t * a, 0.55f, 1f);
        var iclr = data.Uniform(t * a, 0, 1);
        var kk = data.Uniform(a, 0.5f, 1.2f);
        var ka = data.Uniform(a, 0.5f, 1.5f);
        var v = data.Normal(t * a);
        var first = data.Normal(t * a);
        var nu = data.Uniform(t * a, 0, 1);

        float[][] Run(bool fused)
        {
            var (removal, replacement, kTilde) = (Out(t, a), Out(t, a), Out(t, a));
            var vt = In(v, t, a);
            var (kt, wt, at) = (In(k, t, a), In(w, t, a), In(iclr, t, a));
            var (kkt, kat) = balanced ? (null, null) : (In(kk, a), In(ka, a));
            var (ft, nt) = residual ? (In(first, t, a), In(nu, t, a)) : (null, null);
            if (fused)
            {
                Ops.Rwkv7KeysValueResidual(kt, wt, at, kkt, kat, n, balanced, removal, replacement, kTilde, vt, ft, nt);
            }
            else
            {
                Ops.Rwkv7Keys(kt, wt, at, kkt, kat, n, balanced, removal, replacement, kTilde);
                if (residual)
                {
                    Ops.Rwkv7ValueResidual(vt, ft!, nt!, vt);
                }
            }

            return [Read(removal), Read(replacement), Read(kTilde), Read(vt)];
        }

        var got = Run(fused: true);
        SameBits(Run(fused: false), got, "rwkv7_keys_vres");
        var (eRemoval, eReplacement, eTilde) = (new double[t * a], new double[t * a], new double[t * a]);
        for (int p = 0; p < t; p++)
        {
            for (int h = 0; h < heads; h++)
            {
                int o = (p * a) + (h * n);
                var kappa = Enumerable.Range(0, n).Select(i => (double)k[o + i] * (balanced ? 1 : kk[(h * n) + i])).ToArray();
                double norm = Math.Max(Math.Sqrt(kappa.Sum(x => x * x)), 1e-12);
                for (int i = 0; i < n; i++)
                {
                    int j = o + i;
                    eRemoval[j] = -kappa[i] / norm;
                    eReplacement[j] = kappa[i] / norm * iclr[j];
                    eTilde[j] = balanced ? k[j] * (1.0 - w[j] + iclr[j]) : k[j] * (1.0 + ((iclr[j] - 1.0) * ka[(h * n) + i]));
                }
            }
        }

        var eV = residual ? v.Select((x, i) => x + ((first[i] - (double)x) * nu[i])).ToArray() : v.Select(x => (double)x).ToArray();
        CloseToDefinition(eRemoval, got[0], "rwkv7_keys_vres removal");
        CloseToDefinition(eReplacement, got[1], "rwkv7_keys_vres replacement");
        CloseToDefinition(eTilde, got[2], "rwkv7_keys_vres k~");
        CloseToDefinition(eV, got[3], "rwkv7_keys_vres v");
    }

    [Fact]
    public void Rwkv7KeysValueResidualRejectsHalfAResidual()
    {
        var k = In(new float[16], 1, 16);
        var e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7KeysValueResidual(k, k, k, null, null, 8, true, Out(1, 16), Out(1, 16),
            Out(1, 16), In(new float[16], 1, 16), In(new float[16], 1, 16), null));
        Assert.Contains("vFirst and nu", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7KeysValueResidual(k, k, k, null, null, 8, true, Out(1, 16), Out(1, 16),
            Out(1, 16), In(new float[8], 1, 8), null, null));
        Assert.Contains("Rwkv7KeysValueResidual", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(DType.BF16, 1, 64, 64)]
    [InlineData(DType.BF16, 1, 128, 200)]
    [InlineData(DType.BF16, 1, 256, 4864)]
    [InlineData(DType.F16, 1, 64, 200)]
    [InlineData(DType.F16, 1, 896, 64)]
    [InlineData(DType.F32, 1, 64, 200)] // f32 weights: 4 a chunk
    [InlineData(DType.BF16, 3, 64, 200)] // prefill rows: MatMulShared + SwiGlu
    [InlineData(DType.F16, 1, 13, 64)] // K not a multiple of 8: the scalar fallback
    public void GateUpSwiGlu(DType dtype, int t, int k, int f)
    {
        var data = new TestData(61 + ((int)dtype * 7) + (t * 131) + (k * 1009) + (f * 17));
        var x = data.Normal(t * k);
        var wg = Weight(data.Normal(f * k, 0.2f), dtype, out var gr, f, k);
        var wu = Weight(data.Normal(f * k, 0.2f), dtype, out var ur, f, k);
        var xt = In(x, t, k);
        var y = Out(t, f);
        Ops.GateUpSwiGlu(xt, wg, wu, y, Out(t, f));
        var got = Read(y);

        // The unfused ops on this backend: the GEMVs against float64 (as the MatMul tests check them), then SwiGLU of
        // exactly those fp32 sums against float64. (silu(g)·u against a float64 g and u would amplify the GEMV's
        // rounding by |u|, so it is checked in two steps.) The fused output must have the unfused bits.
        var (g1, u1) = (Out(t, f), Out(t, f));
        Ops.MatMulShared(xt, [wg, wu], [null, null], [g1, u1]);
        Check(NaiveOps.MatMul(x, gr, null, t, k, f, true), g1, "gate_up_swiglu gate");
        Check(NaiveOps.MatMul(x, ur, null, t, k, f, true), u1, "gate_up_swiglu up");
        var (gate, up) = (Read(g1), Read(u1));
        Ops.SwiGlu(g1, u1, g1);
        SameBits([Read(g1)], [got], "gate_up_swiglu");
        CloseToDefinition([.. gate.Select((v, i) => v * NaiveOps.Sigmoid(v) * up[i])], got, "gate_up_swiglu");
    }

    [Fact]
    public void GateUpSwiGluRejectsMismatchedShapes()
    {
        var data = new TestData(62);
        var x = In(data.Normal(64), 1, 64);
        var wg = Weight(data.Normal(8 * 64), DType.BF16, out _, 8, 64);
        var wu = Weight(data.Normal(9 * 64), DType.BF16, out _, 9, 64);
        var e = Assert.Throws<ArgumentException>(() => Ops.GateUpSwiGlu(x, wg, wu, Out(1, 8), Out(1, 8)));
        Assert.Contains("GateUpSwiGlu", e.Message, StringComparison.Ordinal);
        var y = Out(1, 8);
        e = Assert.Throws<ArgumentException>(() => Ops.GateUpSwiGlu(x, wg, wg, y, y));
        Assert.Contains("different tensors", e.Message, StringComparison.Ordinal);
    }
}
