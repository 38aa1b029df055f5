using Radlads.Cuda;

namespace Radlads.Tests.Ops;

/// <summary>
/// The CUDA backend against the float64 definitions: the same suite as the CPU. Without a GPU, its driver or
/// NVRTC, every test is skipped with the reason the backend gave.
/// </summary>
public sealed class CudaOpConformanceTests() : OpConformanceTests(() => new CudaBackend());
