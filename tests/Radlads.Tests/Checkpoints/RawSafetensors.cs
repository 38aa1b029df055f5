using System.Buffers.Binary;
using System.Text;
using Radlads.Checkpoints;

namespace Radlads.Tests.Checkpoints;

/// <summary>Hand-built safetensors bytes, for inputs the writer refuses to produce.</summary>
internal static class RawSafetensors
{
    /// <summary>8-byte little-endian length of <paramref name="header"/> (UTF-8), the header, then <paramref name="data"/>.</summary>
    public static byte[] Build(string header, byte[] data) => Build(Encoding.UTF8.GetBytes(header), data);

    public static byte[] Build(byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    /// <summary>Writes <paramref name="bytes"/> as <c>model.safetensors</c> in <paramref name="dir"/> and returns its path.</summary>
    public static string WriteModel(TempDir dir, byte[] bytes)
    {
        var path = dir.File("model.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        }

        return bytes;
    }

    public static TensorToWrite F32(string name, int[] shape, params float[] values) => new(name, DType.F32, shape, Floats(values));

    /// <summary>Asserts that opening <paramref name="dir"/> fails with a one-line message naming <paramref name="path"/> and every fragment.</summary>
    public static RadladsException AssertOpenFails(TempDir dir, string path, params string[] fragments)
    {
        var error = Assert.Throws<RadladsException>(() => Checkpoint.Open(dir.Path).Dispose());
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        foreach (var fragment in fragments)
        {
            Assert.Contains(fragment, error.Message, StringComparison.Ordinal);
        }

        Assert.DoesNotContain('\n', error.Message);
        return error;
    }
}
