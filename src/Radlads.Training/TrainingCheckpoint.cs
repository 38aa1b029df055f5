using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Radlads.Ops;

namespace Radlads.Training;

/// <summary>
/// The trainer's resume checkpoint (<c>OUTPUT/trainer-state.rdlsckpt</c>, format in docs/training-checkpoint.md):
/// options, <see cref="TrainingState"/>, and for every parameter its fp32 value, AdamW m and v. Written atomically
/// (a temporary file beside it, flushed to disk, then renamed over the old one) so a crash or a full disk at any
/// moment leaves the previous checkpoint intact. A SHA-256 of everything before it closes the file; any damaged,
/// truncated or foreign file is a clear <see cref="RadladsException"/> on load.
/// </summary>
public static class TrainingCheckpoint
{
    public const string FileName = "trainer-state.rdlsckpt";

    public const int FormatVersion = 1;

    private static readonly byte[] Magic = "RDLSCKP1"u8.ToArray();

    /// <summary>What a checkpoint holds besides the tensors (read first, to check them before any tensor is touched).</summary>
    public sealed record Header(int Version, TrainingOptions Options, TrainingState State, IReadOnlyList<(string Name, int[] Shape)> Parameters);

    public static string PathIn(string outputDirectory) => Path.Combine(outputDirectory, FileName);

    /// <summary>Writes the checkpoint atomically; returns its size in bytes.</summary>
    public static long Save(string path, IBackend backend, TrainingOptions options, TrainingState state,
        IReadOnlyList<Parameter> parameters, IReadOnlyList<Tensor> m, IReadOnlyList<Tensor> v)
    {
        string temporary = path + ".tmp";
        var header = new JsonObject
        {
            ["format"] = "radlads-trainer-state",
            ["version"] = FormatVersion,
            ["options"] = JsonSerializer.SerializeToNode(options, TrainingJson.Default.TrainingOptions),
            ["state"] = JsonSerializer.SerializeToNode(state, TrainingJson.Default.TrainingState),
            ["parameters"] = new JsonArray(parameters.Select(p => (JsonNode)new JsonObject
            {
                ["name"] = p.Name,
                ["shape"] = new JsonArray(p.Value.Shape.Select(d => (JsonNode)d).ToArray()),
            }).ToArray()),
        };
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            void Write(ReadOnlySpan<byte> bytes)
            {
                hash.AppendData(bytes);
                file.Write(bytes);
            }

            Span<byte> word = stackalloc byte[8];
            Write(Magic);
            BinaryPrimitives.WriteUInt32LittleEndian(word, FormatVersion);
            Write(word[..4]);
            BinaryPrimitives.WriteUInt64LittleEndian(word, (ulong)json.Length);
            Write(word);
            Write(json);
            float[] buffer = [];
            for (int i = 0; i < parameters.Count; i++)
            {
                foreach (var tensor in new[] { parameters[i].Value, m[i], v[i] })
                {
                    if (buffer.Length != tensor.ElementCount)
                    {
                        buffer = new float[tensor.ElementCount];
                    }

                    backend.Download(tensor, buffer);
                    WriteFloats(buffer, Write);
                }
            }

            file.Write(hash.GetHashAndReset());
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        return new FileInfo(path).Length;
    }

    /// <summary>Reads and checks the header (magic, version, JSON) without the tensors.</summary>
    public static Header ReadHeader(string path)
    {
        using var file = OpenRead(path);
        return ReadHeader(path, file, out _);
    }

    /// <summary>
    /// Verifies the whole file's hash, checks its parameters against <paramref name="parameters"/> (names, order,
    /// shapes), and uploads values, m and v. Returns the header.
    /// </summary>
    public static Header Load(string path, IBackend backend, IReadOnlyList<Parameter> parameters, IReadOnlyList<Tensor> m, IReadOnlyList<Tensor> v)
    {
        VerifyHash(path);
        using var file = OpenRead(path);
        var header = ReadHeader(path, file, out _);
        if (header.Parameters.Count != parameters.Count)
        {
            throw Mismatch(path, $"it holds {header.Parameters.Count} parameters, the student trains {parameters.Count}");
        }

        for (int i = 0; i < parameters.Count; i++)
        {
            var (name, shape) = header.Parameters[i];
            if (name != parameters[i].Name || !shape.SequenceEqual(parameters[i].Value.Shape))
            {
                throw Mismatch(path, $"parameter {i} is {name} [{string.Join(", ", shape)}], the student's is {parameters[i].Name} {parameters[i].Value.ShapeText}");
            }
        }

        for (int i = 0; i < parameters.Count; i++)
        {
            foreach (var tensor in new[] { parameters[i].Value, m[i], v[i] })
            {
                var values = new float[tensor.ElementCount];
                var target = MemoryMarshal.AsBytes(values.AsSpan());
                file.ReadExactly(target);
                if (!BitConverter.IsLittleEndian)
                {
                    throw new PlatformNotSupportedException("checkpoints are little-endian");
                }

                backend.Upload(values, tensor);
            }
        }

        if (file.Length - file.Position != 32)
        {
            throw Corrupt(path, "its length does not match its header");
        }

        return header;
    }

    private static FileStream OpenRead(string path)
    {
        if (!File.Exists(path))
        {
            throw new RadladsException($"--resume: no trainer checkpoint at {path}; start without --resume, or give the --output folder of the run to continue");
        }

        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
    }

    private static Header ReadHeader(string path, FileStream file, out long dataStart)
    {
        Span<byte> prefix = stackalloc byte[20];
        if (file.ReadAtLeast(prefix, 20, throwOnEndOfStream: false) < 20 || !prefix[..8].SequenceEqual(Magic))
        {
            throw Corrupt(path, "it does not start with RDLSCKP1 (not a radlads trainer checkpoint, or truncated)");
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..]);
        if (version != FormatVersion)
        {
            throw Corrupt(path, $"format version {version}; this radlads reads version {FormatVersion}");
        }

        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(prefix[12..]);
        if (length > 64 << 20 || (long)length > file.Length - 20)
        {
            throw Corrupt(path, "its header length is impossible (damaged or truncated file)");
        }

        var json = new byte[length];
        file.ReadExactly(json);
        dataStart = 20 + (long)length;
        try
        {
            var node = JsonNode.Parse(json)!.AsObject();
            var options = node["options"].Deserialize(TrainingJson.Default.TrainingOptions)!;
            var state = node["state"].Deserialize(TrainingJson.Default.TrainingState)!;
            var list = node["parameters"]!.AsArray().Select(p => (
                p!["name"]!.GetValue<string>(),
                p["shape"]!.AsArray().Select(d => d!.GetValue<int>()).ToArray())).ToList();
            return new Header((int)version, options, state, list);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            throw Corrupt(path, "its JSON header cannot be read: " + e.Message);
        }
    }

    private static void VerifyHash(string path)
    {
        using var file = OpenRead(path);
        if (file.Length < 20 + 32)
        {
            throw Corrupt(path, "it is too short to be a checkpoint (truncated)");
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        long remaining = file.Length - 32;
        while (remaining > 0)
        {
            int n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, remaining));
            if (n <= 0)
            {
                throw Corrupt(path, "it ended early");
            }

            hash.AppendData(buffer, 0, n);
            remaining -= n;
        }

        var stored = new byte[32];
        file.ReadExactly(stored);
        if (!hash.GetHashAndReset().AsSpan().SequenceEqual(stored))
        {
            throw Corrupt(path, "its SHA-256 does not match its contents (damaged or partly written)");
        }
    }

    private static void WriteFloats(float[] values, Action<ReadOnlySpan<byte>> write)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("checkpoints are little-endian");
        }

        var bytes = MemoryMarshal.AsBytes(values.AsSpan());
        for (int offset = 0; offset < bytes.Length; offset += 1 << 20)
        {
            write(bytes.Slice(offset, Math.Min(1 << 20, bytes.Length - offset)));
        }
    }

    private static RadladsException Corrupt(string path, string why) =>
        new($"--resume: trainer checkpoint {path} cannot be used: {why}. Restore a copy, or start again without --resume (into an empty --output).");

    private static RadladsException Mismatch(string path, string why) =>
        new(string.Create(CultureInfo.InvariantCulture,
            $"--resume: trainer checkpoint {path} does not belong to this student: {why}. Give the same --student as the run that wrote it."));
}
