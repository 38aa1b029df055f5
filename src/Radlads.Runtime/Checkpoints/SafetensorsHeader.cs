using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Radlads.Checkpoints;

/// <summary>
/// The parsed and validated JSON header of a safetensors file. Validation follows the Hugging Face library:
/// known dtypes, non-negative integer dims, data_offsets that match shape × dtype width, and tensors that
/// tile the data buffer exactly (no overlap, no gap, nothing after the last tensor).
/// </summary>
internal sealed class SafetensorsHeader
{
    /// <summary>The Hugging Face limit on the header length.</summary>
    public const long MaxLength = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private SafetensorsHeader(Dictionary<string, SafetensorsTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    public IReadOnlyDictionary<string, SafetensorsTensorInfo> Tensors { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Parses <paramref name="json"/>, the header of <paramref name="path"/> followed by <paramref name="dataLength"/> data bytes.</summary>
    public static SafetensorsHeader Parse(string path, ReadOnlySpan<byte> json, long dataLength)
    {
        if (!Utf8.IsValid(json))
        {
            throw Error(path, "header is not valid UTF-8 (not a safetensors file?)");
        }

        var tensors = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            var reader = new Utf8JsonReader(json);
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw Error(path, $"header must be a JSON object, found {Describe(reader.TokenType)}");
            }

            var sawMetadata = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var key = reader.GetString()!;
                reader.Read();
                if (key == MetadataKey)
                {
                    if (sawMetadata)
                    {
                        throw Error(path, $"field '{MetadataKey}' appears twice in the header");
                    }

                    sawMetadata = true;
                    ReadMetadata(ref reader, path, metadata);
                }
                else
                {
                    if (tensors.ContainsKey(key))
                    {
                        throw Error(path, $"tensor '{key}' appears twice in the header");
                    }

                    tensors.Add(key, ReadTensor(ref reader, path, key, dataLength));
                }
            }

            if (reader.Read())
            {
                throw Error(path, "header has content after its JSON object");
            }
        }
        catch (JsonException e)
        {
            throw Error(path, $"header is not valid JSON ({OneLine(e.Message)})", e);
        }
        catch (InvalidOperationException e)
        {
            // A string with an escape that is not valid UTF-16, such as a lone surrogate.
            throw Error(path, $"header is not valid JSON ({OneLine(e.Message)})", e);
        }

        CheckTiling(path, tensors.Values, dataLength);
        return new SafetensorsHeader(tensors, metadata);
    }

    private static void ReadMetadata(ref Utf8JsonReader reader, string path, Dictionary<string, string> metadata)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Error(path, $"field '{MetadataKey}' must be an object of strings, found {Describe(reader.TokenType)}");
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                throw Error(path, $"field '{MetadataKey}' entry '{key}' must be a string, found {Describe(reader.TokenType)}");
            }

            if (!metadata.TryAdd(key, reader.GetString()!))
            {
                throw Error(path, $"field '{MetadataKey}' has key '{key}' twice");
            }
        }
    }

    private static SafetensorsTensorInfo ReadTensor(ref Utf8JsonReader reader, string path, string name, long dataLength)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Error(path, $"tensor '{name}' must be an object with dtype, shape and data_offsets, found {Describe(reader.TokenType)}");
        }

        string? dtype = null;
        List<ulong>? shape = null;
        List<ulong>? offsets = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var field = reader.GetString()!;
            reader.Read();
            switch (field)
            {
                case "dtype":
                    if (dtype is not null)
                    {
                        throw Error(path, $"tensor '{name}' has field 'dtype' twice");
                    }

                    if (reader.TokenType != JsonTokenType.String)
                    {
                        throw Error(path, $"tensor '{name}' field 'dtype' must be a string, found {Describe(reader.TokenType)}");
                    }

                    dtype = reader.GetString()!;
                    break;
                case "shape":
                    if (shape is not null)
                    {
                        throw Error(path, $"tensor '{name}' has field 'shape' twice");
                    }

                    shape = ReadIntegers(ref reader, path, name, "shape");
                    break;
                case "data_offsets":
                    if (offsets is not null)
                    {
                        throw Error(path, $"tensor '{name}' has field 'data_offsets' twice");
                    }

                    offsets = ReadIntegers(ref reader, path, name, "data_offsets");
                    if (offsets.Count != 2)
                    {
                        throw Error(path, $"tensor '{name}' field 'data_offsets' must be [begin, end], found {offsets.Count} numbers");
                    }

                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        if (dtype is null || shape is null || offsets is null)
        {
            var missing = dtype is null ? "dtype" : shape is null ? "shape" : "data_offsets";
            throw Error(path, $"tensor '{name}' is missing field '{missing}'");
        }

        return Validate(path, name, dtype, shape, offsets[0], offsets[1], dataLength);
    }

    private static SafetensorsTensorInfo Validate(
        string path, string name, string dtype, List<ulong> shape, ulong begin, ulong end, long dataLength)
    {
        if (!SafetensorsDTypes.TryGetBits(dtype, out var bits))
        {
            throw Error(path, $"tensor '{name}' has unknown dtype '{dtype}' (expected one of {SafetensorsDTypes.KnownList})");
        }

        var dims = new int[shape.Count];
        for (var i = 0; i < dims.Length; i++)
        {
            if (shape[i] > int.MaxValue)
            {
                throw Error(path, $"tensor '{name}' field 'shape' has dimension {shape[i]}, over the limit {int.MaxValue}");
            }

            dims[i] = (int)shape[i];
        }

        var shapeText = Shapes.Format(dims);
        if (begin > end)
        {
            throw Error(path, $"tensor '{name}' field 'data_offsets' is [{begin}, {end}]: begin is after end");
        }

        ulong byteLength;
        try
        {
            ulong totalBits = (ulong)bits;
            foreach (var dim in dims)
            {
                totalBits = checked(totalBits * (ulong)dim);
            }

            if (totalBits % 8 != 0)
            {
                throw Error(path, $"tensor '{name}' with shape {shapeText} of {dtype} is not a whole number of bytes");
            }

            byteLength = totalBits / 8;
        }
        catch (OverflowException)
        {
            throw Error(path, $"tensor '{name}' shape {shapeText} of {dtype} is too large");
        }

        if (end - begin != byteLength)
        {
            throw Error(path,
                $"tensor '{name}' field 'data_offsets' [{begin}, {end}] spans {end - begin} bytes, expected {byteLength} for shape {shapeText} of {dtype}");
        }

        if (end > (ulong)dataLength)
        {
            throw Error(path,
                $"tensor '{name}' field 'data_offsets' [{begin}, {end}] runs past the end of the data buffer ({dataLength} bytes; file truncated?)");
        }

        return new SafetensorsTensorInfo(name, dtype, dims, (long)begin, (long)end);
    }

    private static List<ulong> ReadIntegers(ref Utf8JsonReader reader, string path, string name, string field)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw Error(path, $"tensor '{name}' field '{field}' must be an array of integers, found {Describe(reader.TokenType)}");
        }

        var values = new List<ulong>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number)
            {
                throw Error(path, $"tensor '{name}' field '{field}' must be an array of integers, found {Describe(reader.TokenType)} in it");
            }

            if (reader.TryGetUInt64(out var value))
            {
                values.Add(value);
                continue;
            }

            var text = Encoding.UTF8.GetString(reader.ValueSpan);
            var what = reader.TryGetInt64(out _) || text.StartsWith('-') ? "negative number" : "non-integer";
            throw Error(path, $"tensor '{name}' field '{field}' has {what} {text}, expected a non-negative integer");
        }

        return values;
    }

    /// <summary>Sorted by offset, the tensors must cover [0, dataLength) exactly, as the Hugging Face library requires.</summary>
    private static void CheckTiling(string path, IEnumerable<SafetensorsTensorInfo> tensors, long dataLength)
    {
        var ordered = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ThenBy(t => t.Name, StringComparer.Ordinal);
        long covered = 0;
        SafetensorsTensorInfo? previous = null;
        foreach (var tensor in ordered)
        {
            if (tensor.Begin < covered)
            {
                throw Error(path,
                    $"tensor '{tensor.Name}' field 'data_offsets' {tensor.OffsetsText} overlaps tensor '{previous!.Name}' {previous.OffsetsText}");
            }

            if (tensor.Begin > covered)
            {
                var before = previous is null ? "the data buffer starts at 0" : $"tensor '{previous.Name}' ends at {covered}";
                throw Error(path,
                    $"tensor '{tensor.Name}' field 'data_offsets' {tensor.OffsetsText} leaves a gap: {before} (tensors must be contiguous)");
            }

            covered = tensor.End;
            previous = tensor;
        }

        if (covered != dataLength)
        {
            var last = previous is null ? "no tensors" : $"the last tensor '{previous.Name}' ends at {covered}";
            throw Error(path, $"data buffer is {dataLength} bytes but {last}; expected them to cover it exactly");
        }
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static RadladsException Error(string path, string message) => new($"{path}: {message}");

    private static RadladsException Error(string path, string message, Exception inner) => new($"{path}: {message}", inner);
}
