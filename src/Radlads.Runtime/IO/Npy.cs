using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Radlads.IO;

/// <summary>NumPy .npy files (format version 1.0), little-endian, C order: what `--dump-logits` writes and the golden fixtures use.</summary>
public static partial class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Writes float32 values with the given shape, atomically.</summary>
    public static void WriteFloat32(string path, ReadOnlySpan<float> values, params int[] shape)
    {
        long count = shape.Aggregate(1L, (a, d) => a * d);
        if (count != values.Length)
        {
            throw new ArgumentException($"{values.Length} values for shape [{string.Join(", ", shape)}]");
        }

        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shapeText + ", }";
        // Magic (6) + version (2) + length (2) + header + '\n' is padded with spaces to a multiple of 64.
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + ((64 - (total % 64)) % 64)) + "\n";
        var temporary = path + ".tmp-" + Environment.ProcessId;
        using (var stream = File.Create(temporary))
        {
            stream.Write(Magic);
            stream.Write([1, 0]);
            stream.Write(BitConverter.GetBytes((ushort)header.Length));
            stream.Write(Encoding.ASCII.GetBytes(header));
            stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
        }

        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Reads a '&lt;f4' or '&lt;f8' array as float64 with its shape.</summary>
    public static (double[] Values, int[] Shape) ReadFloat64(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
        {
            throw new RadladsException($"{path}: not a .npy file");
        }

        int major = bytes[6];
        int headerLength = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int start = major == 1 ? 10 : 12;
        string header = Encoding.ASCII.GetString(bytes, start, headerLength);
        var descr = DescrPattern().Match(header);
        var shapeMatch = ShapePattern().Match(header);
        if (!descr.Success || !shapeMatch.Success || header.Contains("'fortran_order': True", StringComparison.Ordinal))
        {
            throw new RadladsException($"{path}: unsupported .npy header {header.Trim()}");
        }

        var shape = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        long count = shape.Aggregate(1L, (a, d) => a * d);
        int dataStart = start + headerLength;
        var values = new double[count];
        switch (descr.Groups[1].Value)
        {
            case "<f8":
                Buffer.BlockCopy(bytes, dataStart, values, 0, checked((int)(count * 8)));
                break;
            case "<f4":
                for (long i = 0; i < count; i++)
                {
                    values[i] = BitConverter.ToSingle(bytes, dataStart + (int)(i * 4));
                }

                break;
            default:
                throw new RadladsException($"{path}: dtype {descr.Groups[1].Value} is not supported (float32 or float64)");
        }

        return (values, shape);
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
