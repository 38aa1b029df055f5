using System.Collections.Concurrent;
using Radlads.Native;

namespace Radlads.Cuda;

/// <summary>
/// The kernel sources (<c>kernels/*.cu</c> and the headers <c>*.cuh</c> they include: <c>common.cuh</c>, included by
/// every file, and headers shared by two files such as <c>lora_down.cuh</c>): from <c>RADLADS_KERNEL_DIR</c> when set,
/// else the <c>kernels</c> folder next to the program, else the copies embedded in this assembly.
/// </summary>
public static class KernelSources
{
    public const string CommonHeader = "common.cuh";

    /// <summary>Every kernel file by name, every header (name, text; served to NVRTC by name), and where they were read from.</summary>
    public static (IReadOnlyDictionary<string, string> Files, IReadOnlyList<(string Name, string Text)> Headers, string Origin) Load()
    {
        foreach (var dir in Folders())
        {
            if (File.Exists(Path.Combine(dir, CommonHeader)))
            {
                var files = Directory.GetFiles(dir, "*.cu").Order(StringComparer.Ordinal)
                    .ToDictionary(f => Path.GetFileName(f), File.ReadAllText, StringComparer.Ordinal);
                var headers = Directory.GetFiles(dir, "*.cuh").Order(StringComparer.Ordinal)
                    .Select(f => (Path.GetFileName(f), File.ReadAllText(f))).ToArray();
                return (files, headers, dir);
            }
        }

        return LoadEmbedded();
    }

    /// <summary>The copies embedded in this assembly.</summary>
    public static (IReadOnlyDictionary<string, string> Files, IReadOnlyList<(string Name, string Text)> Headers, string Origin) LoadEmbedded()
    {
        var assembly = typeof(KernelSources).Assembly;
        var embedded = new Dictionary<string, string>(StringComparer.Ordinal);
        var headers = new List<(string Name, string Text)>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("kernels/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            string name = resource["kernels/".Length..];
            if (name.EndsWith(".cuh", StringComparison.Ordinal))
            {
                headers.Add((name, reader.ReadToEnd()));
            }
            else
            {
                embedded[name] = reader.ReadToEnd();
            }
        }

        if (!headers.Any(h => h.Name == CommonHeader) || embedded.Count == 0)
        {
            throw new CudaUnavailableException("the CUDA kernel sources (kernels/*.cu) are neither next to the program nor embedded in Radlads.Cuda.dll");
        }

        return (embedded, headers, "embedded resources");
    }

    private static IEnumerable<string> Folders()
    {
        var explicitDir = Environment.GetEnvironmentVariable("RADLADS_KERNEL_DIR");
        if (!string.IsNullOrWhiteSpace(explicitDir))
        {
            yield return explicitDir;
        }

        yield return Path.Combine(AppContext.BaseDirectory, "kernels");
    }
}

/// <summary>
/// The compiled kernels on one device: every <c>kernels/*.cu</c> compiled by NVRTC for the device's architecture
/// (or read from the disk cache) and loaded as one module per file, once per process and device.
/// </summary>
public sealed class KernelLibrary
{
    /// <summary>
    /// NVRTC options besides the architecture (the options are part of the cache key), plus the <c>-D</c> macro
    /// definitions in RADLADS_NVRTC_DEFINES (whitespace-separated; for tuning sweeps, e.g. "-DGEMV_UNROLL=8").
    /// </summary>
    public static readonly IReadOnlyList<string> Options = ["-default-device", "--std=c++17", .. ExtraDefines()];

    private static string[] ExtraDefines()
    {
        var text = Environment.GetEnvironmentVariable("RADLADS_NVRTC_DEFINES");
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }

        var defines = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        foreach (var d in defines)
        {
            if (!d.StartsWith("-D", StringComparison.Ordinal) || d.Length < 3)
            {
                throw new RadladsException($"RADLADS_NVRTC_DEFINES: '{d}' is not a macro definition; give -DNAME or -DNAME=VALUE, separated by spaces");
            }
        }

        return defines;
    }

    private static readonly ConcurrentDictionary<int, Lazy<KernelLibrary>> Libraries = new();

    private readonly Dictionary<string, nint> modules;

    private KernelLibrary(CudaDevice device)
    {
        Device = device;
        var (files, headers, origin) = KernelSources.Load();
        Origin = origin;
        var images = new ConcurrentDictionary<string, CompiledImage>(StringComparer.Ordinal);
        // NVRTC compiles independent programs in parallel; the first run on a machine fills the disk cache.
        try
        {
            Parallel.ForEach(files, file =>
                images[file.Key] = KernelCompiler.Compile(device.ComputeCapability, file.Key, file.Value, headers, Options));
        }
        catch (AggregateException e)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.Flatten().InnerExceptions[0]);
        }

        device.MakeCurrent();
        modules = new Dictionary<string, nint>(StringComparer.Ordinal);
        foreach (var (name, image) in images.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            byte[] bytes = image.Image;
            if (!image.IsCubin && (bytes.Length == 0 || bytes[^1] != 0))
            {
                bytes = [.. bytes, 0];
            }

            try
            {
                modules[name] = device.Driver.LoadModule(bytes);
            }
            catch (CudaException e)
            {
                throw new CudaException($"loading the module compiled from kernels/{name} failed: {e.Message}", e);
            }
        }

        Target = KernelCompiler.Target(device.ComputeCapability, Nvrtc.Instance).Option;
    }

    public CudaDevice Device { get; }

    /// <summary>Where the sources came from (a folder or "embedded resources").</summary>
    public string Origin { get; }

    /// <summary>The NVRTC architecture option used, e.g. <c>--gpu-architecture=sm_90</c>.</summary>
    public string Target { get; }

    /// <summary>The library of <paramref name="device"/>, compiled and loaded on first use.</summary>
    public static KernelLibrary For(CudaDevice device) =>
        Libraries.GetOrAdd(device.Ordinal, _ => new Lazy<KernelLibrary>(() => new KernelLibrary(device), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    /// <summary>The CUfunction <paramref name="kernel"/> of <c>kernels/<paramref name="file"/></c>.</summary>
    public nint Function(string file, string kernel)
    {
        if (!modules.TryGetValue(file, out var module))
        {
            throw new CudaException($"kernels/{file} was not compiled (sources from {Origin})");
        }

        nint function = Device.Driver.GetFunction(module, kernel);
        if (Carveout is int percent)
        {
            Device.Driver.SetFunctionAttribute(function, FunctionAttribute.PreferredSharedMemoryCarveout, percent);
        }

        return function;
    }

    /// <summary>
    /// RADLADS_CARVEOUT (0–100): every kernel's preferred shared-memory carveout, in percent of the SM's unified L1 /
    /// shared memory; unset: the driver's choice. A measurement knob: an SM switches its carveout only when idle, so a
    /// kernel launched early (PDL) next to kernels with another carveout waits for them to leave the SM.
    /// </summary>
    private static readonly int? Carveout = ParseCarveout(Environment.GetEnvironmentVariable("RADLADS_CARVEOUT"));

    /// <summary>RADLADS_CARVEOUT's value (<paramref name="text"/>; null when unset) as a percentage; anything else is an error naming the variable.</summary>
    internal static int? ParseCarveout(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        if (!int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out int percent) || percent < 0 || percent > 100)
        {
            throw new RadladsException($"RADLADS_CARVEOUT: '{text}' is not a percentage; give a whole number from 0 to 100, or leave it unset");
        }

        return percent;
    }
}
