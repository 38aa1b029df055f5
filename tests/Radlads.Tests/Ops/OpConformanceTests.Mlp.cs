using Radlads.Checkpoints;
using Radlads.Cuda;

namespace Radlads.Tests.Ops;

/// <summary>
/// The whole MLP after its residual norm (IOps.AddRmsNormMlp; on CUDA at T = 1 with bf16 weights one persistent
/// kernel, mlp_decode, and on sm_90 also the streamed one, mlp_stream): on each backend h, normed, act and y must be exactly the bits of the ops it stands for (AddRmsNorm,
/// or RmsNorm without a branch, then GateUpSwiGlu, then MatMul), every output written (NaN-poisoned first), y within the
/// op tolerance of the float64 product of the backend's act. Shapes: Qwen2.5-0.5B's C = 896 and F = 4,864 (gate/up level
/// 0, down level 3 on a 132-SM card), C = 64 with F = 2,112 and no branch (level 1, the first layer's plain norm),
/// Qwen2.5-7B's C = 3,584 with F = 3,584 (levels 1 and 2; the kernel needs F ≥ C), C = 1,536 with F = 8,960 and C = 3,584
/// with F = 4,104 (stream stages cut mid-row), y over the branch (the model's buffers: the kernel must keep
/// h + branch before it writes y); and where the persistent kernel does not apply: C = 4,224 (its norm wants 288
/// threads; down levels 0 and 1 need C ≥ 4,224 on 132 SMs, so only the kernel emulation checks them,
/// scripts/kernel-emulation/run-mlp-decode.sh), F not a multiple of 8, a small F (gate/up level 3), several decode
/// rows, f16 weights.
/// </summary>
public abstract partial class OpConformanceTests
{
    [Theory]
    [InlineData(DType.BF16, 1, 896, 4864, true, true, true)] // y over branch, as the model passes them
    [InlineData(DType.BF16, 1, 64, 2112, false, false, true)]
    [InlineData(DType.BF16, 1, 3584, 3584, true, false, true)]
    [InlineData(DType.BF16, 1, 1536, 8960, true, true, true)] // 1.5B: the stream's gate/up rows end half-way through a stage
    [InlineData(DType.BF16, 1, 3584, 4104, true, false, true)] // the stream's last down stage holds one chunk a row
    [InlineData(DType.BF16, 1, 4224, 1064, true, true, false)] // the norm's 288 threads exceed the kernel's 256
    [InlineData(DType.BF16, 1, 64, 1100, true, false, false)] // F not a multiple of 8: the three ops
    [InlineData(DType.BF16, 1, 64, 160, true, true, false)] // gate/up level 3 (512-thread blocks): the three ops
    [InlineData(DType.BF16, 3, 64, 1056, true, true, false)] // several decode rows
    [InlineData(DType.F16, 1, 64, 1056, true, false, false)]
    public void AddRmsNormMlp(DType dtype, int t, int c, int f, bool withBranch, bool yIsBranch, bool persistentOnGpu)
    {
        var data = new TestData(HashCode.Combine(84, dtype, t, c, f, withBranch, yIsBranch));
        var (h, b, normWeight, _) = ResidualNormInputs(data, t, c, dtype);
        var wg = Weight(data.Normal(f * c, 0.05f), dtype, out _, f, c);
        var wu = Weight(data.Normal(f * c, 0.05f), dtype, out _, f, c);
        var wd = Weight(data.Normal(c * f, 0.05f), dtype, out var dr, c, f);
        var (h2, normed2) = UnfusedResidualNorm(h, b, withBranch, normWeight, t, c);
        var (act2, y2) = (Out(t, f), Out(t, c));
        Ops.GateUpSwiGlu(normed2, wg, wu, act2, Out(t, f));
        Ops.MatMul(act2, wd, null, y2);
        float[][] composed = [Read(h2), Read(normed2), Read(act2), Read(y2)];

        // On CUDA: as the backend is set (mlp_decode where it applies), then on sm_90 with the streamed kernel.
        var cuda = Backend as CudaBackend;
        bool expected = cuda is not null && persistentOnGpu && f >= (long)cuda.GemvBlocksPerSm * cuda.Device.MultiprocessorCount;
        Fused(() => cuda?.PersistentMlpLaunches ?? 0);
        if (cuda is not null && cuda.Device.ComputeMajor >= 9 && !cuda.StreamMlp)
        {
            cuda.StreamMlp = true;
            try
            {
                Fused(() => cuda.StreamMlpLaunches);
            }
            finally
            {
                cuda.StreamMlp = false;
            }
        }

        void Fused(Func<long> launches)
        {
            long before = launches();
            var ht = In(h, t, c);
            var normed = Out(t, c);
            var act = Out(t, f);
            var branch = withBranch ? In(b, t, c) : null;
            var y = yIsBranch && branch is not null ? branch : Out(t, c);
            Ops.AddRmsNormMlp(ht, branch, normWeight, 1e-6f, normed, wg, wu, wd, act, Out(t, f), y);
            if (cuda is not null)
            {
                // Gate/up level ≤ 2 (the persistent kernels' 256 consumer threads) needs F ≥ GemvBlocksPerSm · SMs.
                Assert.Equal(before + (expected ? 1 : 0), launches());
            }

            SameBits(composed, [Read(ht), Read(normed), Read(act), Read(y)], "add_rms_norm_mlp");
            var expectedY = NaiveOps.MatMul(Read(act), dr, null, t, f, c, true);
            Compare.Close(expectedY, Read(y), Tolerances.OpRelative, Tolerances.LongDotRelativeToMax * expectedY.Max(Math.Abs), "add_rms_norm_mlp y");
        }
    }

    [Fact]
    public void AddRmsNormMlpRejectsBadShapesAndAliases()
    {
        var data = new TestData(85);
        var h = In(data.Normal(64), 1, 64);
        var branch = In(data.Normal(64), 1, 64);
        var nw = In(data.Uniform(64, 0.5f, 1.5f), 64);
        var w = Weight(data.Normal(16 * 64), DType.BF16, out _, 16, 64);
        var down = Weight(data.Normal(64 * 16), DType.BF16, out _, 64, 16);
        var (normed, act, up) = (Out(1, 64), Out(1, 16), Out(1, 16));
        var e = Assert.Throws<ArgumentException>(() => Ops.AddRmsNormMlp(h, branch, nw, 1e-6f, normed, w, w, w, act, up, Out(1, 64)));
        Assert.Contains("W_down [16, 64] must be [64, 16]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.AddRmsNormMlp(h, branch, nw, 1e-6f, normed, w, w, down, act, up, Out(1, 32)));
        Assert.Contains("must be [1, 64]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.AddRmsNormMlp(h, branch, nw, 1e-6f, normed, w, w, down, act, up, h));
        Assert.Contains("y aliases h or normed", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.AddRmsNormMlp(h, branch, nw, 1e-6f, normed, w, w, down, branch, up, Out(1, 64)));
        Assert.Contains("aliases h, branch or normed", e.Message, StringComparison.Ordinal);
    }
}
