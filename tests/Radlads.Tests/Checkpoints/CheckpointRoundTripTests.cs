using System.Runtime.InteropServices;
using Radlads.Checkpoints;

namespace Radlads.Tests.Checkpoints;

public class CheckpointRoundTripTests
{
    private static unsafe byte[] Bytes(TensorData tensor) => new ReadOnlySpan<byte>(tensor.Pointer, (int)tensor.ByteLength).ToArray();

    [Fact]
    public void F32_round_trips_through_the_mapping()
    {
        using var dir = new TempDir();
        float[] values = [1.5f, -2f, 3.25f, 0f, float.Epsilon, -7e30f];
        var tensor = RawSafetensors.F32("model.embed_tokens.weight", [2, 3], values);
        SafetensorsWriter.Write(dir.File("model.safetensors"), [tensor]);

        using var checkpoint = Checkpoint.Open(dir.Path);
        var data = checkpoint.Get("model.embed_tokens.weight", 2, 3);
        Assert.Equal(DType.F32, data.DType);
        Assert.Equal([2, 3], data.Shape);
        Assert.Equal(6, data.ElementCount);
        Assert.Equal(24, data.ByteLength);
        Assert.Equal("[2, 3]", data.ShapeText);
        Assert.Equal(tensor.Data, Bytes(data));
        Assert.Equal(values, checkpoint.ReadFloat32("model.embed_tokens.weight", 2, 3));
    }

    [Fact]
    public void F16_converts_to_fp32()
    {
        using var dir = new TempDir();
        Half[] values = [(Half)1, (Half)(-0.5f), (Half)65504, Half.Epsilon, Half.NegativeInfinity, (Half)0.1f, (Half)3, (Half)(-7)];
        var bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        SafetensorsWriter.Write(dir.File("model.safetensors"), [new TensorToWrite("h", DType.F16, [2, 4], bytes)]);

        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal(DType.F16, checkpoint.Get("h").DType);
        Assert.Equal(bytes, Bytes(checkpoint.Get("h")));
        Assert.Equal(values.Select(v => (float)v), checkpoint.ReadFloat32("h", 2, 4));
    }

    [Fact]
    public void BF16_converts_to_fp32()
    {
        using var dir = new TempDir();
        var values = Enumerable.Range(0, 37).Select(i => Bf16.FromSingle((i - 18) * 0.37f)).ToArray();
        var bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        SafetensorsWriter.Write(dir.File("model.safetensors"), [new TensorToWrite("b", DType.BF16, [37], bytes)]);

        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal(DType.BF16, checkpoint.Get("b", 37).DType);
        Assert.Equal(values.Select(Bf16.ToSingle), checkpoint.ReadFloat32("b", 37));
        Assert.Equal(values.Select(Bf16.ToSingle), checkpoint.ReadVector("b", 37));
    }

    [Fact]
    public void Scalars_and_empty_tensors_round_trip()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.File("model.safetensors"),
        [
            RawSafetensors.F32("scalar", [], 42f),
            new TensorToWrite("empty", DType.BF16, [0], []),
            new TensorToWrite("empty2d", DType.F16, [3, 0], []),
            RawSafetensors.F32("after", [1], 7f),
        ]);

        using var checkpoint = Checkpoint.Open(dir.Path);
        var scalar = checkpoint.Get("scalar");
        Assert.Empty(scalar.Shape);
        Assert.Equal(1, scalar.ElementCount);
        Assert.Equal([42f], checkpoint.ReadFloat32("scalar"));
        Assert.Equal([42f], checkpoint.ReadVector("scalar", 1));

        Assert.Equal(0, checkpoint.Get("empty", 0).ByteLength);
        Assert.Empty(checkpoint.ReadFloat32("empty", 0));
        Assert.Empty(checkpoint.ReadVector("empty", 0));
        Assert.Empty(checkpoint.ReadFloat32("empty2d", 3, 0));
        Assert.Equal([7f], checkpoint.ReadFloat32("after", 1));
    }

    [Fact]
    public void ReadVector_accepts_unit_dims_and_rejects_matrices()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        SafetensorsWriter.Write(path,
        [
            RawSafetensors.F32("row", [1, 3], 1, 2, 3),
            RawSafetensors.F32("deep", [1, 1, 3], 4, 5, 6),
            RawSafetensors.F32("column", [3, 1], 7, 8, 9),
            RawSafetensors.F32("matrix", [3, 2], 1, 2, 3, 4, 5, 6),
        ]);

        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal([1f, 2f, 3f], checkpoint.ReadVector("row", 3));
        Assert.Equal([4f, 5f, 6f], checkpoint.ReadVector("deep", 3));
        Assert.Equal([7f, 8f, 9f], checkpoint.ReadVector("column", 3));

        var matrix = Assert.Throws<RadladsException>(() => checkpoint.ReadVector("matrix", 6));
        Assert.Equal($"matrix in {path} has shape [3, 2], expected a vector of 6 elements ([6], [1, 6], ...)", matrix.Message);
        var length = Assert.Throws<RadladsException>(() => checkpoint.ReadVector("row", 4));
        Assert.Contains("[1, 3]", length.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_contains_directory_and_dispose()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.File("model.safetensors"), [RawSafetensors.F32("b", [], 1), RawSafetensors.F32("a", [], 2)]);

        var checkpoint = Checkpoint.Open(dir.Path + Path.DirectorySeparatorChar);
        Assert.Equal(dir.Path, checkpoint.Directory);
        Assert.Equal(["a", "b"], checkpoint.Names);
        Assert.True(checkpoint.Contains("a"));
        Assert.False(checkpoint.Contains("c"));

        checkpoint.Dispose();
        checkpoint.Dispose();
        Assert.Throws<ObjectDisposedException>(() => checkpoint.Get("a"));
    }

    [Fact]
    public void Falls_back_to_the_only_safetensors_file()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.File("weights.safetensors"), [RawSafetensors.F32("w", [2], 1, 2)]);
        File.WriteAllText(dir.File("config.json"), "{}");

        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal([1f, 2f], checkpoint.ReadFloat32("w", 2));
    }

    [Fact]
    public void Prefers_model_safetensors_over_other_files()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.File("model.safetensors"), [RawSafetensors.F32("main", [], 1)]);
        SafetensorsWriter.Write(dir.File("other.safetensors"), [RawSafetensors.F32("other", [], 2)]);

        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal(["main"], checkpoint.Names);
    }
}
