using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Radlads.Checkpoints;
using Radlads.Models;

namespace Radlads.Conversion;

/// <summary>What <c>radlads convert</c> builds.</summary>
public sealed record ConversionOptions
{
    /// <summary>The Qwen2 teacher's folder (config.json, safetensors, tokenizer files).</summary>
    public required string TeacherDirectory { get; init; }

    /// <summary>The student's folder: created, or empty, or (with <see cref="Force"/>) written into.</summary>
    public required string OutputDirectory { get; init; }

    public StudentArchitecture Architecture { get; init; } = StudentArchitecture.RadRwkv7;

    public StudentVariant Variant { get; init; } = StudentVariant.Balanced;

    /// <summary>Seeds every random init (each tensor draws from its own stream, <see cref="TensorRng"/>).</summary>
    public ulong Seed { get; init; }

    /// <summary>The dtype of every tensor written: BF16 (default, as the trainer saves) or F32.</summary>
    public DType DType { get; init; } = DType.BF16;

    public LoraRankOverrides RankOverrides { get; init; } = new();

    /// <summary>Write into a non-empty output folder, replacing the files a student consists of.</summary>
    public bool Force { get; init; }
}

/// <summary>What a conversion produced, for the summary.</summary>
public sealed record ConversionResult
{
    public required string OutputDirectory { get; init; }

    public required ConversionPlan Plan { get; init; }

    public required DType DType { get; init; }

    /// <summary>The teacher's dtype when it differs from <see cref="DType"/> (copies were converted), else null.</summary>
    public DType? ConvertedFrom { get; init; }

    public required long ModelBytes { get; init; }

    /// <summary>Bytes of every file convert wrote (model, config, tokenizer and generation files).</summary>
    public required long OutputBytes { get; init; }

    public required IReadOnlyList<string> CopiedFiles { get; init; }

    /// <summary>Safetensors files already in a --force output folder that the loader might confuse with the student.</summary>
    public required IReadOnlyList<string> LeftoverFiles { get; init; }

    public required TimeSpan Elapsed { get; init; }
}

/// <summary>
/// Builds a RAD-RWKV student checkpoint from a Qwen2 teacher folder exactly as the RADLADS trainer initialises one
/// (spec §5): a folder the runtime's <see cref="CausalLM.Load"/> reads and whose names and shapes match the
/// Hugging Face RWKV6Qwen2/RWKV7Qwen2 classes (§6.2).
/// </summary>
public static class StudentConverter
{
    /// <summary>Non-weight files copied from the teacher when present.</summary>
    public static readonly string[] CopiedFileNames =
    [
        "generation_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
        "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json",
    ];

    private const int ChunkElements = 1 << 16;

    /// <summary>
    /// Converts; <paramref name="progress"/> is told (tensors written, total) after each tensor. Every check on the
    /// teacher and the output folder runs before anything is written. A new or empty output folder is built beside
    /// it under a temporary name and renamed when complete, so a failed conversion leaves no half-written student.
    /// </summary>
    public static ConversionResult Convert(ConversionOptions options, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.DType is not (DType.BF16 or DType.F32))
        {
            throw new RadladsException($"--dtype {options.DType}: the student is written as bf16 or f32");
        }

        var clock = Stopwatch.StartNew();
        string teacherDir = FullFolder(options.TeacherDirectory);
        string outputDir = FullFolder(options.OutputDirectory);
        var teacher = LoadTeacherConfig(teacherDir);
        var ranks = LoraRanks.Resolve(options.Architecture, teacher.HiddenSize, options.RankOverrides);
        bool outputHasFiles = CheckOutput(teacherDir, outputDir, options.Force);

        using var checkpoint = Checkpoint.Open(teacherDir);
        var plan = ConversionPlan.Build(teacher, checkpoint, options.Architecture, options.Variant, ranks, options.Seed);
        string configText = StudentConfig.Build(File.ReadAllText(Path.Combine(teacherDir, "config.json")), Path.Combine(teacherDir, "config.json"), plan, options.DType);
        var differing = plan.Tensors.Where(t => t.Origin == TensorOrigin.Teacher)
            .Select(t => checkpoint.Get(t.Source).DType).Where(d => d != options.DType).Distinct().ToArray();
        DType? convertedFrom = differing.Length > 0 ? differing[0] : null;

        var leftovers = outputHasFiles
            ? Directory.GetFiles(outputDir)
                .Select(Path.GetFileName)
                .Where(n => n is not null && n != Checkpoint.SingleFileName
                    && (n.EndsWith(".safetensors", StringComparison.Ordinal) || n == CheckpointIndex.FileName))
                .Select(n => n!).Order(StringComparer.Ordinal).ToArray()
            : [];

        // A fresh folder is assembled under a hidden sibling name and renamed at the end.
        string target = outputHasFiles ? outputDir : StagingFolder(outputDir);
        Directory.CreateDirectory(target);
        try
        {
            var sources = plan.Tensors.Select(t => new TensorSource(t.Name, options.DType, t.Shape, stream => WriteTensor(stream, t, checkpoint, options.DType))).ToArray();
            var metadata = new Dictionary<string, string> { ["format"] = "pt" };
            SafetensorsWriter.Write(Path.Combine(target, Checkpoint.SingleFileName), sources, metadata, written => progress?.Invoke(written, sources.Length));

            var copied = new List<string>();
            foreach (var name in CopiedFileNames)
            {
                var from = Path.Combine(teacherDir, name);
                if (File.Exists(from))
                {
                    WriteAtomically(Path.Combine(target, name), temporary => File.Copy(from, temporary));
                    copied.Add(name);
                }
            }

            // config.json last: a --force conversion that fails midway leaves the old config, not a new one over old weights.
            WriteAtomically(Path.Combine(target, "config.json"), temporary => File.WriteAllText(temporary, configText));
            if (!outputHasFiles)
            {
                if (Directory.Exists(outputDir))
                {
                    Directory.Delete(outputDir); // empty (checked), so the rename can take its place
                }

                Directory.Move(target, outputDir);
            }

            long modelBytes = new FileInfo(Path.Combine(outputDir, Checkpoint.SingleFileName)).Length;
            long outputBytes = copied.Append("config.json").Append(Checkpoint.SingleFileName)
                .Sum(n => new FileInfo(Path.Combine(outputDir, n)).Length);
            return new ConversionResult
            {
                OutputDirectory = outputDir,
                Plan = plan,
                DType = options.DType,
                ConvertedFrom = convertedFrom,
                ModelBytes = modelBytes,
                OutputBytes = outputBytes,
                CopiedFiles = copied,
                LeftoverFiles = leftovers,
                Elapsed = clock.Elapsed,
            };
        }
        catch
        {
            if (!outputHasFiles)
            {
                TryDeleteFolder(target);
            }

            throw;
        }
    }

    private static string FullFolder(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
    }

    private static ModelConfig LoadTeacherConfig(string teacherDir)
    {
        if (!Directory.Exists(teacherDir))
        {
            throw new RadladsException($"--teacher {teacherDir}: folder not found");
        }

        var config = ModelConfig.Load(teacherDir);
        if (config.Architecture != Models.Architecture.Qwen2)
        {
            throw new RadladsException(
                $"--teacher {teacherDir}: model_type '{config.ModelType}' is not a Qwen2 teacher; convert takes a qwen2 checkpoint");
        }

        return config;
    }

    /// <summary>Throws unless the output folder may be written; returns true when it exists and has entries (--force).</summary>
    private static bool CheckOutput(string teacherDir, string outputDir, bool force)
    {
        if (string.Equals(teacherDir, outputDir, StringComparison.Ordinal))
        {
            throw new RadladsException($"--output {outputDir}: is the teacher's folder; write the student to another folder");
        }

        if (File.Exists(outputDir))
        {
            throw new RadladsException($"--output {outputDir}: is a file; give a folder for the student");
        }

        if (!Directory.Exists(outputDir))
        {
            return false;
        }

        int entries = Directory.EnumerateFileSystemEntries(outputDir).Count();
        if (entries == 0)
        {
            return false;
        }

        if (!force)
        {
            throw new RadladsException(
                $"--output {outputDir}: folder exists and is not empty ({entries} entries); pass --force to write the student into it");
        }

        return true;
    }

    internal static string StagingFolder(string outputDir)
    {
        string parent = Path.GetDirectoryName(outputDir) ?? throw new RadladsException($"--output {outputDir}: has no parent folder");
        Directory.CreateDirectory(parent);
        return Path.Combine(parent, $".{Path.GetFileName(outputDir)}.radlads-convert-{Guid.NewGuid():N}");
    }

    internal static void WriteAtomically(string path, Action<string> write)
    {
        string temporary = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            write(temporary);
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temporary);
            }
            catch (IOException)
            {
            }

            throw;
        }
    }

    internal static void TryDeleteFolder(string folder)
    {
        try
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The conversion's own error matters more than a leftover temporary folder.
        }
    }

    private static void WriteTensor(Stream stream, StudentTensor tensor, Checkpoint checkpoint, DType dtype)
    {
        if (tensor.Origin == TensorOrigin.Teacher)
        {
            CopyTeacher(stream, checkpoint.Get(tensor.Source, tensor.Shape), dtype);
        }
        else if (tensor.Constant is float value)
        {
            WriteConstant(stream, value, tensor.ElementCount, dtype);
        }
        else
        {
            var values = tensor.Generate!();
            if (values.LongLength != tensor.ElementCount)
            {
                throw new InvalidOperationException($"{tensor.Name}: generated {values.LongLength} values, expected {tensor.ElementCount}");
            }

            WriteFloats(stream, values, dtype, new byte[ChunkElements * dtype.Size()]);
        }
    }

    internal static unsafe void CopyTeacher(Stream stream, TensorData data, DType dtype)
    {
        if (data.DType == dtype)
        {
            // Same dtype: the teacher's bytes, unchanged.
            const long Chunk = 1 << 26;
            for (long offset = 0; offset < data.ByteLength; offset += Chunk)
            {
                stream.Write(new ReadOnlySpan<byte>(data.Pointer + offset, (int)Math.Min(Chunk, data.ByteLength - offset)));
            }

            return;
        }

        var floats = new float[ChunkElements];
        var bytes = new byte[ChunkElements * dtype.Size()];
        for (long start = 0; start < data.ElementCount; start += ChunkElements)
        {
            int n = (int)Math.Min(ChunkElements, data.ElementCount - start);
            var chunk = floats.AsSpan(0, n);
            switch (data.DType)
            {
                case DType.F32:
                    new ReadOnlySpan<float>((float*)data.Pointer + start, n).CopyTo(chunk);
                    break;
                case DType.F16:
                    TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)data.Pointer + start, n), chunk);
                    break;
                case DType.BF16:
                    Bf16.ToSingle(new ReadOnlySpan<ushort>((ushort*)data.Pointer + start, n), chunk);
                    break;
                default:
                    throw new InvalidOperationException(data.DType.ToString());
            }

            WriteFloats(stream, chunk, dtype, bytes);
        }
    }

    private static void WriteConstant(Stream stream, float value, long count, DType dtype)
    {
        var floats = new float[(int)Math.Min(ChunkElements, count)];
        Array.Fill(floats, value);
        var bytes = new byte[floats.Length * dtype.Size()];
        for (long start = 0; start < count; start += floats.Length)
        {
            int n = (int)Math.Min(floats.Length, count - start);
            WriteFloats(stream, floats.AsSpan(0, n), dtype, bytes);
        }
    }

    /// <summary>Encodes fp32 values as <paramref name="dtype"/> (bf16: round to nearest even) and writes them, chunk by chunk.</summary>
    internal static void WriteFloats(Stream stream, ReadOnlySpan<float> values, DType dtype, byte[] buffer)
    {
        int perChunk = buffer.Length / dtype.Size();
        for (int start = 0; start < values.Length; start += perChunk)
        {
            var chunk = values.Slice(start, Math.Min(perChunk, values.Length - start));
            int byteCount = chunk.Length * dtype.Size();
            switch (dtype)
            {
                case DType.F32:
                    MemoryMarshal.AsBytes(chunk).CopyTo(buffer);
                    break;
                case DType.BF16:
                    Bf16.FromSingle(chunk, MemoryMarshal.Cast<byte, ushort>(buffer.AsSpan(0, byteCount)));
                    break;
                default:
                    throw new InvalidOperationException(dtype.ToString());
            }

            stream.Write(buffer, 0, byteCount);
        }
    }
}
