using System.CommandLine;
using System.Text;
using Radlads.Cpu;
using Radlads.Cuda;
using Radlads.Ilgpu;
using Radlads.Ops;

namespace Radlads.Cli;

/// <summary>Options shared by several commands, and the helpers that interpret them.</summary>
internal static class CommonOptions
{
    /// <summary>The model shipped with the program (copied next to it at build time).</summary>
    public static string DefaultModelDirectory => Path.Combine(AppContext.BaseDirectory, "models", "demo-teacher");

    public static Option<string> Model() => new("--model", "-m")
    {
        Description = "Model folder: config.json, model.safetensors (or shards + model.safetensors.index.json), tokenizer.json. " +
            "Default: the embedded models/demo-teacher (a 19M-parameter Qwen2 trained on English text).",
        DefaultValueFactory = _ => DefaultModelDirectory,
    };

    public static Option<string> Backend()
    {
        var option = new Option<string>("--backend", "-b")
        {
            Description = "Where to run: auto uses CUDA when a GPU, its driver and NVRTC are there (else it says why and uses the CPU); cpu is the reference backend; cuda fails if it cannot start; ilgpu runs ILGPU kernels on the accelerator --ilgpu-device picks.",
            DefaultValueFactory = _ => "auto",
        };
        option.AcceptOnlyFromAmong("auto", "cpu", "cuda", "ilgpu");
        return option;
    }

    public static Option<string> IlgpuDevice()
    {
        var option = new Option<string>("--ilgpu-device")
        {
            Description = "With --backend ilgpu, the ILGPU accelerator: cuda (an NVIDIA GPU), opencl, or cpu (ILGPU's CPU simulator: slow, for testing); auto picks the first available in that order.",
            DefaultValueFactory = _ => "auto",
        };
        option.AcceptOnlyFromAmong(IlgpuDeviceKinds.Names);
        return option;
    }

    public static Option<bool> Profile() => new("--profile")
    {
        Description = "Time every op and print a table (calls, total, mean, share) to standard error at the end.",
    };

    /// <summary>The backend of --backend (see <see cref="CreateBackend(string, TextWriter, string)"/>), wrapped for --profile when asked.</summary>
    public static IBackend CreateBackend(string name, bool profile, TextWriter error, string ilgpuDevice = "auto")
    {
        var backend = CreateBackend(name, error, ilgpuDevice);
        // GPU ops only queue work: waiting for the device around each op times it there. RADLADS_PROFILE_HOST=1 times
        // the host calls instead, with no waits (what queueing each op costs; an op that waits inside shows up long).
        Action? synchronize = Environment.GetEnvironmentVariable("RADLADS_PROFILE_HOST") == "1" ? null : backend switch
        {
            CudaBackend cuda => cuda.Synchronize,
            IlgpuBackend ilgpu => ilgpu.Synchronize,
            _ => null,
        };
        return profile ? new ProfilingBackend(backend, synchronize) : backend;
    }

    /// <summary>Prints the op timing table when the backend was profiled.</summary>
    public static void ReportProfile(IBackend backend, TextWriter error)
    {
        if (backend is ProfilingBackend profiled)
        {
            error.WriteLine(profiled.Profile.FormatReport());
        }
    }

    public static Option<string?> Text(string description) => new("--text") { Description = description };

    public static Option<FileInfo?> File(string description) => new("--file", "-f") { Description = description };

    /// <summary>
    /// The backend named by --backend, or a clear error when it is not available. auto tries CUDA and, when it
    /// cannot start, says why on one line of <paramref name="error"/> and uses the CPU. ilgpu opens the accelerator of
    /// <paramref name="ilgpuDevice"/> (compiling its kernels) and prints one line saying which and how long that took.
    /// </summary>
    public static IBackend CreateBackend(string name, TextWriter error, string ilgpuDevice = "auto")
    {
        switch (name)
        {
            case "cpu":
                return new CpuBackend();
            case "cuda":
                try
                {
                    return NoteGemm(new CudaBackend(), "--backend cuda", error);
                }
                catch (RadladsException e)
                {
                    throw new RadladsException("--backend cuda: " + e.Message, e);
                }

            case "auto":
                try
                {
                    return NoteGemm(new CudaBackend(), "--backend auto", error);
                }
                catch (RadladsException e)
                {
                    error.WriteLine($"{AutoNotePrefix}{e.Message.Split('\n')[0].TrimEnd()}; using the CPU backend");
                    return new CpuBackend();
                }

            case "ilgpu":
                try
                {
                    var backend = new IlgpuBackend(IlgpuDeviceKinds.Parse(ilgpuDevice));
                    error.WriteLine(IlgpuNotePrefix + backend.Description);
                    return backend;
                }
                catch (RadladsException e)
                {
                    throw new RadladsException($"--backend ilgpu --ilgpu-device {ilgpuDevice}: " + e.Message, e);
                }

            default:
                throw new RadladsException($"--backend must be auto, cpu, cuda or ilgpu, got '{name}'");
        }
    }

    /// <summary>Says once, on one line, when the CUDA backend runs without cuBLASLt (prefill then uses the tiled matmul).</summary>
    private static CudaBackend NoteGemm(CudaBackend backend, string option, TextWriter error)
    {
        if (!backend.HasGemmLibrary)
        {
            error.WriteLine($"note: {option}: {backend.GemmStatus}");
        }

        return backend;
    }

    /// <summary>How the one line that --backend auto prints when it falls back to the CPU begins.</summary>
    public const string AutoNotePrefix = "note: --backend auto: ";

    /// <summary>How the line that --backend ilgpu prints (accelerator and kernel compile time) begins.</summary>
    public const string IlgpuNotePrefix = "note: --backend ilgpu: ";

    /// <summary>Text from --text or --file (read as strict UTF-8, byte for byte; a BOM is kept as U+FEFF).</summary>
    public static string ReadText(string? text, FileInfo? file, string command)
    {
        if ((text is null) == (file is null))
        {
            throw new RadladsException($"{command}: give exactly one of --text or --file");
        }

        if (text is not null)
        {
            return text;
        }

        if (!file!.Exists)
        {
            throw new RadladsException($"--file {file.FullName}: file not found");
        }

        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(System.IO.File.ReadAllBytes(file.FullName));
        }
        catch (DecoderFallbackException)
        {
            throw new RadladsException($"--file {file.FullName}: not valid UTF-8 text");
        }
    }
}
