using System.Collections.ObjectModel;

namespace Radlads.Checkpoints;

/// <summary>
/// The tensors of a Hugging Face checkpoint folder: a single <c>model.safetensors</c>, or shards listed
/// by <c>model.safetensors.index.json</c>. Files are memory-mapped and validated when opened.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";

    private readonly Dictionary<string, Entry> entries;
    private readonly IDisposable[] files;
    private readonly ReadOnlyCollection<string> names;
    private bool disposed;

    private Checkpoint(string directory, Dictionary<string, Entry> entries, IDisposable[] files)
    {
        Directory = directory;
        this.entries = entries;
        this.files = files;
        names = Array.AsReadOnly(entries.Keys.Order(StringComparer.Ordinal).ToArray());
    }

    /// <summary>
    /// A checkpoint whose tensors already lie in memory (benchmarks build models with random weights this way).
    /// Each <see cref="TensorData"/> must stay valid until <paramref name="owner"/> is disposed, which the
    /// checkpoint does when it is disposed. <paramref name="description"/> stands for the folder in messages.
    /// </summary>
    public static Checkpoint FromMemory(string description, IEnumerable<TensorData> tensors, IDisposable? owner)
    {
        ArgumentNullException.ThrowIfNull(description);
        ArgumentNullException.ThrowIfNull(tensors);
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            if (Shapes.ElementCount(tensor.Shape) is not { } count || count * tensor.DType.Size() != tensor.ByteLength)
            {
                throw new ArgumentException($"tensor '{tensor.Name}': {tensor.ByteLength} bytes do not hold {tensor.ShapeText} of {tensor.DType}", nameof(tensors));
            }

            if (!entries.TryAdd(tensor.Name, new Entry(null, null, tensor)))
            {
                throw new ArgumentException($"tensor '{tensor.Name}' is given twice", nameof(tensors));
            }
        }

        return new Checkpoint(description, entries, owner is null ? [] : [owner]);
    }

    /// <summary>Opens every safetensors file of the folder. Errors name the file and what is wrong.</summary>
    public static Checkpoint Open(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("safetensors checkpoints are read only on little-endian machines");
        }

        var folder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        if (!System.IO.Directory.Exists(folder))
        {
            throw new RadladsException($"checkpoint folder {folder} does not exist");
        }

        var single = Path.Combine(folder, SingleFileName);
        if (File.Exists(single))
        {
            return OpenSingle(folder, single);
        }

        var index = Path.Combine(folder, CheckpointIndex.FileName);
        if (File.Exists(index))
        {
            return OpenSharded(folder, index);
        }

        var candidates = System.IO.Directory.GetFiles(folder)
            .Where(file => file.EndsWith(".safetensors", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToArray();
        return candidates.Length switch
        {
            1 => OpenSingle(folder, candidates[0]),
            0 => throw new RadladsException(
                $"checkpoint folder {folder} has no {SingleFileName}, {CheckpointIndex.FileName} or other *.safetensors file"),
            _ => throw new RadladsException(
                $"checkpoint folder {folder} has no {SingleFileName} or {CheckpointIndex.FileName} but {candidates.Length} *.safetensors files "
                + $"({string.Join(", ", candidates.Select(Path.GetFileName))}); expected one, or an index"),
        };
    }

    public string Directory { get; }

    /// <summary>Every tensor name, in ordinal order.</summary>
    public IReadOnlyCollection<string> Names => names;

    public bool Contains(string name) => entries.ContainsKey(name);

    /// <summary>The tensor, or a <see cref="RadladsException"/> naming the folder and the missing tensor.</summary>
    public TensorData Get(string name)
    {
        return Data(Find(name));
    }

    /// <summary>The tensor, checked to have exactly <paramref name="expectedShape"/>.</summary>
    public TensorData Get(string name, params int[] expectedShape)
    {
        ArgumentNullException.ThrowIfNull(expectedShape);
        var entry = Find(name);
        if (!entry.Shape.AsSpan().SequenceEqual(expectedShape))
        {
            throw new RadladsException(
                $"{name} in {Source(entry)} has shape {Shapes.Format(entry.Shape)}, expected {Shapes.Format(expectedShape)}");
        }

        return Data(entry);
    }

    /// <summary>
    /// A vector parameter of <paramref name="length"/> elements converted to fp32; any shape whose dims are
    /// all 1 except one equal to length is accepted ([C], [1,C], [1,1,C]).
    /// </summary>
    public float[] ReadVector(string name, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var entry = Find(name);
        var shape = entry.Shape;
        var isVector = shape.Count(dim => dim != 1) <= 1 && Shapes.ElementCount(shape) == length;
        if (!isVector)
        {
            throw new RadladsException(
                $"{name} in {Source(entry)} has shape {Shapes.Format(shape)}, expected a vector of {length} elements ([{length}], [1, {length}], ...)");
        }

        return Float32Conversion.ToFloat32(Data(entry), Source(entry));
    }

    /// <summary>Any tensor converted to fp32, row-major, checked against <paramref name="expectedShape"/>.</summary>
    public float[] ReadFloat32(string name, params int[] expectedShape)
    {
        var tensor = Get(name, expectedShape);
        return Float32Conversion.ToFloat32(tensor, Source(entries[name]));
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        foreach (var file in files)
        {
            file.Dispose();
        }
    }

    private static Checkpoint OpenSingle(string folder, string path)
    {
        var file = SafetensorsFile.Open(path);
        var entries = file.Tensors.Values.ToDictionary(info => info.Name, info => new Entry(file, info, default), StringComparer.Ordinal);
        return new Checkpoint(folder, entries, [file]);
    }

    private static Checkpoint OpenSharded(string folder, string indexPath)
    {
        var weightMap = CheckpointIndex.ReadWeightMap(indexPath, folder);
        var opened = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (var group in weightMap.GroupBy(pair => pair.Value, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                if (!File.Exists(group.Key))
                {
                    var example = group.Select(pair => pair.Key).Order(StringComparer.Ordinal).First();
                    throw new RadladsException(
                        $"shard {group.Key} listed in {indexPath} (for tensor '{example}' and {group.Count() - 1} more) does not exist");
                }

                opened.Add(group.Key, SafetensorsFile.Open(group.Key));
            }

            var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
            foreach (var (name, shardPath) in weightMap.OrderBy(pair => pair.Key, StringComparer.Ordinal))
            {
                var shard = opened[shardPath];
                if (!shard.Tensors.TryGetValue(name, out var info))
                {
                    throw new RadladsException(
                        $"tensor '{name}' is listed in {indexPath} for shard {shardPath}, but that shard does not contain it ({shard.Tensors.Count} tensors)");
                }

                entries.Add(name, new Entry(shard, info, default));
            }

            return new Checkpoint(folder, entries, [.. opened.Values]);
        }
        catch
        {
            foreach (var file in opened.Values)
            {
                file.Dispose();
            }

            throw;
        }
    }

    private Entry Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ObjectDisposedException.ThrowIf(disposed, this);
        if (entries.TryGetValue(name, out var entry))
        {
            return entry;
        }

        var hint = names.Count == 0
            ? "0 tensors"
            : $"{names.Count} tensors; closest: {string.Join(", ", NameSuggestions.Closest(name, names, 3).Select(n => $"'{n}'"))}";
        throw new RadladsException($"tensor '{name}' not found in checkpoint {Directory} ({hint})");
    }

    private string Source(Entry entry) => entry.File?.Path ?? Directory;

    private static TensorData Data(Entry entry) => entry.File is null ? entry.Memory : entry.File.GetData(entry.Info!, SupportedDType(entry));

    private static DType SupportedDType(Entry entry)
    {
        var info = entry.Info!;
        if (SafetensorsDTypes.TryGetSupported(info.DTypeName, out var dtype))
        {
            return dtype;
        }

        throw new RadladsException(
            $"tensor '{info.Name}' in {entry.File!.Path} has dtype {info.DTypeName}, which is not supported (supported: {SafetensorsDTypes.SupportedList})");
    }

    /// <summary>A tensor in a safetensors file (File and Info) or already in memory (Memory).</summary>
    private readonly record struct Entry(SafetensorsFile? File, SafetensorsTensorInfo? Info, TensorData Memory)
    {
        public int[] Shape => Info?.Shape ?? Memory.Shape;
    }
}
