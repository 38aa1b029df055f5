using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU;

namespace Radlads.Ilgpu;

/// <summary>
/// ILGPU 1.5.3 P/Invokes the CUDA driver as "cuda" (and OpenCL as "OpenCL"/"opencl"), which .NET probes on Linux as
/// <c>libcuda.so</c>: the unversioned name exists only where the CUDA toolkit (or a -dev package) is installed.
/// Machines with just the driver have <c>libcuda.so.1</c> (and <c>libOpenCL.so.1</c>). This resolver, set on the
/// ILGPU assembly before its first native call, tries the versioned names after the default probe.
/// </summary>
internal static class NativeLibraries
{
    private static readonly Lock Gate = new();
    private static bool installed;

    /// <summary>Library names tried for each name ILGPU imports, in order (the default probe comes first).</summary>
    public static IReadOnlyList<string> Candidates(string importName) => importName switch
    {
        "cuda" when OperatingSystem.IsLinux() => ["libcuda.so", "libcuda.so.1"],
        "nvcuda" when OperatingSystem.IsWindows() => ["nvcuda.dll"],
        "OpenCL" or "opencl" when OperatingSystem.IsLinux() => ["libOpenCL.so", "libOpenCL.so.1"],
        "OpenCL" or "opencl" when OperatingSystem.IsWindows() => ["OpenCL.dll"],
        _ => [],
    };

    /// <summary>Which file each import name resolved to, for the backend's description.</summary>
    public static Dictionary<string, string> Resolved { get; } = [];

    /// <summary>Installs the resolver once per process; harmless when called again.</summary>
    public static void Install()
    {
        lock (Gate)
        {
            if (installed)
            {
                return;
            }

            installed = true;
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(Context).Assembly, Resolve);
            }
            catch (InvalidOperationException)
            {
                // Someone else set a resolver on ILGPU first; theirs stays.
            }
        }
    }

    /// <summary>The first candidate that loads, or null with every name tried.</summary>
    public static string? FindLoadable(string importName, out string tried)
    {
        var names = Candidates(importName);
        tried = string.Join(", ", names);
        foreach (var name in names)
        {
            if (NativeLibrary.TryLoad(name, out var handle))
            {
                NativeLibrary.Free(handle);
                return name;
            }
        }

        return null;
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        foreach (var candidate in Candidates(name))
        {
            if (NativeLibrary.TryLoad(candidate, assembly, searchPath, out var handle))
            {
                lock (Gate)
                {
                    Resolved[name] = candidate;
                }

                return handle;
            }
        }

        // Zero: .NET carries on with its default probing (and ILGPU reports the API as unavailable).
        return 0;
    }
}
