using System.Text.Json;

namespace Radlads.Generation;

/// <summary>Reads the parts of a model's <c>generation_config.json</c> the runtime uses.</summary>
public static class GenerationConfig
{
    /// <summary>eos_token_id (an id or a list); empty when the file is absent.</summary>
    public static IReadOnlyList<int> EosTokenIds(string directory)
    {
        var path = Path.Combine(directory, "generation_config.json");
        if (!File.Exists(path))
        {
            return [];
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (!doc.RootElement.TryGetProperty("eos_token_id", out var eos) || eos.ValueKind == JsonValueKind.Null)
            {
                return [];
            }

            return eos.ValueKind == JsonValueKind.Array
                ? eos.EnumerateArray().Select(e => e.GetInt32()).ToArray()
                : [eos.GetInt32()];
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new RadladsException($"{path}: eos_token_id must be an integer or a list of integers ({e.Message})");
        }
    }
}
