using System.Runtime.InteropServices;
using System.Text.Json;
using Radlads.Checkpoints;
using Radlads.Cpu;
using Radlads.Models;
using Radlads.Tests.Ops;

namespace Radlads.Tests.Models;

/// <summary>The same model stored as f32, f16, or in shards gives the same logits as the bf16 single file.</summary>
public sealed class CheckpointFormatTests
{
    private static float[] Logits(string directory, int[] tokens)
    {
        using var model = CausalLM.Load(directory, new CpuBackend());
        using var state = model.CreateState();
        return model.Forward(state, tokens, allLogits: true);
    }

    private static float[] Widen(TensorToWrite t)
    {
        var bits = MemoryMarshal.Cast<byte, ushort>(t.Data);
        var values = new float[bits.Length];
        Bf16.ToSingle(bits, values);
        return values;
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    public void Float32AndFloat16WeightsGiveTheSameLogits(DType dtype)
    {
        var tokens = GoldenLogitsTests.Tokens("rwkv7");
        var expected = Logits(Fixtures.Directory("rwkv7"), tokens);
        using var copy = new FixtureCopy("rwkv7");
        copy.EditTensors(t =>
        {
            var values = Widen(t);
            byte[] data = dtype == DType.F32
                ? MemoryMarshal.AsBytes(values.AsSpan()).ToArray()
                : MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray();
            return t with { DType = dtype, Data = data };
        });
        var actual = Logits(copy.Directory, tokens);
        double error = Compare.MaxErrorRelativeToMax(expected.Select(v => (double)v).ToArray(), actual);
        // f32 holds every bf16 value exactly (measured error 0). f16 does too, except weights below its normal
        // range (|w| < 6.1e-5), which lose digits as subnormals (measured 3e-7 × max |logit|).
        Assert.True(error <= Tolerances.ConsistencyRelativeToMax, $"{dtype}: {error:G3}");
    }

    [Fact]
    public void ShardedCheckpointGivesTheSameLogits()
    {
        var tokens = GoldenLogitsTests.Tokens("qwen2");
        var expected = Logits(Fixtures.Directory("qwen2"), tokens);
        using var copy = new FixtureCopy("qwen2");
        var all = new List<TensorToWrite>();
        copy.EditTensors(t =>
        {
            all.Add(t);
            return t;
        });
        File.Delete(copy.WeightsPath);
        var shards = new[] { "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" };
        var map = new Dictionary<string, string>();
        for (int s = 0; s < 2; s++)
        {
            var part = all.Where((_, i) => i % 2 == s).ToList();
            SafetensorsWriter.Write(Path.Combine(copy.Directory, shards[s]), part);
            part.ForEach(t => map[t.Name] = shards[s]);
        }

        File.WriteAllText(Path.Combine(copy.Directory, "model.safetensors.index.json"),
            JsonSerializer.Serialize(new Dictionary<string, object> { ["metadata"] = new Dictionary<string, long>(), ["weight_map"] = map }));
        Assert.Equal(expected, Logits(copy.Directory, tokens));
    }
}
