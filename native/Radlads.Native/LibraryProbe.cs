using System.Runtime.InteropServices;

namespace Radlads.Native;

/// <summary>
/// Finds a native library among candidate names and paths, and remembers what it tried so that a failure can
/// say exactly which files were looked for. Versioned names come first: a machine with only the driver and
/// runtime packages has <c>libcuda.so.1</c> and <c>libnvrtc.so.13</c>, never the unversioned dev symlinks.
/// </summary>
public static class LibraryProbe
{
    /// <summary>Candidates for the CUDA driver library on this OS. <c>RADLADS_CUDA_DRIVER</c> (a path) comes first.</summary>
    public static IReadOnlyList<string> DriverCandidates()
    {
        var names = new List<string>();
        AddOverride(names, "RADLADS_CUDA_DRIVER");
        if (OperatingSystem.IsWindows())
        {
            names.Add("nvcuda.dll");
        }
        else
        {
            names.Add("libcuda.so.1");
            names.Add("libcuda.so");
            // Containers that mount the driver outside the loader path, and WSL.
            names.Add("/usr/local/nvidia/lib64/libcuda.so.1");
            names.Add("/usr/lib/wsl/lib/libcuda.so.1");
        }

        return names;
    }

    /// <summary>Candidates for NVRTC, newest first. <c>RADLADS_NVRTC</c> (a path) comes first.</summary>
    public static IReadOnlyList<string> NvrtcCandidates()
    {
        var names = new List<string>();
        AddOverride(names, "RADLADS_NVRTC");
        var cudaPath = Environment.GetEnvironmentVariable("CUDA_PATH");
        if (OperatingSystem.IsWindows())
        {
            string[] files = ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll"];
            names.AddRange(files);
            if (!string.IsNullOrEmpty(cudaPath))
            {
                foreach (var sub in new[] { "bin", Path.Combine("bin", "x64") })
                {
                    names.AddRange(files.Select(f => Path.Combine(cudaPath, sub, f)));
                }
            }
        }
        else
        {
            // 11.2 is the soname of NVRTC 11.2–11.8 (Debian's libnvrtc11.2 is 11.8, which knows sm_90).
            string[] files = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", "libnvrtc.so.11.2"];
            names.AddRange(files);
            var folders = new List<string>();
            if (!string.IsNullOrEmpty(cudaPath))
            {
                folders.Add(Path.Combine(cudaPath, "lib64"));
            }

            folders.Add("/usr/local/cuda/lib64");
            foreach (var folder in folders)
            {
                names.AddRange(files.Select(f => Path.Combine(folder, f)));
            }
        }

        return names.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Candidates for cuBLASLt (the bf16 GEMMs of prefill), newest first. <c>RADLADS_CUBLASLT</c> (a path) comes first.
    /// A machine with only the runtime packages has <c>libcublasLt.so.13</c> (or <c>.12</c>), often only under the
    /// CUDA install's <c>lib64</c>, which is not on the loader path.
    /// </summary>
    public static IReadOnlyList<string> CublasLtCandidates()
    {
        var names = new List<string>();
        AddOverride(names, "RADLADS_CUBLASLT");
        var cudaPath = Environment.GetEnvironmentVariable("CUDA_PATH");
        if (OperatingSystem.IsWindows())
        {
            string[] files = ["cublasLt64_13.dll", "cublasLt64_12.dll"];
            names.AddRange(files);
            if (!string.IsNullOrEmpty(cudaPath))
            {
                foreach (var sub in new[] { "bin", Path.Combine("bin", "x64") })
                {
                    names.AddRange(files.Select(f => Path.Combine(cudaPath, sub, f)));
                }
            }
        }
        else
        {
            string[] files = ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"];
            names.AddRange(files);
            var folders = new List<string>();
            if (!string.IsNullOrEmpty(cudaPath))
            {
                folders.Add(Path.Combine(cudaPath, "lib64"));
            }

            folders.Add("/usr/local/cuda/lib64");
            foreach (var folder in folders)
            {
                names.AddRange(files.Select(f => Path.Combine(folder, f)));
            }
        }

        return names.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Loads the first candidate that exists; <paramref name="tried"/> lists every name attempted.</summary>
    public static bool TryLoad(IReadOnlyList<string> candidates, out nint handle, out string loadedName, out string tried)
    {
        foreach (var name in candidates)
        {
            if (NativeLibrary.TryLoad(name, out handle))
            {
                loadedName = name;
                tried = string.Join(", ", candidates);
                return true;
            }
        }

        handle = 0;
        loadedName = "";
        tried = string.Join(", ", candidates);
        return false;
    }

    private static void AddOverride(List<string> names, string variable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        if (!string.IsNullOrWhiteSpace(value))
        {
            names.Add(value);
        }
    }
}
