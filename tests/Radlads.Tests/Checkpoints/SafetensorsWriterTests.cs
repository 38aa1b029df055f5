using System.Buffers.Binary;
using System.Text;
using Radlads.Checkpoints;

namespace Radlads.Tests.Checkpoints;

public class SafetensorsWriterTests
{
    private static (string Header, byte[] Data) Split(byte[] file)
    {
        var n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return (Encoding.UTF8.GetString(file, 8, n), file[(8 + n)..]);
    }

    [Fact]
    public void Writes_the_same_bytes_as_the_hugging_face_library()
    {
        // The layout huggingface/safetensors produces for {"attn0": f32 [1,1,2,3] = 0..5}: a 65-byte JSON
        // padded with 7 spaces to 72, then the 24 data bytes.
        using var dir = new TempDir();
        var path = dir.File("a.safetensors");
        SafetensorsWriter.Write(path, [RawSafetensors.F32("attn0", [1, 1, 2, 3], 0, 1, 2, 3, 4, 5)]);

        var expected = RawSafetensors.Build(
            """{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       """,
            RawSafetensors.Floats(0, 1, 2, 3, 4, 5));
        var actual = File.ReadAllBytes(path);
        Assert.Equal(72UL, BinaryPrimitives.ReadUInt64LittleEndian(actual));
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Writes_empty_files_and_metadata_like_the_hugging_face_library()
    {
        using var dir = new TempDir();
        var empty = dir.File("empty.safetensors");
        SafetensorsWriter.Write(empty, []);
        Assert.Equal([8, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}', 32, 32, 32, 32, 32, 32], File.ReadAllBytes(empty));

        var withMetadata = dir.File("meta.safetensors");
        SafetensorsWriter.Write(withMetadata, [], new Dictionary<string, string> { ["framework"] = "pt" });
        Assert.Equal(
            RawSafetensors.Build("""{"__metadata__":{"framework":"pt"}}     """, []),
            File.ReadAllBytes(withMetadata));
    }

    [Fact]
    public void Orders_tensors_by_descending_dtype_then_name_with_contiguous_offsets()
    {
        using var dir = new TempDir();
        var path = dir.File("order.safetensors");
        SafetensorsWriter.Write(path,
        [
            new TensorToWrite("a", DType.F16, [1], [1, 2]),
            new TensorToWrite("z", DType.F32, [1], [3, 4, 5, 6]),
            new TensorToWrite("b", DType.BF16, [2], [7, 8, 9, 10]),
            new TensorToWrite("c", DType.F32, [], [11, 12, 13, 14]),
        ], new Dictionary<string, string> { ["z"] = "1", ["a"] = "2" });

        var (header, data) = Split(File.ReadAllBytes(path));
        Assert.Equal(
            "{\"__metadata__\":{\"a\":\"2\",\"z\":\"1\"},"
            + "\"c\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
            + "\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
            + "\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[12,14]}}",
            header.TrimEnd(' '));
        Assert.Equal(0, header.Length % 8);
        Assert.Equal([11, 12, 13, 14, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2], data);
    }

    [Fact]
    public void Escapes_names_as_serde_json_does()
    {
        using var dir = new TempDir();
        var path = dir.File("names.safetensors");
        SafetensorsWriter.Write(path, [RawSafetensors.F32("q\"b\\n\n\u0001\u007fé<", [], 1)]);
        var (header, _) = Split(File.ReadAllBytes(path));
        Assert.StartsWith("{\"q\\\"b\\\\n\\n\\u0001\u007fé<\":", header, StringComparison.Ordinal);

        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal([1f], checkpoint.ReadFloat32("q\"b\\n\n\u0001\u007fé<"));
    }

    [Fact]
    public void Replaces_an_existing_file_and_leaves_no_temporary_file()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        File.WriteAllText(path, "old contents");
        SafetensorsWriter.Write(path, [RawSafetensors.F32("w", [2], 1, 2)]);

        Assert.Equal([path], Directory.GetFiles(dir.Path));
        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal([1f, 2f], checkpoint.ReadFloat32("w", 2));
    }

    [Fact]
    public void Metadata_round_trips()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"quoted\"" };
        SafetensorsWriter.Write(path, [], metadata);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(metadata, file.Metadata);
        Assert.Empty(file.Tensors);
    }

    [Theory]
    [InlineData(new[] { 2, 2 }, 12)]
    [InlineData(new[] { 3 }, 16)]
    [InlineData(new int[0], 0)]
    public void Rejects_data_whose_length_does_not_match_the_shape(int[] shape, int bytes)
    {
        using var dir = new TempDir();
        var path = dir.File("bad.safetensors");
        var error = Assert.Throws<ArgumentException>(
            () => SafetensorsWriter.Write(path, [new TensorToWrite("w", DType.F32, shape, new byte[bytes])]));
        Assert.Contains("'w'", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Rejects_negative_dims_duplicate_names_and_the_reserved_name()
    {
        using var dir = new TempDir();
        var path = dir.File("bad.safetensors");
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new TensorToWrite("w", DType.F32, [-1], [])]));
        Assert.Throws<ArgumentException>(
            () => SafetensorsWriter.Write(path, [RawSafetensors.F32("w", [], 1), RawSafetensors.F32("w", [], 2)]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [RawSafetensors.F32("__metadata__", [], 1)]));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}

public class SafetensorsStreamingWriterTests
{
    [Fact]
    public void Streamed_tensors_give_the_same_file_as_tensors_in_memory()
    {
        using var dir = new TempDir();
        var tensors = new[]
        {
            new TensorToWrite("b", DType.BF16, [2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
            new TensorToWrite("a", DType.F32, [2], [1, 2, 3, 4, 5, 6, 7, 8]),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        SafetensorsWriter.Write(dir.File("memory.safetensors"), tensors, metadata);
        var order = new List<string>();
        var progress = new List<int>();
        SafetensorsWriter.Write(
            dir.File("streamed.safetensors"),
            tensors.Select(t => new TensorSource(t.Name, t.DType, t.Shape, stream =>
            {
                order.Add(t.Name);
                foreach (var b in t.Data)
                {
                    stream.WriteByte(b); // any number of writes
                }
            })),
            metadata,
            progress.Add);
        Assert.Equal(File.ReadAllBytes(dir.File("memory.safetensors")), File.ReadAllBytes(dir.File("streamed.safetensors")));
        Assert.Equal(["a", "b"], order); // asked for in file order: F32 before BF16
        Assert.Equal([1, 2], progress);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(9)]
    public void A_callback_that_writes_the_wrong_number_of_bytes_leaves_no_file(int bytes)
    {
        using var dir = new TempDir();
        var path = dir.File("bad.safetensors");
        File.WriteAllBytes(path, [42]);
        var error = Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(
            path, [new TensorSource("w", DType.F32, [2], stream => stream.Write(new byte[bytes]))], null));
        Assert.Contains("'w'", error.Message, StringComparison.Ordinal);
        Assert.Equal([42], File.ReadAllBytes(path)); // the old file is untouched
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void A_callback_that_throws_leaves_no_temporary_file()
    {
        using var dir = new TempDir();
        Assert.Throws<IOException>(() => SafetensorsWriter.Write(
            dir.File("x.safetensors"), [new TensorSource("w", DType.F32, [1], _ => throw new IOException("disk full"))], null));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
