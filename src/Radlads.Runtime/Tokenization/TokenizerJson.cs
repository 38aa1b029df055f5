using System.Text.Json;

namespace Radlads.Tokenization;

/// <summary>An entry of tokenizer.json's <c>added_tokens</c>, with Hugging Face's matching options.</summary>
internal sealed record AddedTokenSpec(int Id, string Content, bool Special, bool Normalized, bool LStrip, bool RStrip, bool SingleWord);

/// <summary>
/// What <see cref="QwenTokenizer"/> takes from a Hugging Face <c>tokenizer.json</c>, parsed with System.Text.Json.
/// Anything the tokenizer cannot reproduce exactly is refused with a one-line <see cref="RadladsException"/>
/// that names the file and the field.
/// </summary>
internal sealed class TokenizerJson
{
    private TokenizerJson(string path) => Path = path;

    internal string Path { get; }

    /// <summary><c>model.vocab</c>: byte-level token string → id.</summary>
    internal Dictionary<string, int> Vocab { get; } = new(StringComparer.Ordinal);

    /// <summary><c>model.merges</c> in rank order.</summary>
    internal List<(string Left, string Right)> Merges { get; } = [];

    internal List<AddedTokenSpec> AddedTokens { get; } = [];

    /// <summary>Whether the normalizer is NFC (otherwise there is none).</summary>
    internal bool Nfc { get; private set; }

    /// <summary>The regex of the Split pre-tokenizer (Qwen's when the file has no pre_tokenizer).</summary>
    internal string SplitPattern { get; private set; } = SplitPreTokenizer.QwenPattern;

    /// <summary><c>model.ignore_merges</c>: a piece found whole in the vocabulary is one token.</summary>
    internal bool IgnoreMerges { get; private set; }

    internal string? UnknownToken { get; private set; }

    internal bool FuseUnknown { get; private set; }

    internal static TokenizerJson Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            throw new RadladsException($"{path}: file not found (a Hugging Face tokenizer.json is expected)");
        }
        catch (DirectoryNotFoundException)
        {
            throw new RadladsException($"{path}: file not found (a Hugging Face tokenizer.json is expected)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RadladsException($"{path}: cannot read: {OneLine(e.Message)}", e);
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new RadladsException(
                $"{path}: malformed JSON at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {OneLine(e.Message)}", e);
        }

        using (doc)
        {
            var t = new TokenizerJson(path);
            t.Read(doc.RootElement);
            return t;
        }
    }

    private void Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw Error("the top level", "is not a JSON object");
        }

        if (!root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
        {
            throw Error("model", "is missing or not an object");
        }

        ReadModel(model);
        ReadAddedTokens(root);
        ReadNormalizer(root);
        ReadPreTokenizer(root);
        RequireByteLevelOrNull(root, "decoder");
        RequireByteLevelOrNull(root, "post_processor");
    }

    private void ReadModel(JsonElement model)
    {
        string? type = OptionalString(model, "type", "model.type");
        if (type is not null and not "BPE")
        {
            throw Error("model.type", $"is '{type}'; only BPE is supported");
        }

        if (!model.TryGetProperty("vocab", out JsonElement vocab) || vocab.ValueKind != JsonValueKind.Object)
        {
            throw Error("model.vocab", "is missing or not an object of token → id");
        }

        foreach (JsonProperty p in vocab.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
            {
                throw Error($"model.vocab[\"{p.Name}\"]", "is not a non-negative integer id");
            }

            Vocab[p.Name] = id;
        }

        if (model.TryGetProperty("merges", out JsonElement merges) && merges.ValueKind != JsonValueKind.Null)
        {
            if (merges.ValueKind != JsonValueKind.Array)
            {
                throw Error("model.merges", "is not an array");
            }

            int i = 0;
            foreach (JsonElement m in merges.EnumerateArray())
            {
                Merges.Add(ReadMerge(m, i++));
            }
        }

        if (model.TryGetProperty("dropout", out JsonElement dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
        {
            throw Error("model.dropout", "is set; BPE dropout is not supported");
        }

        if (OptionalBool(model, "byte_fallback", "model.byte_fallback"))
        {
            throw Error("model.byte_fallback", "is true; byte fallback is not supported (byte-level BPE needs none)");
        }

        if (!string.IsNullOrEmpty(OptionalString(model, "continuing_subword_prefix", "model.continuing_subword_prefix")))
        {
            throw Error("model.continuing_subword_prefix", "is set; only byte-level BPE without a prefix is supported");
        }

        if (!string.IsNullOrEmpty(OptionalString(model, "end_of_word_suffix", "model.end_of_word_suffix")))
        {
            throw Error("model.end_of_word_suffix", "is set; only byte-level BPE without a suffix is supported");
        }

        IgnoreMerges = OptionalBool(model, "ignore_merges", "model.ignore_merges");
        UnknownToken = OptionalString(model, "unk_token", "model.unk_token");
        FuseUnknown = OptionalBool(model, "fuse_unk", "model.fuse_unk");
        if (UnknownToken is not null && !Vocab.ContainsKey(UnknownToken))
        {
            throw Error("model.unk_token", $"'{UnknownToken}' is not in model.vocab");
        }
    }

    private (string, string) ReadMerge(JsonElement m, int index)
    {
        if (m.ValueKind == JsonValueKind.String)
        {
            string s = m.GetString()!;
            int space = s.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && space < s.Length - 1 && s.IndexOf(' ', space + 1) < 0)
            {
                return (s[..space], s[(space + 1)..]);
            }
        }
        else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
            && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
        {
            string left = m[0].GetString()!, right = m[1].GetString()!;
            if (left.Length > 0 && right.Length > 0 && !left.Contains(' ', StringComparison.Ordinal) && !right.Contains(' ', StringComparison.Ordinal))
            {
                return (left, right);
            }

            throw Error($"model.merges[{index}]", "has an empty part or a part with a space, which Microsoft.ML.Tokenizers cannot represent");
        }

        throw Error($"model.merges[{index}]", "is neither \"left right\" nor [\"left\", \"right\"]");
    }

    private void ReadAddedTokens(JsonElement root)
    {
        if (!root.TryGetProperty("added_tokens", out JsonElement added) || added.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (added.ValueKind != JsonValueKind.Array)
        {
            throw Error("added_tokens", "is not an array");
        }

        int i = 0;
        foreach (JsonElement a in added.EnumerateArray())
        {
            string field = $"added_tokens[{i++}]";
            if (a.ValueKind != JsonValueKind.Object)
            {
                throw Error(field, "is not an object");
            }

            if (!a.TryGetProperty("id", out JsonElement idElement) || !idElement.TryGetInt32(out int id) || id < 0)
            {
                throw Error($"{field}.id", "is missing or not a non-negative integer");
            }

            string? content = OptionalString(a, "content", $"{field}.content");
            if (string.IsNullOrEmpty(content))
            {
                throw Error($"{field}.content", "is missing or empty");
            }

            bool special = OptionalBool(a, "special", $"{field}.special");
            bool normalized = a.TryGetProperty("normalized", out JsonElement n) && n.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? n.GetBoolean()
                : !special;
            AddedTokens.Add(new AddedTokenSpec(id, content, special, normalized,
                OptionalBool(a, "lstrip", $"{field}.lstrip"), OptionalBool(a, "rstrip", $"{field}.rstrip"),
                OptionalBool(a, "single_word", $"{field}.single_word")));
        }
    }

    private void ReadNormalizer(JsonElement root)
    {
        if (!root.TryGetProperty("normalizer", out JsonElement normalizer) || normalizer.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        string type = TypeOf(normalizer, "normalizer");
        if (type == "NFC")
        {
            Nfc = true;
            return;
        }

        if (type == "Sequence" && normalizer.TryGetProperty("normalizers", out JsonElement list) && list.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (JsonElement n in list.EnumerateArray())
            {
                string field = $"normalizer.normalizers[{i++}]";
                if (TypeOf(n, field) != "NFC")
                {
                    throw Error($"{field}.type", $"is '{TypeOf(n, field)}'; only NFC is supported");
                }

                Nfc = true;
            }

            return;
        }

        throw Error("normalizer.type", $"is '{type}'; only NFC is supported");
    }

    private void ReadPreTokenizer(JsonElement root)
    {
        if (!root.TryGetProperty("pre_tokenizer", out JsonElement pre) || pre.ValueKind == JsonValueKind.Null)
        {
            return; // Qwen's pattern, byte-level
        }

        List<(JsonElement Element, string Field)> steps = [];
        if (TypeOf(pre, "pre_tokenizer") == "Sequence")
        {
            if (!pre.TryGetProperty("pretokenizers", out JsonElement list) || list.ValueKind != JsonValueKind.Array)
            {
                throw Error("pre_tokenizer.pretokenizers", "is missing or not an array");
            }

            int i = 0;
            foreach (JsonElement e in list.EnumerateArray())
            {
                steps.Add((e, $"pre_tokenizer.pretokenizers[{i++}]"));
            }
        }
        else
        {
            steps.Add((pre, "pre_tokenizer"));
        }

        // Supported: [Split(regex, Isolated), ByteLevel(use_regex: false)] as Qwen has, or a lone ByteLevel(use_regex: true).
        string? pattern = null;
        bool byteLevel = false;
        foreach ((JsonElement e, string field) in steps)
        {
            string type = TypeOf(e, field);
            if (type == "Split" && pattern is null && !byteLevel)
            {
                pattern = ReadSplit(e, field);
            }
            else if (type == "ByteLevel" && !byteLevel)
            {
                if (OptionalBool(e, "add_prefix_space", $"{field}.add_prefix_space"))
                {
                    throw Error($"{field}.add_prefix_space", "is true; only add_prefix_space: false is supported");
                }

                bool useRegex = !e.TryGetProperty("use_regex", out JsonElement u) || u.ValueKind != JsonValueKind.False;
                if (useRegex && pattern is not null)
                {
                    throw Error($"{field}.use_regex", "is true after a Split; only one splitting regex is supported");
                }

                pattern ??= useRegex ? SplitPreTokenizer.Gpt2Pattern : null;
                byteLevel = true;
            }
            else
            {
                throw Error($"{field}.type", $"is '{type}'; supported: a Split regex followed by ByteLevel, or ByteLevel alone");
            }
        }

        if (!byteLevel)
        {
            throw Error("pre_tokenizer", "has no ByteLevel step; only byte-level BPE is supported");
        }

        if (pattern is null)
        {
            throw Error("pre_tokenizer", "has no splitting regex (ByteLevel with use_regex: false and no Split)");
        }

        SplitPattern = pattern;
    }

    private string ReadSplit(JsonElement split, string field)
    {
        if (!split.TryGetProperty("pattern", out JsonElement pattern) || pattern.ValueKind != JsonValueKind.Object)
        {
            throw Error($"{field}.pattern", "is missing or not an object");
        }

        string? behavior = OptionalString(split, "behavior", $"{field}.behavior");
        if (behavior != "Isolated")
        {
            throw Error($"{field}.behavior", $"is '{behavior}'; only Isolated is supported");
        }

        if (OptionalBool(split, "invert", $"{field}.invert"))
        {
            throw Error($"{field}.invert", "is true; only invert: false is supported");
        }

        if (pattern.TryGetProperty("Regex", out JsonElement regex) && regex.ValueKind == JsonValueKind.String)
        {
            string r = regex.GetString()!;
            try
            {
                _ = new System.Text.RegularExpressions.Regex(r, System.Text.RegularExpressions.RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw new RadladsException($"{Path}: {field}.pattern.Regex is not a regex .NET accepts: {OneLine(e.Message)}", e);
            }

            return r;
        }

        if (pattern.TryGetProperty("String", out JsonElement literal) && literal.ValueKind == JsonValueKind.String && literal.GetString()!.Length > 0)
        {
            return System.Text.RegularExpressions.Regex.Escape(literal.GetString()!);
        }

        throw Error($"{field}.pattern", "has neither a Regex nor a non-empty String");
    }

    private void RequireByteLevelOrNull(JsonElement root, string name)
    {
        if (root.TryGetProperty(name, out JsonElement e) && e.ValueKind != JsonValueKind.Null)
        {
            string type = TypeOf(e, name);
            if (type != "ByteLevel")
            {
                throw Error($"{name}.type", $"is '{type}'; only ByteLevel is supported");
            }
        }
    }

    private string TypeOf(JsonElement e, string field)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw Error(field, "is not an object");
        }

        return OptionalString(e, "type", $"{field}.type") ?? throw Error($"{field}.type", "is missing");
    }

    private string? OptionalString(JsonElement e, string name, string field)
    {
        if (!e.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Error(field, "is not a string");
    }

    private bool OptionalBool(JsonElement e, string name, string field)
    {
        if (!e.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
        {
            return false;
        }

        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(field, "is not true or false"),
        };
    }

    private RadladsException Error(string field, string problem) => new($"{Path}: {field} {problem}");

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
