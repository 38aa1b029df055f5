using System.CommandLine;
using System.Text;
using Radlads.Cpu;
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
            Description = "Where to run: auto picks the fastest available (today: cpu); cpu is the reference backend.",
            DefaultValueFactory = _ => "auto",
        };
        option.AcceptOnlyFromAmong("auto", "cpu", "cuda", "ilgpu");
        return option;
    }

    public static Option<bool> Profile() => new("--profile")
    {
        Description = "Time every op and print a table (calls, total, mean, share) to standard error at the end.",
    };

    /// <summary>The backend of --backend, wrapped for --profile when asked.</summary>
    public static IBackend CreateBackend(string name, bool profile) =>
        profile ? new ProfilingBackend(CreateBackend(name)) : CreateBackend(name);

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

    /// <summary>The backend named by --backend, or a clear error when it is not available.</summary>
    public static IBackend CreateBackend(string name) => name switch
    {
        "auto" or "cpu" => new CpuBackend(),
        "cuda" => throw new RadladsException(
            "--backend cuda: the CUDA backend is not part of this build yet (it is planned: hand-written kernels compiled by NVRTC); use --backend cpu"),
        "ilgpu" => throw new RadladsException(
            "--backend ilgpu: the ILGPU backend is not part of this build yet; use --backend cpu"),
        _ => throw new RadladsException($"--backend must be auto, cpu, cuda or ilgpu, got '{name}'"),
    };

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
