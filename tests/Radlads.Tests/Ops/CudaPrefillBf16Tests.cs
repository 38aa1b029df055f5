using System.Globalization;
using Radlads.Checkpoints;
using Radlads.Cuda;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// The CUDA prefill paths that skip activation roundings (cuBLASLt forced on from two rows): LoraSet at T &gt; 1 rounds
/// x once for all its branches and fuses the inner activation with hidden's rounding; GateUpSwiGlu writes a bf16 copy
/// of its output that the very next MatMul reading that tensor takes. Both must give exactly the bits of the composed
/// ops they replace (same roundings, same cuBLASLt plans), and a copy must never be used once anything could have
/// written its tensor. Outputs are poisoned with NaN first, so an unwritten element fails. The MLP at prefill
/// (AddRmsNormMlp) keeps gate, up and act in bf16, which the composed ops do not: it is checked against a per-element
/// bound from its own roundings instead. Also: blocks above 64 MiB come back to the block cache. Skipped without a GPU
/// or cuBLASLt.
/// </summary>
public sealed class CudaPrefillBf16Tests : CublasLtTestBase
{
    private Tensor Weight(float[] values, DType dtype, params int[] shape)
    {
        var w = Own(new NativeWeight(values, dtype, shape));
        return Own(Backend.LoadWeight(w.Data));
    }

    private float[] Read(Tensor t)
    {
        var values = new float[t.ElementCount];
        Backend.Download(t, values);
        return values;
    }

    /// <summary>Equal bits, every element finite (so none kept its NaN poison).</summary>
    private static void SameBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int nonFinite = actual.Count(v => !float.IsFinite(v));
        Assert.True(nonFinite == 0, $"{what}: {nonFinite}/{actual.Length} elements not finite (unwritten or overflowed)");
        int differ = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (BitConverter.SingleToUInt32Bits(expected[i]) != BitConverter.SingleToUInt32Bits(actual[i]))
            {
                differ++;
            }
        }

        Assert.True(differ == 0, $"{what}: {differ}/{actual.Length} elements differ from the composed ops");
    }

    /// <summary>"R×M inner outer [dtype]" per ';' as in OpConformanceTests.LoraSet; dtype bf16 unless given.</summary>
    private static (int Rank, int Width, LoraInner Inner, LoraOuter Outer, DType DType)[] Spec(string spec) =>
        [.. spec.Split(';').Select(part =>
        {
            var f = part.Trim().Split(' ');
            var size = f[0].Split('x');
            var inner = f[1] switch { "tanh" => LoraInner.Tanh, "sigmoid" => LoraInner.Sigmoid, _ => LoraInner.None };
            var outer = f[2] switch { "add" => LoraOuter.AddSigmoid, "rwkv7" => LoraOuter.Rwkv7Decay, "rwkv6" => LoraOuter.Rwkv6Decay, _ => LoraOuter.None };
            var dtype = f.Length > 3 && f[3] == "f16" ? DType.F16 : DType.BF16;
            return (int.Parse(size[0], CultureInfo.InvariantCulture), int.Parse(size[1], CultureInfo.InvariantCulture), inner, outer, dtype);
        })];

    [Theory]
    // RAD-RWKV7's four branches (decay, in-context rate, value residual, low-rank gate) at C = 256, around a 16-row tile
    // and a long prefill; ranks and widths that are not multiples of 8 (cuBLASLt may have no kernel: the built-in one
    // then runs for that GEMM, as in the composed ops); an f16 branch (composed ops); two rows (the threshold).
    [InlineData(3, 256, "64x256 tanh rwkv7; 64x256 none add; 32x256 none add; 128x256 sigmoid none")]
    [InlineData(17, 256, "64x256 tanh rwkv7; 64x256 none add; 32x256 none add; 128x256 sigmoid none")]
    [InlineData(300, 256, "64x256 tanh rwkv7; 64x256 none add; 32x256 none add; 128x256 sigmoid none")]
    [InlineData(17, 256, "12x256 tanh rwkv7; 64x40 none add; 20x250 none rwkv6; 128x256 sigmoid none")]
    [InlineData(300, 896, "96x896 tanh rwkv7; 8x64 none add f16; 64x896 none add")]
    [InlineData(2, 256, "64x256 tanh rwkv6")]
    public void LoraSetAtPrefillIsTheComposedOpsBitForBit(int t, int c, string spec)
    {
        var branches = Spec(spec);
        var data = new TestData(80 + t + c + branches.Length);
        var x = In(data.Normal(t * c), t, c);
        var set = new LoraBranch[branches.Length];
        var composed = new LoraBranch[branches.Length];
        for (int i = 0; i < branches.Length; i++)
        {
            var (r, m, inner, outer, dtype) = branches[i];
            var a = Weight(data.Normal(c * r, 1f / MathF.Sqrt(c)), dtype, c, r);
            var b = Weight(data.Normal(r * m, 1f / MathF.Sqrt(r)), dtype, r, m);
            var offset = outer == LoraOuter.None ? null : In(data.Normal(m), m);
            set[i] = new LoraBranch(a, b, Out(t, r), Out(t, m), inner, outer, offset);
            composed[i] = new LoraBranch(a, b, Out(t, r), Out(t, m), inner, outer, offset);
        }

        LoraSetReference.Run(Backend.Ops, x, composed);
        Backend.Ops.LoraSet(x, set);
        for (int i = 0; i < branches.Length; i++)
        {
            SameBits(Read(composed[i].Hidden), Read(set[i].Hidden), $"T {t}, branch {i} hidden");
            SameBits(Read(composed[i].Y), Read(set[i].Y), $"T {t}, branch {i} y");
        }
    }

    /// <summary>x [T, C], W_gate and W_up [F, C], W_down [C, F] (bf16).</summary>
    private (Tensor X, Tensor Gate, Tensor Up, Tensor Down) Mlp(int t, int c, int f, int seed)
    {
        var data = new TestData(seed);
        return (In(data.Normal(t * c), t, c), Weight(data.Normal(f * c, 1f / MathF.Sqrt(c)), DType.BF16, f, c),
            Weight(data.Normal(f * c, 1f / MathF.Sqrt(c)), DType.BF16, f, c), Weight(data.Normal(c * f, 1f / MathF.Sqrt(f)), DType.BF16, c, f));
    }

    [Theory]
    // Two rows (the threshold), no branch (the first layer's plain norm), Qwen2.5-0.5B's MLP at 300 tokens, and F = 100
    // (T·F not a multiple of 8: swiglu_bf16_bf16 one element a step, where cuBLASLt has bf16 kernels for F = 100).
    [InlineData(2, 64, 160, true)]
    [InlineData(33, 128, 352, false)]
    [InlineData(300, 896, 4864, true)]
    [InlineData(3, 64, 100, true)]
    public void Bf16PrefillMlpIsWithinBf16RoundingOfItsArithmetic(int t, int c, int f, bool withBranch)
    {
        // IOps.AddRmsNormMlp at prefill (CudaOps.Bf16PrefillMlp): h and normed are the norm's bits; y is checked per
        // element against float64 of what the path computes from the bf16 copy of normed: g = normed·W_gateᵀ, u =
        // normed·W_upᵀ, act = silu(g)·u, y = act·W_downᵀ. Its roundings: g and u to bf16 (each moves act by at most
        // 2⁻⁸·(1.1·|g·u| + |act|): |silu′| ≤ 1.1), act to bf16 (2⁻⁸·|act|), and fp32 sums in cuBLASLt's order
        // (Bf16GemmRelative); so |Δy_i| ≤ 2⁻⁸·Σ_k (1.1·|g_k·u_k| + 2·|act_k|)·|w_ik| + Bf16GemmRelative·Σ_k |act_k·w_ik|.
        // An indexing fault moves y by O(|y|).
        var data = new TestData(95 + t + c + f);
        float[] Bf16(float[] v) => Models.Bf16GemmEmulation.RoundToBf16(v);
        var (h, b, nw) = (data.Normal(t * c), data.Normal(t * c), data.Uniform(c, 0.5f, 1.5f));
        var (wg, wu, wd) = (Bf16(data.Normal(f * c, 1f / MathF.Sqrt(c))), Bf16(data.Normal(f * c, 1f / MathF.Sqrt(c))),
            Bf16(data.Normal(c * f, 1f / MathF.Sqrt(f))));
        var (gate, up, down, normWeight) = (Weight(wg, DType.BF16, f, c), Weight(wu, DType.BF16, f, c), Weight(wd, DType.BF16, c, f), In(nw, c));
        var ht = In(h, t, c);
        var branch = withBranch ? In(b, t, c) : null;
        var (normed, act, upScratch, y) = (Out(t, c), Out(t, f), Out(t, f), Out(t, c));
        long before = Backend.Bf16MlpLaunches;
        Backend.Ops.AddRmsNormMlp(ht, branch, normWeight, 1e-6f, normed, gate, up, down, act, upScratch, y);
        bool ran = Backend.Bf16MlpLaunches == before + 1;
        Assert.True(ran || f % 8 != 0, $"T {t}, C {c}, F {f}: the bf16 prefill MLP did not run");

        var h2 = In(h, t, c);
        var normed2 = Out(t, c);
        IOps.ResidualNorm(Backend.Ops, h2, withBranch ? In(b, t, c) : null, normWeight, 1e-6f, normed2);
        SameBits(Read(h2), Read(ht), "h");
        SameBits(Read(normed2), Read(normed), "normed");
        var nb = Bf16(Read(normed));
        var g = NaiveOps.MatMul(nb, wg, null, t, c, f, true);
        var u = NaiveOps.MatMul(nb, wu, null, t, c, f, true);
        var actual = Read(y);
        int bad = 0;
        string first = "";
        for (int r = 0; r < t; r++)
        {
            for (int i = 0; i < c; i++)
            {
                double expected = 0, bound = 0, magnitude = 0;
                for (int k = 0; k < f; k++)
                {
                    double gk = g[(r * f) + k], uk = u[(r * f) + k], a = gk / (1 + Math.Exp(-gk)) * uk, w = wd[(i * f) + k];
                    expected += a * w;
                    bound += ((1.1 * Math.Abs(gk * uk)) + (2 * Math.Abs(a))) * Math.Abs(w);
                    magnitude += Math.Abs(a * w);
                }

                bound = (bound * Tolerances.Bf16UnitRoundoff) + (magnitude * Tolerances.Bf16GemmRelative) + Tolerances.Bf16GemmAbsolute;
                float got = actual[(r * c) + i];
                if (!(Math.Abs(got - expected) <= bound))
                {
                    if (bad++ == 0)
                    {
                        first = $"y[{r}, {i}] = {got} vs {expected:G9} (bound {bound:G3})";
                    }
                }
            }
        }

        Assert.True(bad == 0, $"T {t}, C {c}, F {f} ({(ran ? "bf16 path" : "fp32 path")}): {bad}/{t * c} elements of y out of bounds; first {first}");
    }

    [Theory]
    // n = T·F a multiple of 4 (the float4 path only) and not (its tail); a y that starts 8 bytes past a 16-byte
    // boundary (rows of a larger tensor: the one-element path); two rows.
    [InlineData(17, 256, 512, false)]
    [InlineData(17, 256, 250, false)]
    [InlineData(300, 128, 1002, false)]
    [InlineData(5, 64, 250, true)]
    [InlineData(2, 64, 96, false)]
    public void SwiGlusBf16CopyFeedsTheDownProjectionWithTheSameBits(int t, int c, int f, bool offsetRows)
    {
        var (x, gate, up, down) = Mlp(t, c, f, 90 + t + f);
        Tensor Hidden() => offsetRows ? Own(Out(t + 1, f).Rows(1, t)) : Out(t, f);
        var y = Hidden();
        var upScratch = Out(t, f);
        var result = Out(t, c);
        long taken = Backend.Bf16CopiesTaken;
        Backend.Ops.GateUpSwiGlu(x, gate, up, y, upScratch);
        Backend.Ops.MatMul(y, down, null, result);
        Assert.Equal(taken + 1, Backend.Bf16CopiesTaken);

        // The composed ops: MatMulShared, SwiGlu, and a MatMul that rounds y itself.
        var gateOut = Hidden();
        var upOut = Out(t, f);
        var composed = Out(t, c);
        Backend.Ops.MatMulShared(x, [gate, up], [null, null], [gateOut, upOut]);
        Backend.Ops.SwiGlu(gateOut, upOut, gateOut);
        Backend.Ops.MatMul(gateOut, down, null, composed);
        Assert.Equal(taken + 1, Backend.Bf16CopiesTaken);
        string what = $"T {t}, C {c}, F {f}{(offsetRows ? ", y at an 8-byte offset" : "")}";
        SameBits(Read(gateOut), Read(y), what + ": y");
        SameBits(Read(composed), Read(result), what + ": down projection");
    }

    [Theory]
    // As RAD-RWKV7's output projection: o = (o·s)·g in place, then o_proj (with a bias, as Qwen2's o_proj has none but
    // the path takes one); the n % 4 tail; rows at an 8-byte offset (one element per step).
    [InlineData(17, 256, 128, false)]
    [InlineData(3, 250, 64, false)]
    [InlineData(300, 250, 96, true)]
    public void ScaleMultiplysBf16CopyFeedsTheOutputProjectionWithTheSameBits(int t, int a, int c, bool offsetRows)
    {
        var data = new TestData(100 + t + a);
        var o = data.Normal(t * a);
        var g = data.Normal(t * a);
        var w = Weight(data.Normal(c * a, 1f / MathF.Sqrt(a)), DType.BF16, c, a);
        var bias = In(data.Normal(c), c);
        Tensor Rows(float[] values)
        {
            if (!offsetRows)
            {
                return In(values, t, a);
            }

            var padded = new float[(t + 1) * a];
            values.CopyTo(padded, a);
            return Own(In(padded, t + 1, a).Rows(1, t));
        }

        var fused = Rows(o);
        var gate = Rows(g);
        var result = Out(t, c);
        long taken = Backend.Bf16CopiesTaken;
        Backend.Ops.ScaleMultiply(fused, 0.125f, gate, fused);
        Backend.Ops.MatMul(fused, w, bias, result);
        Assert.Equal(taken + 1, Backend.Bf16CopiesTaken);

        // The composed ops (IOps' default: Scale then Multiply), and a MatMul that rounds o itself.
        var composed = Rows(o);
        var reference = Out(t, c);
        Backend.Ops.Scale(composed, 0.125f, composed);
        Backend.Ops.Multiply(composed, gate, composed);
        Backend.Ops.MatMul(composed, w, bias, reference);
        Assert.Equal(taken + 1, Backend.Bf16CopiesTaken);
        string what = $"T {t}, A {a}, C {c}{(offsetRows ? ", o at an 8-byte offset" : "")}";
        SameBits(Read(composed), Read(fused), what + ": o");
        SameBits(Read(reference), Read(result), what + ": output projection");
    }

    [Theory]
    // Qwen2's prefill attention (the tensor-core kernel: head dims 64 and 128) writes o's bf16 copy for o_proj: T = 3
    // and T past a tile of 64 rows, GQA 2 and 7, a cache that already holds 5 positions.
    [InlineData(3, 4, 2, 64, 0)]
    [InlineData(70, 4, 2, 64, 5)]
    [InlineData(65, 7, 1, 128, 0)]
    public void AttentionsBf16CopyFeedsTheOutputProjectionWithTheSameBits(int t, int heads, int kvHeads, int n, int start)
    {
        var data = new TestData(200 + t + n);
        int width = heads * n, kvWidth = kvHeads * n, c = 96;
        var q = In(data.Normal(t * width), t, width);
        var keys = In(data.Normal((start + t) * kvWidth), start + t, kvWidth);
        var values = In(data.Normal((start + t) * kvWidth), start + t, kvWidth);
        var w = Weight(data.Normal(c * width, 1f / MathF.Sqrt(width)), DType.BF16, c, width);
        float[] Run(bool copies, out float[] o)
        {
            Backend.Bf16Copies = copies;
            try
            {
                var y = Out(t, width);
                var result = Out(t, c);
                long taken = Backend.Bf16CopiesTaken;
                Backend.Ops.Attention(q, keys, values, heads, kvHeads, n, start, y);
                Backend.Ops.MatMul(y, w, null, result);
                Assert.Equal(taken + (copies ? 1 : 0), Backend.Bf16CopiesTaken);
                o = Read(y);
                return Read(result);
            }
            finally
            {
                Backend.Bf16Copies = true;
            }
        }

        var withCopy = Run(true, out var oWithCopy);
        var rounding = Run(false, out var oRounding);
        string what = $"T {t}, heads {heads}/{kvHeads}, N {n}, start {start}";
        SameBits(oRounding, oWithCopy, what + ": attention output");
        SameBits(rounding, withCopy, what + ": output projection");
    }

    [Fact]
    public void ABf16CopyIsNotUsedOnceItsTensorMayHaveChanged()
    {
        const int T = 17, C = 64, F = 96;
        var (x, gate, up, down) = Mlp(T, C, F, 95);
        var y = Out(T, F);
        var upScratch = Out(T, F);
        var data = new TestData(96);
        var replacement = data.Normal(T * F);
        var replacementTensor = In(replacement, T, F);
        var expected = Out(T, C);
        Backend.Ops.MatMul(replacementTensor, down, null, expected);
        var afterUpload = Out(T, C);
        var afterOp = Out(T, C);
        var other = Out(T, C);
        var result = Out(T, C);
        var reference = Out(T, C);
        long taken = Backend.Bf16CopiesTaken;

        // Written by an upload or an op in between: the MatMul rounds y itself.
        Backend.Ops.GateUpSwiGlu(x, gate, up, y, upScratch);
        Backend.Upload(replacement, y);
        Backend.Ops.MatMul(y, down, null, afterUpload);
        SameBits(Read(expected), Read(afterUpload), "y uploaded after GateUpSwiGlu");

        Backend.Ops.GateUpSwiGlu(x, gate, up, y, upScratch);
        Backend.Ops.Scale(replacementTensor, 1f, y);
        Backend.Ops.MatMul(y, down, null, afterOp);
        SameBits(Read(expected), Read(afterOp), "y rewritten by Scale after GateUpSwiGlu");

        // Another x right after GateUpSwiGlu is not the copy's.
        Backend.Ops.GateUpSwiGlu(x, gate, up, y, upScratch);
        Backend.Ops.MatMul(replacementTensor, down, null, other);
        SameBits(Read(expected), Read(other), "another x after GateUpSwiGlu");
        Assert.Equal(taken, Backend.Bf16CopiesTaken);

        // A wait between the two (a profiler's) writes nothing: the copy is taken.
        Backend.Ops.GateUpSwiGlu(x, gate, up, y, upScratch);
        Backend.Synchronize();
        Backend.Ops.MatMul(y, down, null, result);
        Assert.Equal(taken + 1, Backend.Bf16CopiesTaken);
        Backend.Ops.MatMul(y, down, null, reference);
        Assert.Equal(taken + 1, Backend.Bf16CopiesTaken);
        SameBits(Read(reference), Read(result), "copy taken after a stream wait");
    }

    /// <summary>
    /// The op of <paramref name="run"/> with the bf16 copies on (as the backend runs by default) or off
    /// (<see cref="CudaBackend.Bf16Copies"/>: every GEMM rounds its input itself, the path before the copies).
    /// </summary>
    private void WithCopies(bool on, Action run)
    {
        bool before = Backend.Bf16Copies;
        Backend.Bf16Copies = on;
        try
        {
            run();
        }
        finally
        {
            Backend.Bf16Copies = before;
        }
    }

    /// <summary>Runs <paramref name="run"/> with prefill's second stream (CudaBackend.ConcurrentLora) on or off.</summary>
    private void WithConcurrentLora(bool on, Action run)
    {
        bool before = Backend.ConcurrentLora;
        Backend.ConcurrentLora = on;
        try
        {
            run();
        }
        finally
        {
            Backend.ConcurrentLora = before;
        }
    }

    /// <summary>Three uninitialized blocks, as the model allocates the GEMMs' outputs between the norm and the GEMM.</summary>
    private void ScratchAllocations(int t, int c)
    {
        for (int i = 0; i < 3; i++)
        {
            Own(Backend.AllocateUninitialized(t, c + i));
        }
    }

    /// <summary>q [A, C], k and v [KV, C] bf16 with fp32 biases (Qwen2's q/k/v), as Projections.Project hands them to MatMulShared.</summary>
    private (Tensor[] Weights, Tensor?[] Biases) Qkv(TestData data, int c, int a, int kv) =>
        ([Weight(data.Normal(a * c, 1f / MathF.Sqrt(c)), DType.BF16, a, c), Weight(data.Normal(kv * c, 1f / MathF.Sqrt(c)), DType.BF16, kv, c),
            Weight(data.Normal(kv * c, 1f / MathF.Sqrt(c)), DType.BF16, kv, c)], [In(data.Normal(a), a), In(data.Normal(kv), kv), In(data.Normal(kv), kv)]);

    /// <summary>A norm weight near one (as trained ones are), bf16 as the checkpoints store it, or fp32.</summary>
    private Tensor NormWeight(TestData data, int c, DType dtype) =>
        Weight([.. data.Normal(c, 0.2f).Select(v => 1f + v)], dtype, c);

    [Theory]
    // C = 256 (the vector path, one float4 chunk a thread), 896 (0.5B's width), 250 (C % 4 != 0: the one-element
    // path); T = 3, 17, 300 and 2 (the threshold); with the model's scratch allocations between the norm and the GEMMs
    // or without; an fp32 norm weight.
    [InlineData(3, 256, 256, 64, true, DType.BF16)]
    [InlineData(17, 256, 256, 64, false, DType.BF16)]
    [InlineData(300, 256, 256, 64, true, DType.BF16)]
    [InlineData(3, 896, 896, 128, false, DType.BF16)]
    [InlineData(17, 896, 896, 128, true, DType.F32)]
    [InlineData(300, 896, 896, 128, true, DType.BF16)]
    [InlineData(17, 250, 256, 64, true, DType.BF16)]
    [InlineData(2, 256, 256, 64, true, DType.BF16)]
    public void RmsNormsBf16CopyFeedsQkvWithTheSameBits(int t, int c, int a, int kv, bool scratchBetween, DType normDType)
    {
        var data = new TestData(110 + t + c);
        var x = In(data.Normal(t * c, 3f), t, c);
        var w = NormWeight(data, c, normDType);
        var (weights, biases) = Qkv(data, c, a, kv);
        Tensor[] Outputs() => [Out(t, a), Out(t, kv), Out(t, kv)];
        var y = Out(t, c);
        var fused = Outputs();
        var yOff = Out(t, c);
        var composed = Outputs();
        long taken = Backend.Bf16CopiesTaken;

        Backend.Ops.RmsNorm(x, w, 1e-6f, y);
        Assert.True(Backend.HasBf16Copy, "RmsNorm kept no bf16 copy");
        if (scratchBetween)
        {
            ScratchAllocations(t, a);
        }

        Backend.Ops.MatMulShared(y, weights, biases, fused);
        Assert.Equal(taken + 1, Backend.Bf16CopiesTaken);

        WithCopies(false, () =>
        {
            Backend.Ops.RmsNorm(x, w, 1e-6f, yOff);
            Assert.False(Backend.HasBf16Copy);
            Backend.Ops.MatMulShared(yOff, weights, biases, composed);
        });
        Assert.Equal(taken + 1, Backend.Bf16CopiesTaken);
        string what = $"T {t}, C {c}{(scratchBetween ? ", scratch between" : "")}, {normDType} norm weight";
        SameBits(Read(yOff), Read(y), what + ": y");
        for (int i = 0; i < 3; i++)
        {
            SameBits(Read(composed[i]), Read(fused[i]), what + $": projection {i}");
        }
    }

    [Theory]
    // As RAD-RWKV7's prompt layer: h += branch and y = RmsNorm(h) with q/k/v and the LoRA set (AddRmsNormMatMulShared
    // LoraSet), then the low-rank gate's LoraSet on y beside the recurrence: the fused op hands the norm's copy on, so
    // the gate's LoRA takes it too (two copies taken), and everything has the bits of copies off. T = 2 (the threshold),
    // 17 and 300; C = 256 and 896; with and without the second stream.
    [InlineData(2, 256, false)]
    [InlineData(17, 256, true)]
    [InlineData(300, 896, true)]
    [InlineData(300, 896, false)]
    public void TheLoraSetsNormCopyIsHandedOnToTheGatesLoraSet(int t, int c, bool concurrent)
    {
        var data = new TestData(140 + t + c);
        var h0 = data.Normal(t * c, 3f);
        var delta = In(data.Normal(t * c), t, c);
        var w = NormWeight(data, c, DType.BF16);
        var (weights, biases) = Qkv(data, c, c, 64);
        LoraBranch Branch(int r, LoraInner inner, LoraOuter outer, float[] a, float[] b, float[]? offset) =>
            new(Weight(a, DType.BF16, c, r), Weight(b, DType.BF16, r, c), Out(t, r), Out(t, c), inner, outer, offset is null ? null : In(offset, c));
        var (decayA, decayB, decayOffset) = (data.Normal(c * 64, 1f / MathF.Sqrt(c)), data.Normal(64 * c, 0.125f), data.Normal(c));
        var (gateA, gateB) = (data.Normal(c * 128, 1f / MathF.Sqrt(c)), data.Normal(128 * c, 1f / MathF.Sqrt(128)));
        (float[] Normed, float[][] Projections, float[] Decay, float[] Gate) Run(bool copies)
        {
            var result = (Normed: Array.Empty<float>(), Projections: Array.Empty<float[]>(), Decay: Array.Empty<float>(), Gate: Array.Empty<float>());
            WithCopies(copies, () => WithConcurrentLora(concurrent, () =>
            {
                var h = In(h0, t, c);
                var y = Out(t, c);
                Tensor[] outputs = [Out(t, c), Out(t, 64), Out(t, 64)];
                var decay = Branch(64, LoraInner.Tanh, LoraOuter.Rwkv7Decay, decayA, decayB, decayOffset);
                var gate = Branch(128, LoraInner.Sigmoid, LoraOuter.None, gateA, gateB, null);
                long taken = Backend.Bf16CopiesTaken;
                Backend.Ops.AddRmsNormMatMulSharedLoraSet(h, delta, w, 1e-6f, y, weights, biases, outputs, [decay]);
                Backend.Ops.BeginBeside();
                Backend.Ops.LoraSet(y, [gate]);
                Backend.Ops.EndBeside();
                Backend.Ops.JoinBeside();
                Assert.Equal(taken + (copies ? 2 : 0), Backend.Bf16CopiesTaken);
                Assert.False(Backend.HasBf16Copy, "the copy outlived its last reader");
                result = (Read(y), outputs.Select(Read).ToArray(), Read(decay.Y), Read(gate.Y));
            }));
            return result;
        }

        var on = Run(true);
        var off = Run(false);
        string what = $"T {t}, C {c}{(concurrent ? ", second stream" : "")}";
        SameBits(off.Normed, on.Normed, what + ": normed");
        for (int i = 0; i < 3; i++)
        {
            SameBits(off.Projections[i], on.Projections[i], what + $": projection {i}");
        }

        SameBits(off.Decay, on.Decay, what + ": decay LoRA");
        SameBits(off.Gate, on.Gate, what + ": gate LoRA");
    }

    [Theory]
    // As the MLP: h += branch, y = RmsNorm(h), then gate/up and SwiGLU (whose own copy feeds the down projection).
    [InlineData(3, 256, 512, true)]
    [InlineData(17, 256, 512, false)]
    [InlineData(300, 256, 512, true)]
    [InlineData(3, 896, 1024, true)]
    [InlineData(17, 896, 1024, true)]
    [InlineData(300, 896, 1024, false)]
    [InlineData(17, 250, 250, true)]
    public void AddRmsNormsBf16CopyFeedsGateUpSwiGluWithTheSameBits(int t, int c, int f, bool scratchBetween)
    {
        var (_, gate, up, down) = Mlp(t, c, f, 120 + t + c);
        var data = new TestData(130 + t + c);
        var h = data.Normal(t * c, 3f);
        var branch = In(data.Normal(t * c), t, c);
        var w = NormWeight(data, c, DType.BF16);
        (Tensor H, Tensor Y, Tensor G, Tensor U, Tensor Down) Run(bool copies)
        {
            var ht = In(h, t, c);
            var (y, g, u, result) = (Out(t, c), Out(t, f), Out(t, f), Out(t, c));
            WithCopies(copies, () =>
            {
                Backend.Ops.AddRmsNorm(ht, branch, w, 1e-6f, y);
                Assert.Equal(copies, Backend.HasBf16Copy);
                if (scratchBetween)
                {
                    ScratchAllocations(t, f);
                }

                Backend.Ops.GateUpSwiGlu(y, gate, up, g, u);
                Backend.Ops.MatMul(g, down, null, result);
            });
            return (ht, y, g, u, result);
        }

        long taken = Backend.Bf16CopiesTaken;
        var on = Run(true);
        // Two copies taken: the norm's by gate/up, SwiGLU's by the down projection.
        Assert.Equal(taken + 2, Backend.Bf16CopiesTaken);
        var off = Run(false);
        Assert.Equal(taken + 2, Backend.Bf16CopiesTaken);
        string what = $"T {t}, C {c}, F {f}{(scratchBetween ? ", scratch between" : "")}";
        SameBits(Read(off.H), Read(on.H), what + ": h");
        SameBits(Read(off.Y), Read(on.Y), what + ": y");
        SameBits(Read(off.G), Read(on.G), what + ": SwiGLU");
        SameBits(Read(off.U), Read(on.U), what + ": up");
        SameBits(Read(off.Down), Read(on.Down), what + ": down projection");
    }

    [Fact]
    public void ANormsBf16CopyIsNotUsedOnceItsTensorMayHaveChanged()
    {
        const int T = 17, C = 256, A = 256, KV = 64;
        var data = new TestData(140);
        var x = In(data.Normal(T * C), T, C);
        var w = NormWeight(data, C, DType.BF16);
        var (weights, biases) = Qkv(data, C, A, KV);
        var replacement = data.Normal(T * C);
        var replacementTensor = In(replacement, T, C);
        Tensor[] Outputs() => [Out(T, A), Out(T, KV), Out(T, KV)];
        var normed = Out(T, C);
        var expectedNormed = Outputs();
        var expectedReplacement = Outputs();
        WithCopies(false, () =>
        {
            Backend.Ops.RmsNorm(x, w, 1e-6f, normed);
            Backend.Ops.MatMulShared(normed, weights, biases, expectedNormed);
            Backend.Ops.MatMulShared(replacementTensor, weights, biases, expectedReplacement);
        });
        void Check(Tensor[] expected, Tensor[] actual, string what)
        {
            for (int i = 0; i < 3; i++)
            {
                SameBits(Read(expected[i]), Read(actual[i]), $"{what}: projection {i}");
            }
        }

        var y = Out(T, C);
        long taken = Backend.Bf16CopiesTaken;

        // A zeroed allocation (a write) between: the copy is stale, the GEMMs round y themselves.
        var afterAllocation = Outputs();
        Backend.Ops.RmsNorm(x, w, 1e-6f, y);
        Own(Backend.Allocate(T, C));
        Backend.Ops.MatMulShared(y, weights, biases, afterAllocation);
        Assert.Equal(taken, Backend.Bf16CopiesTaken); // the allocation was the copy's one entry: it went stale unused
        Check(expectedNormed, afterAllocation, "zeroed allocation after RmsNorm");

        // y uploaded, or rewritten by an op, in between: the GEMMs see the new values.
        var afterUpload = Outputs();
        Backend.Ops.RmsNorm(x, w, 1e-6f, y);
        Backend.Upload(replacement, y);
        Backend.Ops.MatMulShared(y, weights, biases, afterUpload);
        Check(expectedReplacement, afterUpload, "y uploaded after RmsNorm");
        var afterOp = Outputs();
        var h = In(data.Normal(T * C), T, C);
        Backend.Ops.AddRmsNorm(h, x, w, 1e-6f, y);
        Backend.Ops.Scale(replacementTensor, 1f, y);
        Backend.Ops.MatMulShared(y, weights, biases, afterOp);
        Check(expectedReplacement, afterOp, "y rewritten by Scale after AddRmsNorm");

        // Another x right after the norm is not the copy's; nor is a GateUpSwiGlu of another x.
        var other = Outputs();
        Backend.Ops.RmsNorm(x, w, 1e-6f, y);
        Backend.Ops.MatMulShared(replacementTensor, weights, biases, other);
        Check(expectedReplacement, other, "another x after RmsNorm");
        Assert.Equal(taken, Backend.Bf16CopiesTaken);

        // The norm's output freed and its block handed out again: the copy is dropped with it.
        var freed = (CudaTensor)Backend.AllocateUninitialized(T, C);
        ulong address = freed.Pointer;
        Backend.Ops.RmsNorm(x, w, 1e-6f, freed);
        Assert.True(Backend.HasBf16Copy);
        freed.Dispose();
        var again = (CudaTensor)Own(Backend.AllocateUninitialized(T, C));
        Assert.Equal(address, again.Pointer);
        Assert.False(Backend.HasBf16Copy);
        Backend.Ops.MatMulShared(again, weights, biases, Outputs());
        Assert.Equal(taken, Backend.Bf16CopiesTaken);

        // A wait between the two writes nothing: the copy is taken.
        var afterWait = Outputs();
        Backend.Ops.RmsNorm(x, w, 1e-6f, y);
        Backend.Synchronize();
        Backend.Ops.MatMulShared(y, weights, biases, afterWait);
        Assert.Equal(taken + 1, Backend.Bf16CopiesTaken);
        Check(expectedNormed, afterWait, "copy taken after a stream wait");
    }

    [Fact]
    public void DecodeNormsMakeNoBf16Copy()
    {
        const int C = 256, F = 512;
        var (x, gate, up, _) = Mlp(1, C, F, 150);
        var data = new TestData(151);
        var w = NormWeight(data, C, DType.BF16);
        var (weights, biases) = Qkv(data, C, C, 64);
        var hValues = data.Normal(C);
        (Tensor Y, Tensor H, Tensor[] Qkv, Tensor G) Run(bool copies)
        {
            var (y, h, qkv, g) = (Out(1, C), In(hValues, 1, C), new[] { Out(1, C), Out(1, 64), Out(1, 64) }, Out(1, F));
            WithCopies(copies, () =>
            {
                Backend.Ops.RmsNorm(x, w, 1e-6f, y);
                Assert.False(Backend.HasBf16Copy);
                Backend.Ops.MatMulShared(y, weights, biases, qkv);
                Backend.Ops.AddRmsNorm(h, x, w, 1e-6f, y);
                Assert.False(Backend.HasBf16Copy);
                Backend.Ops.GateUpSwiGlu(y, gate, up, g, Out(1, F));
            });
            return (y, h, qkv, g);
        }

        long taken = Backend.Bf16CopiesTaken;
        var on = Run(true);
        var off = Run(false);
        Assert.Equal(taken, Backend.Bf16CopiesTaken);
        SameBits(Read(off.Y), Read(on.Y), "T 1: y");
        SameBits(Read(off.H), Read(on.H), "T 1: h");
        SameBits(Read(off.G), Read(on.G), "T 1: SwiGLU");
        for (int i = 0; i < 3; i++)
        {
            SameBits(Read(off.Qkv[i]), Read(on.Qkv[i]), $"T 1: projection {i}");
        }
    }

    [Theory]
    // Copies a prefill with all logits takes: per layer the first norm's (q/k/v) and the MLP norm's (gate/up; the MLP's
    // act is bf16 already: CudaOps.Bf16PrefillMlp), Qwen2 also the attention's, RAD-RWKV7 ScaleMultiply's (o_proj) and
    // the first norm's again for the low-rank gate's LoRA set (handed on by the fused q/k/v + LoRA set op); then the
    // final norm's (LM head). RAD-RWKV6 token-shifts x before its projections, so only the MLP's and the head's.
    // Without copies the MLP rounds normed itself, to the same bits.
    [InlineData(Radlads.Models.Architecture.Qwen2, 3)]
    [InlineData(Radlads.Models.Architecture.Rwkv7Qwen2, 4)]
    [InlineData(Radlads.Models.Architecture.Rwkv6Qwen2, 1)]
    public void APrefillTakesTheCopiesAndGivesTheSameLogits(Radlads.Models.Architecture architecture, int perLayer)
    {
        var config = Radlads.Models.SyntheticModel.Config("tiny", architecture);
        using var model = Radlads.Models.SyntheticModel.Create(config, Backend, seed: 7);
        int[] tokens = [.. Enumerable.Range(0, 17).Select(i => ((i * 53) + 5) % config.VocabSize)];
        float[] Prefill(bool copies)
        {
            float[] logits = [];
            WithCopies(copies, () =>
            {
                using var state = model.CreateState();
                logits = model.Forward(state, tokens, allLogits: true);
            });
            return logits;
        }

        long taken = Backend.Bf16CopiesTaken;
        var on = Prefill(true);
        long copies = Backend.Bf16CopiesTaken - taken;
        var off = Prefill(false);
        Assert.Equal(taken + copies, Backend.Bf16CopiesTaken);
        Assert.Equal((perLayer * config.NumHiddenLayers) + 1, copies);
        SameBits(off, on, $"{architecture} prefill logits");
    }

    /// <summary>
    /// While the second stream is forked, a block freed by either stream's op is not handed out again (the other
    /// stream may still use it) until the join; blocks freed before the fork are; launches between BeginSide and EndSide
    /// go to the second stream. Misuse (a fork inside a fork, a join or a side section without one) throws.
    /// </summary>
    [Fact]
    public void BlocksFreedWhileForkedAreHeldUntilTheJoin()
    {
        const int Floats = 4096;
        Backend.ReleaseCachedMemory();
        ulong before;
        using (var t = (CudaTensor)Backend.AllocateUninitialized(Floats))
        {
            before = t.Pointer;
        }

        nint main = Backend.Stream;
        long forks = Backend.SideForks;
        Backend.Fork();
        Assert.Equal(forks + 1, Backend.SideForks);
        Assert.Throws<InvalidOperationException>(Backend.Fork);
        ulong freedWhileForked;
        var first = (CudaTensor)Backend.AllocateUninitialized(Floats);
        var second = (CudaTensor)Backend.AllocateUninitialized(Floats);
        try
        {
            Assert.Equal(before, first.Pointer);
            freedWhileForked = first.Pointer;
            first.Dispose();
            Backend.BeginSide();
            Assert.NotEqual(main, Backend.Stream);
            using (var side = (CudaTensor)Backend.AllocateUninitialized(Floats))
            {
                Assert.NotEqual(freedWhileForked, side.Pointer);
                Assert.NotEqual(second.Pointer, side.Pointer);
            }

            Backend.EndSide();
            Assert.Equal(main, Backend.Stream);
        }
        finally
        {
            Backend.Join();
        }

        Assert.Equal(main, Backend.Stream);
        Assert.Throws<InvalidOperationException>(Backend.Join);
        Assert.Throws<InvalidOperationException>(Backend.BeginSide);
        // After the join the held blocks are free again (both of them: the first and the side's).
        Assert.Equal(2 * CudaBackend.SizeClass(Floats * 4L), Backend.CachedBytes);
        using var again = (CudaTensor)Backend.AllocateUninitialized(Floats);
        second.Dispose();
        Backend.Synchronize();
    }

    /// <summary>
    /// RAD-RWKV7's prefill with its LoRAs on the second stream (CudaBackend.ConcurrentLora: two forks a layer, the LoRA
    /// set beside q/k/v and the low-rank gate's beside the recurrence) and without: the same logits bit for bit, and
    /// the state after it too (a decode step's logits).
    /// </summary>
    [Fact]
    public void APrefillWithItsLorasOnTheSecondStreamGivesTheSameBits()
    {
        var config = Radlads.Models.SyntheticModel.Config("tiny", Radlads.Models.Architecture.Rwkv7Qwen2);
        using var model = Radlads.Models.SyntheticModel.Create(config, Backend, seed: 11);
        int[] tokens = [.. Enumerable.Range(0, 41).Select(i => ((i * 37) + 3) % config.VocabSize)];
        float[] Prefill(bool beside)
        {
            float[] result = [];
            WithConcurrentLora(beside, () =>
            {
                using var state = model.CreateState();
                var logits = model.Forward(state, tokens, allLogits: true);
                result = [.. logits, .. model.Forward(state, [tokens[0]])];
            });
            return result;
        }

        long forks = Backend.SideForks;
        var off = Prefill(false);
        Assert.Equal(forks, Backend.SideForks);
        var on = Prefill(true);
        Assert.Equal(forks + (2 * config.NumHiddenLayers), Backend.SideForks);
        SameBits(off, on, "RAD-RWKV7 prefill logits, then one decode step's");
    }

    [Fact]
    public void BlocksAbove64MiBComeBackToTheCache()
    {
        // 100 MiB: larger than the old 64 MiB limit, far inside the budget (a sixteenth of the device's memory).
        const int Floats = 25 << 20;
        long size = CudaBackend.SizeClass(Floats * 4L);
        Backend.ReleaseCachedMemory();
        ulong pointer;
        using (var first = (CudaTensor)Backend.AllocateUninitialized(Floats))
        {
            pointer = first.Pointer;
        }

        Assert.Equal(size, Backend.CachedBytes);
        using var second = (CudaTensor)Backend.AllocateUninitialized(Floats);
        Assert.Equal(pointer, second.Pointer);
        Assert.Equal(0, Backend.CachedBytes);
    }
}
