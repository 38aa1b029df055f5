using System.Text.Json;

namespace Radlads.Models;

/// <summary>Typed reads from a config.json object; every error names the file, the field and what was expected.</summary>
internal readonly struct ConfigReader(JsonElement root, string path)
{
    private JsonElement? Field(string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private RadladsException Wrong(string name, string expected, JsonElement value) =>
        new($"{path}: field '{name}' must be {expected}, got {value.GetRawText()}");

    public string RequiredString(string name) =>
        OptionalString(name) ?? throw new RadladsException($"{path}: required field '{name}' is missing");

    public string? OptionalString(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        var v => throw Wrong(name, "a string", v.Value),
    };

    public int PositiveInt(string name) =>
        OptionalPositiveInt(name) ?? throw new RadladsException($"{path}: required field '{name}' is missing");

    public int? OptionalPositiveInt(string name)
    {
        int? value = OptionalInt(name);
        return value is null or > 0 ? value : throw Wrong(name, "a positive integer", Field(name)!.Value);
    }

    public int? OptionalInt(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v when v.TryGetInt32(out int i) => i,
        var v => throw Wrong(name, "an integer", v.Value),
    };

    public double? OptionalPositiveDouble(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v when v.GetDouble() > 0 && double.IsFinite(v.GetDouble()) => v.GetDouble(),
        var v => throw Wrong(name, "a positive number", v.Value),
    };

    public bool? OptionalBool(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        // Some RADLADS configs write flags as 0/1, as the trainer's YAML does.
        { ValueKind: JsonValueKind.Number } v when v.TryGetInt32(out int i) && i is 0 or 1 => i == 1,
        var v => throw Wrong(name, "true or false", v.Value),
    };

    public IReadOnlyList<int> IntOrIntList(string name)
    {
        var field = Field(name);
        if (field is null)
        {
            return [];
        }

        var v = field.Value;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int single))
        {
            return [single];
        }

        if (v.ValueKind == JsonValueKind.Array)
        {
            var list = new List<int>();
            foreach (var item in v.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id))
                {
                    throw Wrong(name, "an integer or a list of integers", v);
                }

                list.Add(id);
            }

            return list;
        }

        throw Wrong(name, "an integer or a list of integers", v);
    }
}
