using System.Globalization;
using System.Text;

namespace Radlads.Checkpoints;

/// <summary>
/// The header bytes the Hugging Face library writes: compact JSON as serde_json prints it
/// (<c>__metadata__</c> first, then tensors in data order), padded with spaces to a multiple of 8 bytes.
/// </summary>
internal static class SafetensorsHeaderWriter
{
    /// <summary>UTF-8 that refuses lone surrogates instead of replacing them.</summary>
    public static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The padded header for <paramref name="tensors"/>, in the order their data follows it.</summary>
    public static byte[] Build(IReadOnlyList<TensorSource> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new StringBuilder("{");
        if (metadata is not null)
        {
            json.Append("\"__metadata__\":{");
            var first = true;
            foreach (var key in metadata.Keys.Order(Utf8Order.StringInstance))
            {
                json.Append(first ? "" : ",");
                AppendString(json, key);
                json.Append(':');
                AppendString(json, metadata[key] ?? throw new ArgumentException($"metadata '{key}' is null", nameof(metadata)));
                first = false;
            }

            json.Append('}');
        }

        long offset = 0;
        for (var i = 0; i < tensors.Count; i++)
        {
            var tensor = tensors[i];
            json.Append(metadata is null && i == 0 ? "" : ",");
            AppendString(json, tensor.Name);
            json.Append(":{\"dtype\":");
            AppendString(json, tensor.DType.SafetensorsName());
            json.Append(",\"shape\":[");
            json.AppendJoin(',', tensor.Shape.Select(dim => dim.ToString(CultureInfo.InvariantCulture)));
            json.Append("],\"data_offsets\":[");
            json.Append(offset.ToString(CultureInfo.InvariantCulture));
            offset += tensor.ByteLength;
            json.Append(',');
            json.Append(offset.ToString(CultureInfo.InvariantCulture));
            json.Append("]}");
        }

        json.Append('}');
        var length = Utf8.GetByteCount(json.ToString());
        json.Append(' ', (8 - (length % 8)) % 8);
        var bytes = Utf8.GetBytes(json.ToString());
        if (bytes.LongLength > SafetensorsHeader.MaxLength)
        {
            throw new ArgumentException(
                $"the header would be {bytes.LongLength} bytes, over the {SafetensorsHeader.MaxLength}-byte limit", nameof(tensors));
        }

        return bytes;
    }

    /// <summary>A JSON string escaped as serde_json does: only quote, backslash and control characters.</summary>
    private static void AppendString(StringBuilder json, string value)
    {
        json.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"':
                    json.Append("\\\"");
                    break;
                case '\\':
                    json.Append("\\\\");
                    break;
                case '\b':
                    json.Append("\\b");
                    break;
                case '\f':
                    json.Append("\\f");
                    break;
                case '\n':
                    json.Append("\\n");
                    break;
                case '\r':
                    json.Append("\\r");
                    break;
                case '\t':
                    json.Append("\\t");
                    break;
                case < ' ':
                    json.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    break;
                default:
                    json.Append(c);
                    break;
            }
        }

        json.Append('"');
    }
}
