using Radlads.Checkpoints;

namespace Radlads.Tests.Checkpoints;

public class CheckpointLookupTests
{
    private const string QProj = "model.layers.0.self_attn.q_proj.weight";

    [Fact]
    public void Wrong_shape_names_tensor_file_and_both_shapes()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        SafetensorsWriter.Write(path, [new TensorToWrite(QProj, DType.BF16, [64, 32], new byte[64 * 32 * 2])]);

        using var checkpoint = Checkpoint.Open(dir.Path);
        var error = Assert.Throws<RadladsException>(() => checkpoint.Get(QProj, 64, 64));
        Assert.Equal($"{QProj} in {path} has shape [64, 32], expected [64, 64]", error.Message);
        var read = Assert.Throws<RadladsException>(() => checkpoint.ReadFloat32(QProj, 32, 64));
        Assert.Equal($"{QProj} in {path} has shape [64, 32], expected [32, 64]", read.Message);
    }

    [Fact]
    public void Missing_tensor_names_the_folder_the_count_and_close_names()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.File("model.safetensors"),
        [
            RawSafetensors.F32(QProj, [], 1),
            RawSafetensors.F32("model.layers.0.self_attn.k_proj.weight", [], 1),
            RawSafetensors.F32("lm_head.weight", [], 1),
            RawSafetensors.F32("model.norm.weight", [], 1),
        ]);

        using var checkpoint = Checkpoint.Open(dir.Path);
        var error = Assert.Throws<RadladsException>(() => checkpoint.Get("model.layers.0.self_attn.v_proj.weight"));
        Assert.StartsWith(
            $"tensor 'model.layers.0.self_attn.v_proj.weight' not found in checkpoint {dir.Path} (4 tensors; closest: ",
            error.Message, StringComparison.Ordinal);
        Assert.Contains($"'{QProj}'", error.Message, StringComparison.Ordinal);
        Assert.Throws<RadladsException>(() => checkpoint.ReadFloat32("nope"));
        Assert.Throws<RadladsException>(() => checkpoint.ReadVector("nope", 3));
    }

    [Fact]
    public void Missing_tensor_in_an_empty_checkpoint()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.File("model.safetensors"), []);
        using var checkpoint = Checkpoint.Open(dir.Path);
        var error = Assert.Throws<RadladsException>(() => checkpoint.Get("w"));
        Assert.Equal($"tensor 'w' not found in checkpoint {dir.Path} (0 tensors)", error.Message);
    }

    [Theory]
    [InlineData("I64", 8)]
    [InlineData("I32", 4)]
    [InlineData("U8", 1)]
    [InlineData("BOOL", 1)]
    [InlineData("F64", 8)]
    [InlineData("F8_E4M3", 1)]
    [InlineData("F8_E5M2", 1)]
    [InlineData("U16", 2)]
    [InlineData("C64", 8)]
    public void Other_dtypes_open_but_get_reports_them_unsupported(string dtype, int size)
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            $$$"""{"ids":{"dtype":"{{{dtype}}}","shape":[3],"data_offsets":[0,{{{3 * size}}}]},"w":{"dtype":"F32","shape":[],"data_offsets":[{{{3 * size}}},{{{3 * size + 4}}}]}}""",
            new byte[3 * size + 4]));

        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.True(checkpoint.Contains("ids"));
        Assert.Equal([0f], checkpoint.ReadFloat32("w"));
        var error = Assert.Throws<RadladsException>(() => checkpoint.Get("ids"));
        Assert.Equal(
            $"tensor 'ids' in {path} has dtype {dtype}, which is not supported (supported: F32, F16, BF16)", error.Message);
        Assert.Throws<RadladsException>(() => checkpoint.Get("ids", 3));
        Assert.Throws<RadladsException>(() => checkpoint.ReadVector("ids", 3));
    }

    [Fact]
    public void Sub_byte_dtypes_are_validated_in_bits()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"packed":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]}}""", new byte[3]));
        using (var checkpoint = Checkpoint.Open(dir.Path))
        {
            Assert.Contains("dtype F4", Assert.Throws<RadladsException>(() => checkpoint.Get("packed")).Message, StringComparison.Ordinal);
        }

        RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"packed":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}""", new byte[2]));
        RawSafetensors.AssertOpenFails(dir, path, "'packed'", "not a whole number of bytes");
    }
}
