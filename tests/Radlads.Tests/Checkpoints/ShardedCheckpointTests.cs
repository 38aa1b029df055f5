using Radlads.Checkpoints;

namespace Radlads.Tests.Checkpoints;

public class ShardedCheckpointTests
{
    private const string Shard1 = "model-00001-of-00002.safetensors";
    private const string Shard2 = "model-00002-of-00002.safetensors";

    private static void WriteShards(TempDir dir)
    {
        SafetensorsWriter.Write(dir.File(Shard1), [RawSafetensors.F32("embed", [2, 2], 1, 2, 3, 4), RawSafetensors.F32("norm", [2], 5, 6)]);
        SafetensorsWriter.Write(dir.File(Shard2), [RawSafetensors.F32("head", [2, 2], 7, 8, 9, 10)]);
    }

    private static string WriteIndex(TempDir dir, string weightMap)
    {
        var path = dir.File(CheckpointIndex.FileName);
        File.WriteAllText(path, $$"""{"metadata":{"total_size":40},"weight_map":{{weightMap}}}""");
        return path;
    }

    [Fact]
    public void Reads_tensors_from_their_shards()
    {
        using var dir = new TempDir();
        WriteShards(dir);
        WriteIndex(dir, $$"""{"embed":"{{Shard1}}","norm":"{{Shard1}}","head":"{{Shard2}}"}""");

        using var checkpoint = Checkpoint.Open(dir.Path);
        Assert.Equal(["embed", "head", "norm"], checkpoint.Names);
        Assert.Equal([1f, 2f, 3f, 4f], checkpoint.ReadFloat32("embed", 2, 2));
        Assert.Equal([7f, 8f, 9f, 10f], checkpoint.ReadFloat32("head", 2, 2));
        Assert.Equal([5f, 6f], checkpoint.ReadVector("norm", 2));
    }

    [Fact]
    public void Missing_shard_names_the_shard_and_the_index()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.File(Shard1), [RawSafetensors.F32("embed", [2, 2], 1, 2, 3, 4)]);
        var index = WriteIndex(dir, $$"""{"embed":"{{Shard1}}","head":"{{Shard2}}"}""");

        var error = Assert.Throws<RadladsException>(() => Checkpoint.Open(dir.Path));
        Assert.Equal($"shard {dir.File(Shard2)} listed in {index} (for tensor 'head' and 0 more) does not exist", error.Message);
    }

    [Fact]
    public void Index_listing_a_tensor_absent_from_its_shard()
    {
        using var dir = new TempDir();
        WriteShards(dir);
        var index = WriteIndex(dir, $$"""{"embed":"{{Shard1}}","head":"{{Shard1}}"}""");

        var error = Assert.Throws<RadladsException>(() => Checkpoint.Open(dir.Path));
        Assert.Equal(
            $"tensor 'head' is listed in {index} for shard {dir.File(Shard1)}, but that shard does not contain it (2 tensors)",
            error.Message);
    }

    [Fact]
    public void A_corrupt_shard_is_named()
    {
        using var dir = new TempDir();
        WriteShards(dir);
        var bytes = File.ReadAllBytes(dir.File(Shard2));
        File.WriteAllBytes(dir.File(Shard2), bytes[..^2]);
        WriteIndex(dir, $$"""{"embed":"{{Shard1}}","head":"{{Shard2}}"}""");

        var error = Assert.Throws<RadladsException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith($"{dir.File(Shard2)}: tensor 'head'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"metadata":{}}""", "missing field 'weight_map'")]
    [InlineData("""{"weight_map":[]}""", "field 'weight_map' must be an object")]
    [InlineData("""{"weight_map":{"a":1}}""", "field 'weight_map' entry for tensor 'a' must be a file name")]
    [InlineData("""{"weight_map":{"a":"../x.safetensors"}}""", "tensor 'a' names shard '../x.safetensors', which is not a file inside")]
    [InlineData("""{"weight_map":{"a":"x","a":"y"}}""", "lists tensor 'a' twice")]
    [InlineData("""{"weight_map":""", "not valid JSON")]
    [InlineData("""[]""", "expected a JSON object")]
    public void Bad_index(string json, string message)
    {
        using var dir = new TempDir();
        var index = dir.File(CheckpointIndex.FileName);
        File.WriteAllText(index, json);

        var error = Assert.Throws<RadladsException>(() => Checkpoint.Open(dir.Path));
        Assert.StartsWith($"{index}: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Folder_without_weights()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), "{}");
        var error = Assert.Throws<RadladsException>(() => Checkpoint.Open(dir.Path));
        Assert.Equal(
            $"checkpoint folder {dir.Path} has no model.safetensors, model.safetensors.index.json or other *.safetensors file",
            error.Message);
    }

    [Fact]
    public void Folder_with_several_unindexed_files()
    {
        using var dir = new TempDir();
        WriteShards(dir);
        var error = Assert.Throws<RadladsException>(() => Checkpoint.Open(dir.Path));
        Assert.Contains(dir.Path, error.Message, StringComparison.Ordinal);
        Assert.Contains($"2 *.safetensors files ({Shard1}, {Shard2})", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_folder()
    {
        using var dir = new TempDir();
        var missing = dir.File("nope");
        var error = Assert.Throws<RadladsException>(() => Checkpoint.Open(missing));
        Assert.Equal($"checkpoint folder {missing} does not exist", error.Message);
    }
}
