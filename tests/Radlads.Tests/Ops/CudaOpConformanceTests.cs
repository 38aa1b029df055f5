using Radlads.Checkpoints;
using Radlads.Cuda;

namespace Radlads.Tests.Ops;

/// <summary>
/// The CUDA backend against the float64 definitions: the same suite as the CPU. Without a GPU, its driver or
/// NVRTC, every test is skipped with the reason the backend gave. cuBLASLt is off here (its bf16 activations do
/// not meet the fp32 op tolerance): these test the built-in kernels; <see cref="CudaGemmTests"/> tests cuBLASLt.
/// Prefill attention takes the tensor cores where it can (bf16 operands): those shapes are held to
/// <see cref="Tolerances.Bf16AttentionAbsolute"/>, and the fp32 kernel is tested at such shapes with them turned off.
/// </summary>
public sealed class CudaOpConformanceTests() : OpConformanceTests(() => new CudaBackend { GemmMinRows = int.MaxValue, FuseNormGemv = true, PersistentMlp = true })
{
    protected override (double Relative, double Absolute) AttentionTolerance(int tokens, int headDim) =>
        ((CudaBackend)Backend).TakesTensorCoreAttention(tokens, headDim)
            ? (Tolerances.Bf16AttentionRelative, Tolerances.Bf16AttentionAbsolute)
            : base.AttentionTolerance(tokens, headDim);

    // The models' shapes on the tensor cores: 0.5B (14 heads, 2 KV heads, N = 64), 7B (28/4, N = 128), after a prompt.
    [Theory]
    [InlineData(128, 0, 28, 4, 128)]
    [InlineData(200, 37, 28, 4, 128)]
    [InlineData(130, 64, 14, 2, 64)]
    public void AttentionAtModelShapes(int t, int start, int heads, int kvHeads, int n) => CheckAttention(t, start, heads, kvHeads, n);

    /// <summary>
    /// The decode gate/up GEMV with two rows a warp (<see cref="CudaBackend.GateUpRowsPerWarp"/> 2, gate_up_swiglu_*_r2)
    /// against one row a warp on fresh inputs: the same bits, every element written (outputs NaN-poisoned first), at
    /// 0.5B's and 1.5B's MLP shapes, a last block of one row pair (F odd), K of one partial round of loads a lane, f16 and
    /// f32 weights, and F too small for one warp a row (the plain kernel, whatever the option). Where F gives one warp
    /// a row on this GPU (2F/8 blocks ≥ 2 a SM), the two-row kernel must have run.
    /// </summary>
    [Theory]
    [InlineData(DType.BF16, 896, 4864)]
    [InlineData(DType.BF16, 896, 4861)]
    [InlineData(DType.BF16, 1536, 8960)]
    [InlineData(DType.BF16, 3584, 2113)]
    [InlineData(DType.BF16, 1032, 1500)]
    [InlineData(DType.F16, 896, 2000)]
    [InlineData(DType.F32, 64, 1100)]
    [InlineData(DType.BF16, 64, 7)]
    public void GateUpSwiGluTwoRowsAWarpGivesTheSameBits(DType dtype, int k, int f)
    {
        var backend = (CudaBackend)Backend;
        var data = new TestData(HashCode.Combine(97, dtype, k, f));
        var x = In(data.Normal(k), 1, k);
        var wg = Weight(data.Normal(f * k, 0.2f), dtype, out _, f, k);
        var wu = Weight(data.Normal(f * k, 0.2f), dtype, out _, f, k);
        var (y1, y2) = (Out(1, f), Out(1, f));
        backend.GateUpRowsPerWarp = 1;
        Ops.GateUpSwiGlu(x, wg, wu, y1, Out(1, f));
        backend.GateUpRowsPerWarp = 2;
        long before = backend.GateUpR2Launches;
        Ops.GateUpSwiGlu(x, wg, wu, y2, Out(1, f));
        backend.GateUpRowsPerWarp = 1;
        bool oneWarpARow = ((2L * f) + 7) / 8 >= (long)backend.GemvBlocksPerSm * backend.Device.MultiprocessorCount;
        if (oneWarpARow)
        {
            Assert.Equal(before + 1, backend.GateUpR2Launches);
        }

        var (expected, actual) = (Read(y1), Read(y2));
        Assert.True(actual.All(float.IsFinite), "gate_up_swiglu_r2: not every element written (NaN left) or not finite");
        Assert.Equal(expected, actual);
    }

    // RADLADS_ATTENTION_TC=0's path: the fp32 prefill kernel at shapes the tensor cores would otherwise take.
    [Theory]
    [InlineData(65, 70, 4, 2, 64)]
    [InlineData(130, 3, 7, 1, 128)]
    [InlineData(17, 5, 4, 2, 32)]
    [InlineData(128, 0, 28, 4, 128)]
    public void AttentionWithTensorCoresOff(int t, int start, int heads, int kvHeads, int n)
    {
        var backend = (CudaBackend)Backend;
        backend.AttentionTensorCores = false;
        Assert.False(backend.TakesTensorCoreAttention(t, n));
        CheckAttention(t, start, heads, kvHeads, n);
    }
}
