using ILGPU;

namespace Radlads.Ilgpu.Kernels;

/// <summary>Kernels that measure the runtime rather than compute anything.</summary>
public static class ProbeKernels
{
    /// <summary>Does nothing: timing many launches of it gives ILGPU's host cost per launch.</summary>
    public static void Empty(Index1D i, int unused)
    {
    }
}
