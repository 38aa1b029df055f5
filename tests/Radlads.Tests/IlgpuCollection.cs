namespace Radlads.Tests;

/// <summary>
/// Every test that creates an ILGPU accelerator runs in this one collection, alone: ILGPU's CPU simulator runs
/// each simulated thread as an OS thread and its warp kernels wait on barriers, and beside the rest of the suite
/// on a 2-core machine one of those runs returned all-zero outputs (2026-11-27, one CI run of several). That turned out
/// to be unpinned host arrays in the backend's copies (see IlgpuHostCopyTests), not the simulator; running alone stays,
/// as the simulator's OS threads still crowd a small machine.
/// </summary>
[CollectionDefinition(nameof(IlgpuCollection), DisableParallelization = true)]
public sealed class IlgpuCollection;
