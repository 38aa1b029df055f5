using System.Globalization;
using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// <see cref="IOps.LoraSet"/>: 1–4 LoRA branches on one x, every inner and outer kind, against the float64 composition
/// (x·A, inner, ·B, outer). T = 1 with bf16/f16 factors whose ranks and widths are multiples of 8 takes CUDA's two-launch
/// path (concatenated columns crossing the 256-column tiles mid-branch, K split over blocks at C = 896 and 3584, partial
/// up tiles for widths like 24 and 40); T = 3, f32, mixed dtypes and odd ranks or widths take the composed ops. Both the result y
/// and the documented hidden output inner(x·A) are checked in full after poisoning.
/// </summary>
public abstract partial class OpConformanceTests
{
    /// <summary>
    /// One branch per ';': "R×M inner outer", inner ∈ {none, tanh, sigmoid}, outer ∈ {none, add, rwkv7, rwkv6}.
    /// </summary>
    private static (int Rank, int Width, LoraInner Inner, LoraOuter Outer)[] LoraSpec(string spec) =>
        [.. spec.Split(';').Select(part =>
        {
            var f = part.Trim().Split(' ');
            var size = f[0].Split('x');
            var inner = f[1] switch { "tanh" => LoraInner.Tanh, "sigmoid" => LoraInner.Sigmoid, _ => LoraInner.None };
            var outer = f[2] switch { "add" => LoraOuter.AddSigmoid, "rwkv7" => LoraOuter.Rwkv7Decay, "rwkv6" => LoraOuter.Rwkv6Decay, _ => LoraOuter.None };
            return (int.Parse(size[0], CultureInfo.InvariantCulture), int.Parse(size[1], CultureInfo.InvariantCulture), inner, outer);
        })];

    [Theory]
    // The 7B RAD-RWKV7 layer (decay, in-context rate, value residual, low-rank gate at C = 3584).
    [InlineData(DType.BF16, 1, 3584, "96x3584 tanh rwkv7; 96x3584 none add; 64x3584 none add; 416x3584 sigmoid none")]
    // 0.5B (C = 896), layer 0 (no value residual), f16; and every inner × outer kind with narrow and partial up tiles.
    [InlineData(DType.F16, 1, 896, "32x896 tanh rwkv7; 32x896 none add; 64x896 sigmoid none")]
    [InlineData(DType.BF16, 1, 896, "8x24 tanh rwkv6; 32x40 none none; 416x128 sigmoid add; 96x896 tanh rwkv7")]
    [InlineData(DType.F16, 1, 3584, "416x896 sigmoid rwkv6")]
    [InlineData(DType.BF16, 1, 64, "8x64 none rwkv7")]
    [InlineData(DType.F16, 1, 64, "32x8 tanh add; 96x64 sigmoid rwkv6; 8x16 none none")]
    // Fallbacks: several rows, f32 factors, a rank and widths that are not multiples of 8 (on CUDA the branches that do
    // qualify still take the kernels, the others the composed ops).
    [InlineData(DType.BF16, 3, 896, "96x896 tanh rwkv7; 32x896 none add; 64x896 none add; 32x896 sigmoid none")]
    [InlineData(DType.F16, 3, 64, "8x64 tanh rwkv6")]
    [InlineData(DType.F32, 1, 64, "32x64 tanh rwkv7; 8x64 none add; 96x40 sigmoid rwkv6")]
    [InlineData(DType.BF16, 1, 896, "12x40 tanh rwkv6; 8x64 none add; 8x20 none none; 32x64 sigmoid rwkv7")]
    public void LoraSet(DType dtype, int t, int c, string spec)
    {
        var branches = LoraSpec(spec);
        var data = new TestData(60 + c + t + branches.Length);
        var x = data.Normal(t * c);
        var xt = In(x, t, c);
        var set = new LoraBranch[branches.Length];
        var expected = new (double[] Hidden, double[] Y)[branches.Length];
        for (int i = 0; i < branches.Length; i++)
        {
            var (r, m, inner, outer) = branches[i];
            // Scaled so that x·A and h·B are O(1): the outer ops see inputs where they are not flat.
            var a = Weight(data.Normal(c * r, 1f / MathF.Sqrt(c)), dtype, out var ar, c, r);
            var b = Weight(data.Normal(r * m, 1f / MathF.Sqrt(r)), dtype, out var br, r, m);
            var offset = outer == LoraOuter.None ? null : data.Normal(m);
            set[i] = new LoraBranch(a, b, Out(t, r), Out(t, m), inner, outer, offset is null ? null : In(offset, m));
            var hidden = NaiveOps.MatMul(x, ar, null, t, c, r, outIn: false);
            hidden = inner switch
            {
                LoraInner.Tanh => NaiveOps.Tanh(hidden),
                LoraInner.Sigmoid => NaiveOps.Sigmoid(hidden),
                _ => hidden,
            };
            var z = NaiveOps.MatMul(hidden, NaiveOps.ToDouble(br), null, t, r, m, outIn: false);
            var y = outer switch
            {
                LoraOuter.AddSigmoid => NaiveOps.AddSigmoid(z, NaiveOps.ToDouble(offset!)),
                LoraOuter.Rwkv7Decay => NaiveOps.Rwkv7Decay(z, NaiveOps.ToDouble(offset!)),
                LoraOuter.Rwkv6Decay => NaiveOps.Rwkv6Decay(z, NaiveOps.ToDouble(offset!)),
                _ => z,
            };
            expected[i] = (hidden, y);
        }

        Ops.LoraSet(xt, set);
        for (int i = 0; i < branches.Length; i++)
        {
            Compare.Close(expected[i].Hidden, Read(set[i].Hidden), Tolerances.LoraSetRelative, Tolerances.LoraSetAbsolute, $"lora_set branch {i} hidden");
            Compare.Close(expected[i].Y, Read(set[i].Y), Tolerances.LoraSetRelative, Tolerances.LoraSetAbsolute, $"lora_set branch {i} y");
        }
    }

    /// <summary>How many gemv_group_lora_down launches the backend has queued (CUDA); null where the op is the IOps default.</summary>
    private long? GroupLoraLaunches => Backend switch
    {
        Radlads.Cuda.CudaBackend cuda => cuda.GroupLoraLaunches,
        _ => null,
    };

    /// <summary>
    /// <see cref="IOps.AddRmsNormMatMulSharedLoraSet"/> against its two ops (AddRmsNormMatMulShared, then LoraSet on
    /// normed) on the same backend: the same bits for h, normed, q/k/v (with biases) and every branch's hidden and y, all
    /// written (NaN-poisoned first). On CUDA at T = 1 with bf16 weights and kernel-ready LoRA factors, the norm's launch
    /// then one launch of lora_down's and gemv_group's blocks: the 7B layer's LoRA set at C = 3584 (K split over blocks,
    /// four 256-column tiles), 0.5B's layer 0 (C = 896, the first layer's plain RmsNorm), C = 64 (one split: no
    /// partials); prompt rows, f16, and the norm fused into the GEMV (CudaBackend.FuseNormGemv) take the two ops, except
    /// that at prefill sizes (T = 3, 40, 72: cuBLASLt) the LoRA downs read the norm's bf16 copy of normed, as q/k/v do,
    /// and run on the backend's second stream beside them (the same bits, with every block the two streams use held
    /// until they join). The
    /// two-op results are held to the float64 definitions by those ops' own tests.
    /// </summary>
    [Theory]
    [InlineData(DType.BF16, 1, 3584, 512, 128, "96x3584 tanh rwkv7; 96x3584 none add; 64x3584 none add; 416x3584 sigmoid none", true, false, true)]
    [InlineData(DType.BF16, 1, 896, 896, 128, "32x896 tanh rwkv7; 32x896 none add; 64x896 sigmoid none", false, false, true)]
    [InlineData(DType.BF16, 1, 64, 64, 32, "8x64 none rwkv7; 32x64 tanh add", true, false, true)]
    [InlineData(DType.BF16, 1, 896, 256, 128, "32x896 tanh rwkv7; 64x896 sigmoid none", true, true, false)]
    [InlineData(DType.BF16, 3, 896, 256, 128, "32x896 tanh rwkv7; 64x896 sigmoid none", true, false, false)]
    [InlineData(DType.F16, 1, 896, 256, 128, "32x896 tanh rwkv7", true, false, false)]
    [InlineData(DType.BF16, 40, 896, 256, 128, "32x896 tanh rwkv7; 32x896 none add; 64x896 sigmoid none", true, false, false)]
    [InlineData(DType.BF16, 72, 128, 128, 64, "32x128 tanh rwkv7; 64x128 sigmoid none", false, false, false)]
    public void AddRmsNormMatMulSharedLoraSetGivesTheBitsOfItsTwoOps(DType dtype, int t, int c, int mq, int mkv, string spec, bool withBranch,
        bool fuseNormOnCuda, bool oneLaunchOnCuda)
    {
        var branches = LoraSpec(spec);
        var data = new TestData(70 + c + t + mq);
        var (h, b, normWeight, _) = ResidualNormInputs(data, t, c, dtype);
        int[] rows = [mq, mkv, mkv];
        Tensor[] weights = [.. rows.Select(m => Weight(data.Normal(m * c, 1f / MathF.Sqrt(c)), dtype, out _, m, c))];
        Tensor?[] biases = [.. rows.Select(m => (Tensor?)In(data.Normal(m), m))];
        var factors = branches.Select(br => (
            A: Weight(data.Normal(c * br.Rank, 1f / MathF.Sqrt(c)), dtype, out _, c, br.Rank),
            B: Weight(data.Normal(br.Rank * br.Width, 1f / MathF.Sqrt(br.Rank)), dtype, out _, br.Rank, br.Width),
            Offset: br.Outer == LoraOuter.None ? null : In(data.Normal(br.Width), br.Width))).ToArray();
        LoraBranch[] Set() => [.. branches.Select((br, i) =>
            new LoraBranch(factors[i].A, factors[i].B, Out(t, br.Rank), Out(t, br.Width), br.Inner, br.Outer, factors[i].Offset))];
        var cuda = Backend as Radlads.Cuda.CudaBackend;
        bool fuseNorm = cuda?.FuseNormGemv ?? false;
        if (cuda is not null)
        {
            cuda.FuseNormGemv = fuseNormOnCuda;
        }

        try
        {
            var h1 = In(h, t, c);
            var normed1 = Out(t, c);
            Tensor[] twoOpsOut = [.. rows.Select(m => Out(t, m))];
            var twoOpsSet = Set();
            Ops.AddRmsNormMatMulShared(h1, withBranch ? In(b, t, c) : null, normWeight, 1e-6f, normed1, weights, biases, twoOpsOut);
            Ops.LoraSet(normed1, twoOpsSet);

            var h2 = In(h, t, c);
            var normed2 = Out(t, c);
            Tensor[] fusedOut = [.. rows.Select(m => Out(t, m))];
            var fusedSet = Set();
            long? before = GroupLoraLaunches;
            long forksBefore = cuda?.SideForks ?? 0;
            Ops.AddRmsNormMatMulSharedLoraSet(h2, withBranch ? In(b, t, c) : null, normWeight, 1e-6f, normed2, weights, biases, fusedOut, fusedSet);
            if (before is { } launched)
            {
                Assert.Equal(launched + (oneLaunchOnCuda ? 1 : 0), GroupLoraLaunches);
            }

            if (cuda is not null)
            {
                // Prompt rows on cuBLASLt: the LoRA set ran on the second stream beside q/k/v (CudaBackend.ConcurrentLora;
                // CudaOpConformanceTests keeps cuBLASLt off, CudaPrefillBf16Tests runs this path at model level).
                bool side = t > 1 && t >= cuda.GemmMinRows && cuda.Gemm is not null && cuda.ConcurrentLora;
                Assert.Equal(forksBefore + (side ? 1 : 0), cuda.SideForks);
            }

            var pairs = new[] { (h1, h2, "h"), (normed1, normed2, "normed") }
                .Concat(twoOpsOut.Zip(fusedOut, (x, y) => (x, y, "q/k/v")))
                .Concat(twoOpsSet.Zip(fusedSet, (x, y) => (x.Hidden, y.Hidden, "hidden")))
                .Concat(twoOpsSet.Zip(fusedSet, (x, y) => (x.Y, y.Y, "y")));
            foreach (var (expected, actual, what) in pairs)
            {
                var e = Read(expected);
                var a = Read(actual);
                Assert.True(a.All(float.IsFinite), $"{what}: not every element written (NaN left) or not finite");
                Assert.Equal(e, a);
            }
        }
        finally
        {
            if (cuda is not null)
            {
                cuda.FuseNormGemv = fuseNorm;
            }
        }
    }

    [Fact]
    public void LoraSetWithFactorsOfTwoDtypesTakesTheComposedOpsAndIsRight()
    {
        var data = new TestData(67);
        const int c = 128, r = 16, m = 64;
        var x = data.Normal(c);
        var a = Weight(data.Normal(c * r, 0.1f), DType.BF16, out var ar, c, r);
        var b = Weight(data.Normal(r * m, 0.25f), DType.F16, out var br, r, m);
        var w0 = data.Normal(m);
        var branch = new LoraBranch(a, b, Out(1, r), Out(1, m), LoraInner.Tanh, LoraOuter.Rwkv7Decay, In(w0, m));
        Ops.LoraSet(In(x, 1, c), [branch]);
        var hidden = NaiveOps.Tanh(NaiveOps.MatMul(x, ar, null, 1, c, r, outIn: false));
        var expected = NaiveOps.Rwkv7Decay(NaiveOps.MatMul(hidden, NaiveOps.ToDouble(br), null, 1, r, m, outIn: false), NaiveOps.ToDouble(w0));
        Compare.Close(expected, Read(branch.Y), Tolerances.LoraSetRelative, Tolerances.LoraSetAbsolute, "lora_set mixed dtypes");
    }

    [Fact]
    public void LoraSetRejectsBadArgumentsWithAClearMessage()
    {
        var data = new TestData(68);
        const int c = 64, r = 8;
        var x = In(data.Normal(c), 1, c);
        var a = Weight(data.Normal(c * r, 0.1f), DType.BF16, out _, c, r);
        var b = Weight(data.Normal(r * c, 0.1f), DType.BF16, out _, r, c);
        var offset = In(data.Normal(c), c);
        LoraBranch Branch() => new(a, b, Out(1, r), Out(1, c), LoraInner.Tanh, LoraOuter.AddSigmoid, offset);

        void Rejects(string fragment, params LoraBranch[] branches)
        {
            var e = Assert.Throws<ArgumentException>(() => Ops.LoraSet(x, branches));
            Assert.Contains("LoraSet", e.Message, StringComparison.Ordinal);
            Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        }

        Rejects("5 branches", Branch(), Branch(), Branch(), Branch(), Branch());
        Rejects("0 branches");
        // A whose rows are not C, and B whose rows are not A's columns.
        var wrongA = Weight(data.Normal((c + 8) * r, 0.1f), DType.BF16, out _, c + 8, r);
        Rejects("do not chain", Branch() with { Down = wrongA });
        var wrongB = Weight(data.Normal(2 * r * c, 0.1f), DType.BF16, out _, 2 * r, c);
        Rejects("do not chain", Branch() with { Up = wrongB });
        Rejects("must be [1, 8] and [1, 64]", Branch() with { Y = Out(2, c) });
        Rejects("must be [1, 8] and [1, 64]", Branch() with { Hidden = Out(1, r + 1) });
        Rejects("needs an offset", Branch() with { Offset = null });
        Rejects("needs an offset", Branch() with { Offset = In(data.Normal(c + 1), c + 1) });
        Rejects("outer op is None", Branch() with { Outer = LoraOuter.None });
        // Aliasing: y over x, two branches' y in one row, two branches' hidden in one tensor, a branch's hidden and y in one.
        Rejects("shares memory with x", Branch() with { Y = x });
        var wide = Out(2, c);
        Rejects("shares memory", Branch() with { Y = wide.Rows(0, 1) }, Branch() with { Y = wide.Rows(0, 1) });
        var hidden = Out(1, r);
        Rejects("shares memory", Branch() with { Hidden = hidden }, Branch() with { Hidden = hidden });
        var square = Weight(data.Normal(r * r, 0.1f), DType.BF16, out _, r, r);
        var same = Out(1, r);
        Rejects("hidden and y share memory", new LoraBranch(a, square, same, same));
    }

    [Fact]
    public void LoraSetAcceptsOutputsInRowsOfOneBufferThatDoNotOverlap()
    {
        var data = new TestData(69);
        const int c = 64, r = 8, m = 64;
        var x = data.Normal(c);
        var a = Weight(data.Normal(c * r, 0.1f), DType.BF16, out var ar, c, r);
        var b = Weight(data.Normal(r * m, 0.2f), DType.BF16, out var br, r, m);
        var ys = Out(2, m);
        var first = new LoraBranch(a, b, Out(1, r), ys.Rows(0, 1));
        var second = new LoraBranch(a, b, Out(1, r), ys.Rows(1, 1), LoraInner.Sigmoid);
        Ops.LoraSet(In(x, 1, c), [first, second]);
        var h1 = NaiveOps.MatMul(x, ar, null, 1, c, r, outIn: false);
        var h2 = NaiveOps.Sigmoid(h1);
        var bd = NaiveOps.ToDouble(br);
        double[] expected = [.. NaiveOps.MatMul(h1, bd, null, 1, r, m, outIn: false), .. NaiveOps.MatMul(h2, bd, null, 1, r, m, outIn: false)];
        Compare.Close(expected, Read(ys), Tolerances.LoraSetRelative, Tolerances.LoraSetAbsolute, "lora_set rows of one buffer");
    }
}
