using System.Text;

namespace Radlads.Tokenization;

/// <summary>Turns a stream of token ids into text; bytes of an incomplete UTF-8 character wait for the next token.</summary>
/// <remarks>
/// The concatenation of everything <see cref="Push"/> and <see cref="Flush"/> return equals
/// <see cref="QwenTokenizer.Decode"/> of the same ids. Invalid byte sequences become U+FFFD as soon as they are
/// known to be invalid; unknown ids add nothing.
/// </remarks>
public sealed class StreamingDecoder
{
    private readonly QwenTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly Decoder _utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private char[] _chars = new char[64];

    internal StreamingDecoder(QwenTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one token; returns the text that is now complete (possibly empty).</summary>
    public string Push(int id)
    {
        byte[]? bytes = _tokenizer.TokenBytes(id, _skipSpecialTokens);
        return bytes is null || bytes.Length == 0 ? string.Empty : Convert(bytes, flush: false);
    }

    /// <summary>Ends the stream; incomplete bytes left over are returned as U+FFFD.</summary>
    /// <remarks>The decoder can be used again afterwards, for a new stream.</remarks>
    public string Flush() => Convert([], flush: true);

    private string Convert(byte[] bytes, bool flush)
    {
        int needed = _utf8.GetCharCount(bytes, flush: false) + 2;
        if (_chars.Length < needed)
        {
            _chars = new char[Math.Max(needed, _chars.Length * 2)];
        }

        int count = _utf8.GetChars(bytes, 0, bytes.Length, _chars, 0, flush);
        return count == 0 ? string.Empty : new string(_chars, 0, count);
    }
}
