using Microsoft.ML.Tokenizers;

namespace Radlads.Tokenization;

/// <summary>The NFC normaliser that Qwen's tokenizer.json declares (<c>"normalizer": {"type": "NFC"}</c>), on <see cref="Nfc"/>.</summary>
internal sealed class NfcNormalizer : Normalizer
{
    public static readonly NfcNormalizer Instance = new();

    public override string Normalize(string original) => Nfc.Normalize(original);

    public override string Normalize(ReadOnlySpan<char> original) =>
        Nfc.IsQuickNfc(original) ? original.ToString() : Nfc.Normalize(original.ToString());
}
