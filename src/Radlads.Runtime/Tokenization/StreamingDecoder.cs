namespace Radlads.Tokenization;

/// <summary>Turns a stream of token ids into text; bytes of an incomplete UTF-8 character wait for the next token.</summary>
public sealed class StreamingDecoder
{
    /// <summary>Adds one token; returns the text that is now complete (possibly empty).</summary>
    public string Push(int id) => throw new NotImplementedException();

    /// <summary>Ends the stream; incomplete bytes left over are returned as U+FFFD.</summary>
    public string Flush() => throw new NotImplementedException();
}
