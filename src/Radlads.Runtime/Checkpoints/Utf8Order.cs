namespace Radlads.Checkpoints;

/// <summary>Byte-wise order of UTF-8 strings, the order Rust's <c>str</c> comparison gives.</summary>
internal sealed class Utf8Order : IComparer<byte[]>
{
    public static readonly Utf8Order Instance = new();

    /// <summary>The same order on .NET strings, through their UTF-8 encoding.</summary>
    public static readonly IComparer<string> StringInstance = Comparer<string>.Create(
        (a, b) => Instance.Compare(SafetensorsHeaderWriter.Utf8.GetBytes(a), SafetensorsHeaderWriter.Utf8.GetBytes(b)));

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
}
