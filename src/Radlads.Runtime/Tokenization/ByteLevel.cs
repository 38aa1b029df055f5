namespace Radlads.Tokenization;

/// <summary>
/// GPT-2's <c>bytes_to_unicode</c> map used by byte-level BPE: every byte is one printable character
/// (printable Latin-1 bytes map to themselves, the rest to U+0100 onwards, so space is 'Ġ' and newline 'Ċ').
/// </summary>
internal static class ByteLevel
{
    /// <summary>Byte → character.</summary>
    internal static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>Character → byte, or -1; indexed by character (all mapped characters are below U+0144).</summary>
    private static readonly short[] CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar()
    {
        char[] map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }

    private static short[] BuildCharToByte()
    {
        short[] inverse = new short[0x144];
        Array.Fill(inverse, (short)-1);
        for (int b = 0; b < 256; b++)
        {
            inverse[ByteToChar[b]] = (short)b;
        }

        return inverse;
    }

    /// <summary>
    /// The bytes a token string stands for, as the Hugging Face ByteLevel decoder gives them: the mapped bytes
    /// when every character is in the map, otherwise the token's own UTF-8 (e.g. an added token with a space).
    /// </summary>
    internal static byte[] TokenToBytes(string token)
    {
        byte[] bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            char c = token[i];
            if (c >= CharToByte.Length || CharToByte[c] < 0)
            {
                return System.Text.Encoding.UTF8.GetBytes(token);
            }

            bytes[i] = (byte)CharToByte[c];
        }

        return bytes;
    }

    /// <summary>The byte-level form of a piece of text (its UTF-8 bytes, each mapped to its character).</summary>
    internal static string Encode(ReadOnlySpan<char> text)
    {
        int count = System.Text.Encoding.UTF8.GetByteCount(text);
        byte[] bytes = new byte[count];
        System.Text.Encoding.UTF8.GetBytes(text, bytes);
        return string.Create(count, bytes, static (chars, b) =>
        {
            for (int i = 0; i < b.Length; i++)
            {
                chars[i] = ByteToChar[b[i]];
            }
        });
    }
}
