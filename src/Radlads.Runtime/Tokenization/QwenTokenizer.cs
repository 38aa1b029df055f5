namespace Radlads.Tokenization;

/// <summary>
/// The Qwen2/Qwen2.5 tokenizer (byte-level BPE, Qwen's split regex, NFC normaliser, added/special tokens),
/// built from a model's <c>tokenizer.json</c> with Microsoft.ML.Tokenizers.
/// </summary>
public sealed class QwenTokenizer
{
    /// <summary>Loads <c>tokenizer.json</c> from a model folder; a clear error when it is missing or malformed.</summary>
    public static QwenTokenizer FromDirectory(string directory) => throw new NotImplementedException();

    public static QwenTokenizer FromFile(string tokenizerJsonPath) => throw new NotImplementedException();

    /// <summary>Number of ids the tokenizer can produce (regular vocab + added tokens); never sample ids at or above it.</summary>
    public int VocabularySize => throw new NotImplementedException();

    /// <summary>Added/special tokens (content → id), e.g. &lt;|im_end|&gt;.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => throw new NotImplementedException();

    /// <summary>Ids exactly as the Hugging Face tokenizers library gives them; special tokens inside the text are recognised.</summary>
    public int[] Encode(string text) => throw new NotImplementedException();

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) => throw new NotImplementedException();

    public int? TokenToId(string token) => throw new NotImplementedException();

    public string? IdToToken(int id) => throw new NotImplementedException();

    /// <summary>A decoder that turns ids into text as they arrive, never emitting half a UTF-8 character.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => throw new NotImplementedException();
}
