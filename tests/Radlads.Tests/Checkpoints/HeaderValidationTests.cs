using System.Buffers.Binary;
using System.Text;
using Radlads.Checkpoints;

namespace Radlads.Tests.Checkpoints;

/// <summary>One test per malformed file: each must fail at open with a RadladsException naming the file and the culprit.</summary>
public class HeaderValidationTests
{
    private const string TwoTensors =
        """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""";

    [Theory]
    [InlineData(0, "8-byte header length")]
    [InlineData(3, "8-byte header length")]
    [InlineData(7, "8-byte header length")]
    [InlineData(8, "header length")]
    [InlineData(20, "header length")]
    [InlineData(-17, "header length")] // the header's last byte
    [InlineData(-16, "'a'")] // the whole data buffer
    [InlineData(-9, "'a'")] // inside tensor a
    [InlineData(-8, "'b'")] // exactly tensor b
    [InlineData(-1, "'b'")] // last byte of b
    public void Truncated_files_fail_at_open(int cut, string culprit)
    {
        using var dir = new TempDir();
        var full = RawSafetensors.Build(TwoTensors, RawSafetensors.Floats(1, 2, 3, 4));
        var length = cut >= 0 ? cut : full.Length + cut;
        var path = RawSafetensors.WriteModel(dir, full[..length]);
        var error = RawSafetensors.AssertOpenFails(dir, path, culprit);
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_header_reports_the_header_length()
    {
        using var dir = new TempDir();
        var full = RawSafetensors.Build(TwoTensors, RawSafetensors.Floats(1, 2, 3, 4));
        var path = RawSafetensors.WriteModel(dir, full[..50]);
        RawSafetensors.AssertOpenFails(dir, path, $"header length {TwoTensors.Length} bytes runs past the end of the file (50 bytes; truncated?)");
    }

    [Theory]
    [InlineData(100_000_001UL)]
    [InlineData(ulong.MaxValue)]
    public void Header_length_over_the_limit(ulong length)
    {
        using var dir = new TempDir();
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
        var path = RawSafetensors.WriteModel(dir, bytes);
        RawSafetensors.AssertOpenFails(dir, path, $"header length {length} bytes is over the 100000000-byte limit");
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",}}")]
    [InlineData("")]
    [InlineData("        ")]
    [InlineData("{} trailing")]
    [InlineData("{}{}")]
    public void Json_garbage(string header)
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(header, []));
        RawSafetensors.AssertOpenFails(dir, path, "header");
    }

    [Fact]
    public void Header_that_is_not_utf8()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build([(byte)'{', 0xFF, 0xFE, (byte)'}'], []));
        RawSafetensors.AssertOpenFails(dir, path, "header is not valid UTF-8");
    }

    [Theory]
    [InlineData("[]", "header must be a JSON object, found an array")]
    [InlineData("{\"a\":3}", "tensor 'a' must be an object")]
    [InlineData("{\"__metadata__\":{\"k\":1}}", "field '__metadata__' entry 'k' must be a string")]
    [InlineData("{\"__metadata__\":[]}", "field '__metadata__' must be an object")]
    public void Header_of_the_wrong_json_shape(string header, string message)
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(header, []));
        RawSafetensors.AssertOpenFails(dir, path, message);
    }

    [Theory]
    [InlineData("""{"w":{"shape":[1],"data_offsets":[0,4]}}""", "dtype")]
    [InlineData("""{"w":{"dtype":"F32","data_offsets":[0,4]}}""", "shape")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1]}}""", "data_offsets")]
    public void Missing_field(string header, string field)
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(header, new byte[4]));
        RawSafetensors.AssertOpenFails(dir, path, $"tensor 'w' is missing field '{field}'");
    }

    [Fact]
    public void Overlapping_offsets()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""",
            new byte[12]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'b' field 'data_offsets' [4, 12] overlaps tensor 'a' [0, 8]");
    }

    [Fact]
    public void Two_tensors_sharing_bytes()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""",
            new byte[8]));
        RawSafetensors.AssertOpenFails(dir, path, "overlaps tensor 'a'");
    }

    [Fact]
    public void Gap_between_tensors()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""",
            new byte[12]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'b' field 'data_offsets' [8, 12] leaves a gap");
    }

    [Fact]
    public void Bytes_after_the_last_tensor()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", new byte[6]));
        RawSafetensors.AssertOpenFails(dir, path, "data buffer is 6 bytes but the last tensor 'a' ends at 4");
    }

    [Fact]
    public void Begin_after_end()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}""", new byte[8]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'a' field 'data_offsets' is [8, 4]: begin is after end");
    }

    [Fact]
    public void Offsets_beyond_the_data_buffer()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", new byte[8]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'a' field 'data_offsets' [0, 16] runs past the end of the data buffer (8 bytes");
    }

    [Theory]
    [InlineData("F32", "[2,2]", 12, 16)]
    [InlineData("BF16", "[3]", 8, 6)]
    [InlineData("I64", "[2]", 8, 16)]
    [InlineData("U8", "[]", 0, 1)]
    public void Length_does_not_match_shape_and_dtype(string dtype, string shape, int bytes, int expected)
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            $$$"""{"w":{"dtype":"{{{dtype}}}","shape":{{{shape}}},"data_offsets":[0,{{{bytes}}}]}}""", new byte[bytes]));
        RawSafetensors.AssertOpenFails(dir, path, $"tensor 'w' field 'data_offsets' [0, {bytes}] spans {bytes} bytes, expected {expected}");
    }

    [Fact]
    public void Unknown_dtype()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"w":{"dtype":"Q4_K","shape":[1],"data_offsets":[0,1]}}""", new byte[1]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'w' has unknown dtype 'Q4_K'", "BF16");
    }

    [Theory]
    [InlineData("[-1]", "negative number -1")]
    [InlineData("[2.5]", "non-integer 2.5")]
    [InlineData("[\"2\"]", "must be an array of integers")]
    [InlineData("3", "must be an array of integers")]
    [InlineData("[3000000000]", "over the limit")]
    public void Bad_shape(string shape, string message)
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            $$$"""{"w":{"dtype":"F32","shape":{{{shape}}},"data_offsets":[0,4]}}""", new byte[4]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'w' field 'shape'", message);
    }

    [Theory]
    [InlineData("[0]")]
    [InlineData("[0,4,8]")]
    [InlineData("[-4,4]")]
    public void Bad_data_offsets(string offsets)
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            $$$"""{"w":{"dtype":"F32","shape":[1],"data_offsets":{{{offsets}}}}}""", new byte[4]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'w' field 'data_offsets'");
    }

    [Fact]
    public void Shape_whose_size_overflows()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"w":{"dtype":"F64","shape":[2000000000,2000000000,2000000000],"data_offsets":[0,4]}}""", new byte[4]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'w' shape [2000000000, 2000000000, 2000000000] of F64 is too large");
    }

    [Fact]
    public void Duplicate_tensor_keys()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""",
            new byte[8]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'w' appears twice");
    }

    [Fact]
    public void Duplicate_field_inside_a_tensor()
    {
        using var dir = new TempDir();
        var path = RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            """{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}""", new byte[4]));
        RawSafetensors.AssertOpenFails(dir, path, "tensor 'w' has field 'dtype' twice");
    }

    [Fact]
    public void Unknown_fields_and_whitespace_padding_are_accepted()
    {
        using var dir = new TempDir();
        RawSafetensors.WriteModel(dir, RawSafetensors.Build(
            Encoding.UTF8.GetBytes("""{"w":{"extra":{"x":[1,2]},"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":null}   """),
            RawSafetensors.Floats(5)));
        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal([5f], checkpoint.ReadFloat32("w", 1));
    }
}
