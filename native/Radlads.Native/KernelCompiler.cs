using System.Security.Cryptography;
using System.Text;

namespace Radlads.Native;

/// <summary>
/// Compiles CUDA C++ with NVRTC for one device and caches the result on disk, keyed by a hash of the source,
/// the headers, the options, the target architecture and the NVRTC version, so a program compiles each kernel
/// file once per machine rather than once per run.
/// </summary>
public static class KernelCompiler
{
    /// <summary>
    /// The cache folder: <c>RADLADS_CACHE_DIR</c>, else <c>$XDG_CACHE_HOME/radlads</c>, else <c>~/.cache/radlads</c>
    /// (on Windows, the local application data folder), each with a <c>kernels</c> subfolder.
    /// </summary>
    public static string CacheDirectory
    {
        get
        {
            var explicitDir = Environment.GetEnvironmentVariable("RADLADS_CACHE_DIR");
            if (!string.IsNullOrWhiteSpace(explicitDir))
            {
                return Path.Combine(explicitDir, "kernels");
            }

            string root;
            if (OperatingSystem.IsWindows())
            {
                root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
            }
            else
            {
                var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
                root = !string.IsNullOrWhiteSpace(xdg)
                    ? xdg
                    : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            }

            return Path.Combine(root, "radlads", "kernels");
        }
    }

    /// <summary>
    /// The target for a device of compute capability <paramref name="computeCapability"/> (10·major + minor): SASS for its exact architecture when NVRTC knows it, otherwise
    /// PTX for the newest architecture NVRTC knows below it (the driver JIT-compiles that at load).
    /// </summary>
    public static (string Option, bool Cubin) Target(int computeCapability, Nvrtc nvrtc)
    {
        int cc = computeCapability;
        if (nvrtc.SupportedArchitectures.Contains(cc))
        {
            return ($"--gpu-architecture=sm_{cc}", true);
        }

        var lower = nvrtc.SupportedArchitectures.Where(a => a <= cc).DefaultIfEmpty(-1).Max();
        if (lower < 0)
        {
            throw new CudaUnavailableException(
                $"NVRTC {nvrtc.Version} ({nvrtc.LibraryName}) cannot target sm_{cc}; it knows sm_{string.Join(", sm_", nvrtc.SupportedArchitectures)}");
        }

        return ($"--gpu-architecture=compute_{lower}", false);
    }

    /// <summary>Compiles (or reads from the cache) one source file for compute capability 10·major + minor.</summary>
    public static CompiledImage Compile(int computeCapability, string name, string source, IReadOnlyList<(string Name, string Text)> headers,
        IReadOnlyList<string> extraOptions, string? cacheDirectory = null)
    {
        cacheDirectory ??= CacheDirectory;
        var nvrtc = Nvrtc.Instance;
        var (arch, cubin) = Target(computeCapability, nvrtc);
        var options = new List<string> { arch };
        options.AddRange(extraOptions);
        string key = Key(name, source, headers, options, nvrtc.Version, cubin);
        string path = Path.Combine(cacheDirectory, $"{Path.GetFileNameWithoutExtension(name)}-{key}.{(cubin ? "cubin" : "ptx")}");
        try
        {
            if (File.Exists(path))
            {
                return new CompiledImage(File.ReadAllBytes(path), cubin, "(from cache " + path + ")");
            }
        }
        catch (IOException)
        {
            // An unreadable cache entry is compiled again below.
        }
        catch (UnauthorizedAccessException)
        {
        }

        var image = nvrtc.Compile(source, name, headers, options, cubin);
        try
        {
            Directory.CreateDirectory(cacheDirectory);
            string temporary = $"{path}.tmp-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}";
            File.WriteAllBytes(temporary, image.Image);
            File.Move(temporary, path, overwrite: true);
        }
        catch (IOException)
        {
            // The cache is only a speed-up: a read-only home folder still runs, compiling each time.
        }
        catch (UnauthorizedAccessException)
        {
        }

        return image;
    }

    private static string Key(string name, string source, IReadOnlyList<(string Name, string Text)> headers, IReadOnlyList<string> options,
        Version nvrtcVersion, bool cubin)
    {
        var text = new StringBuilder();
        text.Append(name).Append('\0').Append(source).Append('\0');
        foreach (var (headerName, headerText) in headers)
        {
            text.Append(headerName).Append('\0').Append(headerText).Append('\0');
        }

        text.Append(string.Join('\u0001', options)).Append('\0').Append(nvrtcVersion).Append('\0').Append(cubin ? "cubin" : "ptx");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..20];
    }
}
