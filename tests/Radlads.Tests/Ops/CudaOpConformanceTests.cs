using Radlads.Cuda;

namespace Radlads.Tests.Ops;

/// <summary>
/// The CUDA backend against the float64 definitions: the same suite as the CPU. Without a GPU, its driver or
/// NVRTC, every test is skipped with the reason the backend gave. cuBLASLt is off here (its bf16 activations do
/// not meet the fp32 op tolerance): these test the built-in kernels; <see cref="CudaGemmTests"/> tests cuBLASLt.
/// </summary>
public sealed class CudaOpConformanceTests() : OpConformanceTests(() => new CudaBackend { GemmMinRows = int.MaxValue });
