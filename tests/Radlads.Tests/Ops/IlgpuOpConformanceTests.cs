using Radlads.Ilgpu;

namespace Radlads.Tests.Ops;

/// <summary>
/// The ILGPU backend on ILGPU's CPU accelerator (a GPU simulator with warps of 4 and groups of 16 threads) against the
/// float64 definitions: the whole shared suite, on every machine.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuCpuOpConformanceTests() : OpConformanceTests(() => new IlgpuBackend(IlgpuDeviceKind.Cpu) { FuseNormGemv = true });

/// <summary>
/// The ILGPU backend on ILGPU's CUDA accelerator (its own PTX, not our .cu kernels): the same suite. Without a GPU or its
/// driver every test is skipped with the reason the backend gave.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuCudaOpConformanceTests() : OpConformanceTests(() => new IlgpuBackend(IlgpuDeviceKind.Cuda) { FuseNormGemv = true });

/// <summary>
/// The GPU variants of the MatMul and Wkv7 kernels (warp per row, with warp shuffles) on ILGPU's CPU simulator: the
/// CPU accelerator otherwise runs their thread-per-output variants, so this keeps the kernels a GPU runs tested in CI.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuCpuWarpKernelOpConformanceTests() : OpConformanceTests(() => new IlgpuBackend(IlgpuDeviceKind.Cpu, threadPerOutputKernels: false) { FuseNormGemv = true });

/// <summary>The ILGPU backend on an OpenCL device, where one exists (skipped with the reason elsewhere).</summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuOpenClOpConformanceTests() : OpConformanceTests(() => new IlgpuBackend(IlgpuDeviceKind.OpenCL) { FuseNormGemv = true });

/// <summary>
/// The first version's kernels and allocation (RADLADS_ILGPU_BASELINE=1: per-element MatMul loads at every T,
/// three-launch attention, no block cache), kept for before/after benchmarks in one process: still the same suite.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuCpuBaselineOpConformanceTests() : OpConformanceTests(() => new IlgpuBackend(IlgpuDeviceKind.Cpu, threadPerOutputKernels: false, baseline: true));
