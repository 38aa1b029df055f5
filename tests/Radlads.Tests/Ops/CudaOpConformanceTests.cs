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
