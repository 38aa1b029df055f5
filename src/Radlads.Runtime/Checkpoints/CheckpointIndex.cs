using System.Text.Json;

namespace Radlads.Checkpoints;

/// <summary>
/// <c>model.safetensors.index.json</c> of a sharded checkpoint: its <c>weight_map</c> from tensor name to
/// shard file (relative to the folder).
/// </summary>
internal static class CheckpointIndex
{
    public const string FileName = "model.safetensors.index.json";

    /// <summary>Tensor name → full path of its shard, checked to stay inside <paramref name="directory"/>.</summary>
    public static Dictionary<string, string> ReadWeightMap(string indexPath, string directory)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(indexPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RadladsException($"{indexPath}: cannot read ({e.Message})", e);
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new RadladsException($"{indexPath}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new RadladsException($"{indexPath}: expected a JSON object, found {root.ValueKind}");
            }

            JsonElement? weightMap = null;
            foreach (var property in root.EnumerateObject())
            {
                if (property.NameEquals("weight_map"))
                {
                    if (weightMap is not null)
                    {
                        throw new RadladsException($"{indexPath}: field 'weight_map' appears twice");
                    }

                    weightMap = property.Value;
                }
            }

            if (weightMap is not { } map)
            {
                throw new RadladsException($"{indexPath}: missing field 'weight_map'");
            }

            if (map.ValueKind != JsonValueKind.Object)
            {
                throw new RadladsException(
                    $"{indexPath}: field 'weight_map' must be an object from tensor name to shard file, found {map.ValueKind}");
            }

            return ReadEntries(indexPath, directory, map);
        }
    }

    private static Dictionary<string, string> ReadEntries(string indexPath, string directory, JsonElement map)
    {
        var root = System.IO.Path.TrimEndingDirectorySeparator(directory) + System.IO.Path.DirectorySeparatorChar;
        var shards = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                throw new RadladsException(
                    $"{indexPath}: field 'weight_map' entry for tensor '{entry.Name}' must be a file name, found {entry.Value.ValueKind}");
            }

            var file = entry.Value.GetString()!;
            var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(directory, file));
            if (file.Length == 0 || !full.StartsWith(root, StringComparison.Ordinal))
            {
                throw new RadladsException(
                    $"{indexPath}: field 'weight_map' entry for tensor '{entry.Name}' names shard '{file}', which is not a file inside {directory}");
            }

            if (!shards.TryAdd(entry.Name, full))
            {
                throw new RadladsException($"{indexPath}: field 'weight_map' lists tensor '{entry.Name}' twice");
            }
        }

        return shards;
    }
}
