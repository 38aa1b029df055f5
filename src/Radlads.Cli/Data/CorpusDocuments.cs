using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Radlads.Cli.Data;

/// <summary>One document of a corpus, and how many input bytes it stands for (for progress and ETA).</summary>
internal readonly record struct Document(string Text, long InputBytes);

/// <summary>
/// Reads the documents of a corpus file: <c>.jsonl</c> is one JSON object per line with the text in a named field
/// (blank lines skipped, other fields ignored); any other file is UTF-8 text that is one document.
/// Both are strict UTF-8; a leading byte-order mark is dropped. Every problem names the file (and the line).
/// </summary>
internal static class CorpusDocuments
{
    public static bool IsJsonLines(string path) => path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);

    public static IEnumerable<Document> Read(string path, string textField) =>
        IsJsonLines(path) ? ReadJsonLines(path, textField) : ReadWholeFile(path);

    private static IEnumerable<Document> ReadWholeFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RadladsException($"{path}: cannot read ({e.Message})", e);
        }

        string text;
        try
        {
            int start = bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0;
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, start, bytes.Length - start);
        }
        catch (DecoderFallbackException)
        {
            throw new RadladsException($"{path}: not valid UTF-8 text");
        }

        yield return new Document(text, bytes.Length);
    }

    private static IEnumerable<Document> ReadJsonLines(string path, string textField)
    {
        // Lines are split on '\n' bytes and each is checked as UTF-8 on its own, so an error names the right line.
        using var stream = Open(path);
        var buffer = new byte[1 << 16];
        int start = 0, end = 0; // unread bytes: buffer[start..end)
        bool endOfFile = false;
        long lineNumber = 0, pendingBytes = 0;
        while (true)
        {
            int newline = buffer.AsSpan(start, end - start).IndexOf((byte)'\n');
            if (newline < 0 && !endOfFile)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
                if (end == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                int read = Read(stream, buffer.AsSpan(end), path);
                endOfFile = read == 0;
                end += read;
                continue;
            }

            if (newline < 0 && start == end)
            {
                yield break;
            }

            int length = newline < 0 ? end - start : newline;
            var line = buffer.AsMemory(start, length);
            start += newline < 0 ? length : length + 1;
            pendingBytes += newline < 0 ? length : length + 1;
            lineNumber++;
            if (lineNumber == 1 && line.Span.StartsWith("\uFEFF"u8))
            {
                line = line[3..];
            }

            if (line.Span.EndsWith((byte)'\r'))
            {
                line = line[..^1];
            }

            if (line.Span.IndexOfAnyExcept(" \t"u8) < 0)
            {
                continue;
            }

            yield return new Document(ExtractText(path, lineNumber, line, textField), pendingBytes);
            pendingBytes = 0;
        }
    }

    private static FileStream Open(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RadladsException($"{path}: cannot read ({e.Message})", e);
        }
    }

    private static int Read(FileStream stream, Span<byte> destination, string path)
    {
        try
        {
            return stream.Read(destination);
        }
        catch (IOException e)
        {
            throw new RadladsException($"{path}: cannot read ({e.Message})", e);
        }
    }

    private static string ExtractText(string path, long lineNumber, ReadOnlyMemory<byte> line, string textField)
    {
        if (!Utf8.IsValid(line.Span))
        {
            throw new RadladsException($"{path}, line {lineNumber}: not valid UTF-8 text");
        }

        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            string reason = e.Message;
            int cut = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
            reason = (cut >= 0 ? reason[..cut] : reason).TrimEnd('.', ' ');
            string where = e.BytePositionInLine is long column ? $" at byte {column + 1}" : "";
            throw new RadladsException($"{path}, line {lineNumber}: not valid JSON{where} ({reason})");
        }

        using (json)
        {
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new RadladsException($"{path}, line {lineNumber}: expected a JSON object, got {Kind(root.ValueKind)}");
            }

            if (!root.TryGetProperty(textField, out var value))
            {
                throw new RadladsException($"{path}, line {lineNumber}: no \"{textField}\" field (name the text field with --text-field)");
            }

            if (value.ValueKind != JsonValueKind.String)
            {
                throw new RadladsException($"{path}, line {lineNumber}: field \"{textField}\" is {Kind(value.ValueKind)}, not a string");
            }

            try
            {
                return value.GetString()!;
            }
            catch (InvalidOperationException e)
            {
                throw new RadladsException($"{path}, line {lineNumber}: field \"{textField}\" is not valid text ({e.Message})", e);
            }
        }
    }

    private static string Kind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
