using System.Collections.ObjectModel;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Radlads.Tokenization;

/// <summary>
/// The Qwen2/Qwen2.5 tokenizer (byte-level BPE, Qwen's split regex, NFC normaliser, added/special tokens),
/// built from a model's <c>tokenizer.json</c> with Microsoft.ML.Tokenizers.
/// </summary>
/// <remarks>
/// <para>Encoding follows the Hugging Face tokenizers library step by step: added tokens are found in the raw text
/// first (those with <c>normalized: false</c>, e.g. all of Qwen's), each remaining stretch is NFC-normalised and
/// searched for <c>normalized: true</c> added tokens, the rest is split by the pre-tokenizer regex (read from the
/// file; Qwen's when it has none) and each piece is byte-level BPE-encoded by Microsoft.ML.Tokenizers'
/// <see cref="BpeTokenizer"/>.</para>
/// <para>Lone surrogates in the input are replaced by U+FFFD first (what UTF-8 encoding them would do).
/// NFC uses Radlads' own tables (<see cref="Nfc"/>), because .NET normalisation is a no-op under invariant globalization.</para>
/// <para>Decoding is byte-level: each token's bytes are concatenated and decoded as UTF-8, invalid sequences
/// becoming U+FFFD; ids the tokenizer does not know are skipped, as Hugging Face does.</para>
/// </remarks>
public sealed class QwenTokenizer
{
    private readonly BpeTokenizer _bpe;
    private readonly SplitPreTokenizer _preTokenizer;
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int> _addedByContent;
    private readonly string?[] _idToToken;
    private readonly byte[]?[] _idToBytes;
    private readonly bool[] _isSpecial;
    private readonly AddedTokenMatcher _rawMatcher;
    private readonly AddedTokenMatcher _normalizedMatcher;
    private readonly bool _nfc;
    private readonly bool _ignoreMerges;

    private QwenTokenizer(TokenizerJson json)
    {
        _vocab = json.Vocab;
        _nfc = json.Nfc;
        _ignoreMerges = json.IgnoreMerges;
        _preTokenizer = SplitPreTokenizer.Create(json.SplitPattern);

        try
        {
            _bpe = BpeTokenizer.Create(new BpeOptions(json.Vocab)
            {
                Merges = json.Merges.Select(m => $"{m.Left} {m.Right}"),
                ByteLevel = true,
                PreTokenizer = _preTokenizer,
                Normalizer = json.Nfc ? NfcNormalizer.Instance : null,
                UnknownToken = json.UnknownToken,
                FuseUnknownTokens = json.FuseUnknown,
            });
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw new RadladsException($"{json.Path}: model.vocab and model.merges do not form a BPE model: {e.Message.ReplaceLineEndings(" ")}", e);
        }

        _addedByContent = new Dictionary<string, int>(StringComparer.Ordinal);
        int size = 0;
        foreach (int id in json.Vocab.Values)
        {
            size = Math.Max(size, id + 1);
        }

        foreach (AddedTokenSpec t in json.AddedTokens)
        {
            size = Math.Max(size, t.Id + 1);
            _addedByContent[t.Content] = t.Id;
        }

        VocabularySize = size;
        _idToToken = new string?[size];
        _idToBytes = new byte[]?[size];
        _isSpecial = new bool[size];
        foreach ((string token, int id) in json.Vocab)
        {
            _idToToken[id] = token;
        }

        foreach (AddedTokenSpec t in json.AddedTokens)
        {
            _idToToken[t.Id] = t.Content; // an added token wins over a vocab entry with the same id, as in Hugging Face
            _isSpecial[t.Id] = t.Special;
        }

        for (int id = 0; id < size; id++)
        {
            if (_idToToken[id] is string token)
            {
                _idToBytes[id] = ByteLevel.TokenToBytes(token);
            }
        }

        SpecialTokens = new ReadOnlyDictionary<string, int>(_addedByContent);
        _rawMatcher = new AddedTokenMatcher(json.AddedTokens.Where(t => !t.Normalized), t => t.Content);
        _normalizedMatcher = new AddedTokenMatcher(json.AddedTokens.Where(t => t.Normalized), t => _nfc ? Nfc.Normalize(t.Content) : t.Content);
    }

    /// <summary>Loads <c>tokenizer.json</c> from a model folder; a clear error when it is missing or malformed.</summary>
    public static QwenTokenizer FromDirectory(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new RadladsException($"{directory}: model folder not found");
        }

        string path = Path.Combine(directory, "tokenizer.json");
        return File.Exists(path)
            ? FromFile(path)
            : throw new RadladsException($"{directory}: no tokenizer.json in the model folder");
    }

    public static QwenTokenizer FromFile(string tokenizerJsonPath) => new(TokenizerJson.Load(tokenizerJsonPath));

    /// <summary>Number of ids the tokenizer can produce (regular vocab + added tokens); never sample ids at or above it.</summary>
    public int VocabularySize { get; }

    /// <summary>Added/special tokens (content → id), e.g. &lt;|im_end|&gt;.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens { get; }

    /// <summary>Ids exactly as the Hugging Face tokenizers library gives them; special tokens inside the text are recognised.</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = ReplaceLoneSurrogates(text);
        var ids = new List<int>(text.Length / 3 + 4);
        foreach ((int start, int length, int id) in SplitAdded(_rawMatcher, text))
        {
            if (id >= 0)
            {
                ids.Add(id);
                continue;
            }

            string segment = text.Substring(start, length);
            if (_nfc)
            {
                segment = Nfc.Normalize(segment);
            }

            foreach ((int s, int l, int id2) in SplitAdded(_normalizedMatcher, segment))
            {
                if (id2 >= 0)
                {
                    ids.Add(id2);
                }
                else
                {
                    EncodePlain(s == 0 && l == segment.Length ? segment : segment.Substring(s, l), ids);
                }
            }
        }

        return [.. ids];
    }

    /// <summary>Pre-tokenizes and BPE-encodes text that holds no added token and is already normalised.</summary>
    private void EncodePlain(string text, List<int> ids)
    {
        if (!_ignoreMerges)
        {
            ids.AddRange(_bpe.EncodeToIds(text, considerPreTokenization: true, considerNormalization: false));
            return;
        }

        foreach ((int offset, int length) in _preTokenizer.Split(text))
        {
            string piece = text.Substring(offset, length);
            if (_vocab.TryGetValue(ByteLevel.Encode(piece), out int whole))
            {
                ids.Add(whole);
            }
            else
            {
                ids.AddRange(_bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
            }
        }
    }

    private static List<(int Start, int Length, int Id)> SplitAdded(AddedTokenMatcher matcher, string text) =>
        matcher.IsEmpty ? [(0, text.Length, -1)] : matcher.Split(text);

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (TokenBytes(id, skipSpecialTokens) is byte[] b)
            {
                bytes.AddRange(b);
            }
        }

        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (_addedByContent.TryGetValue(token, out int id) || _vocab.TryGetValue(token, out id))
        {
            return id;
        }

        return null;
    }

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>A decoder that turns ids into text as they arrive, never emitting half a UTF-8 character.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    /// <summary>The bytes an id decodes to; null for an unknown id or, when skipping them, a special token.</summary>
    internal byte[]? TokenBytes(int id, bool skipSpecialTokens)
    {
        if ((uint)id >= (uint)_idToBytes.Length || (skipSpecialTokens && _isSpecial[id]))
        {
            return null;
        }

        return _idToBytes[id];
    }

    private static string ReplaceLoneSurrogates(string text)
    {
        int i = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (i < 0)
        {
            return text;
        }

        StringBuilder? sb = null;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }

            if (char.IsSurrogate(c))
            {
                sb ??= new StringBuilder(text);
                sb[i] = '\uFFFD';
            }
        }

        return sb?.ToString() ?? text;
    }
}
