using System.Reflection;
using System.Text;
using Radlads.Cuda;
using Radlads.Ops;

namespace Radlads.Cli.Bench;

/// <summary>What the results are about: the device, its driver, and the program's commit.</summary>
public sealed record CardInfo(string Name, string Slug, string Driver, string Commit)
{
    public static CardInfo Of(IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        string name, driver;
        if (backend is CudaBackend cuda)
        {
            name = cuda.Device.Name;
            string kernel = KernelDriverVersion();
            driver = $"CUDA {cuda.Device.Driver.DriverVersionText}" + (kernel.Length > 0 ? $", driver {kernel}" : "");
        }
        else if (backend.Name == "cpu")
        {
            name = CpuName();
            driver = $"{Environment.ProcessorCount} logical cores, .NET {Environment.Version}";
        }
        else
        {
            name = backend.Description.Split(';')[0];
            driver = backend.Description;
        }

        return new CardInfo(name, Slugify(backend.Name == "cpu" ? "cpu-" + name : name), driver, BuildCommit());
    }

    /// <summary>A folder name for <paramref name="name"/>: lower case, "NVIDIA " dropped, runs of other characters as one dash.</summary>
    public static string Slugify(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string s = name.Trim();
        if (s.StartsWith("NVIDIA ", StringComparison.OrdinalIgnoreCase))
        {
            s = s[7..];
        }

        var slug = new StringBuilder();
        foreach (char c in s.ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(c) || c == '.')
            {
                slug.Append(c);
            }
            else if (slug.Length > 0 && slug[^1] != '-')
            {
                slug.Append('-');
            }
        }

        string result = slug.ToString().Trim('-');
        return result.Length == 0 ? "unknown" : result.Length > 48 ? result[..48].TrimEnd('-') : result;
    }

    /// <summary>
    /// The git commit the program was built from (the SDK stamps it into the informational version; "-dirty" after it when the
    /// tracked files had uncommitted changes: Directory.Build.targets).
    /// </summary>
    private static string BuildCommit()
    {
        string? version = typeof(CardInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        int plus = version?.IndexOf('+', StringComparison.Ordinal) ?? -1;
        return plus >= 0 ? version![(plus + 1)..] : "unknown";
    }

    /// <summary>The NVIDIA kernel module version from /proc/driver/nvidia/version (Linux), else empty.</summary>
    private static string KernelDriverVersion()
    {
        try
        {
            const string path = "/proc/driver/nvidia/version";
            if (!File.Exists(path))
            {
                return "";
            }

            string line = File.ReadLines(path).FirstOrDefault() ?? "";
            return line.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .FirstOrDefault(w => w.Count(c => c == '.') >= 1 && w.All(c => char.IsAsciiDigit(c) || c == '.')) ?? "";
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static string CpuName()
    {
        try
        {
            const string path = "/proc/cpuinfo";
            if (File.Exists(path))
            {
                var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
                if (line is not null && line.Contains(':', StringComparison.Ordinal))
                {
                    return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }
}
