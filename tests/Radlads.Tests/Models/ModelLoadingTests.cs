using Radlads.Checkpoints;
using Radlads.Cpu;
using Radlads.Models;

namespace Radlads.Tests.Models;

/// <summary>Variant detection from config and tensors (spec §6.4), and clear errors for bad model folders.</summary>
public sealed class ModelLoadingTests
{
    private static CausalLM Load(string directory) => CausalLM.Load(directory, new CpuBackend());

    private static RadladsException LoadFails(string directory) => Assert.Throws<RadladsException>(() => Load(directory).Dispose());

    [Fact]
    public void Rwkv6RanksComeFromTensorShapesNotFromConfig()
    {
        // config.json says lora_rank_tokenshift 32 and lora_rank_decay 64; the tensors say 8 and 12.
        using var model = Load(Fixtures.Directory("rwkv6"));
        Assert.All(model.LayerSummaries, s => Assert.Equal("RAD-RWKV6 (token shift on, Rm=8, Rd=12, gate FullRank, no norm)", s));
        Assert.False(model.TiedEmbeddings);
    }

    [Fact]
    public void Rwkv6WithoutTokenShiftWithLowRankGateAndGroupNorm()
    {
        using var model = Load(Fixtures.Directory("rwkv6-rope"));
        Assert.True(model.Config.UseRope);
        Assert.All(model.LayerSummaries, s => Assert.Equal("RAD-RWKV6 (token shift off, Rd=12, gate LowRank, GroupNorm)", s));
        // The ddlerp tensors are present but unused when use_tokenshift is false.
        Assert.Contains("model.layers.0.self_attn.time_maa_w1", model.UnusedTensors);
    }

    [Fact]
    public void Rwkv7BalancedIsVariantBAndIgnoresRkAndLayerZeroValueResidual()
    {
        using var model = Load(Fixtures.Directory("rwkv7"));
        Assert.StartsWith("RAD-RWKV7 variant B (balanced keys, ×N^-1/2) (Rw=8, Ra=12, Rv=unused in layer 0", model.LayerSummaries[0], StringComparison.Ordinal);
        Assert.Equal("RAD-RWKV7 variant B (balanced keys, ×N^-1/2) (Rw=8, Ra=12, Rv=4, gate LowRank Rg=20)", model.LayerSummaries[1]);
        foreach (var unused in new[] { "model.layers.0.self_attn.v0", "model.layers.0.self_attn.v1", "model.layers.0.self_attn.v2", "model.layers.2.self_attn.r_k", "model.layers.1.self_attn.k_k" })
        {
            Assert.Contains(unused, model.UnusedTensors);
        }

        Assert.DoesNotContain("model.layers.1.self_attn.v1", model.UnusedTensors);
    }

    [Fact]
    public void Rwkv7GroupNormIsVariantGWithTiedEmbeddings()
    {
        using var model = Load(Fixtures.Directory("rwkv7-groupnorm"));
        Assert.StartsWith("RAD-RWKV7 variant G (stock keys, GroupNorm)", model.LayerSummaries[1], StringComparison.Ordinal);
        Assert.True(model.TiedEmbeddings);
        Assert.DoesNotContain("model.layers.1.self_attn.k_k", model.UnusedTensors);
    }

    [Fact]
    public void QwenTiedHeadUsesTheEmbedding()
    {
        using var model = Load(Fixtures.Directory("qwen2-tied"));
        Assert.True(model.TiedEmbeddings);
        Assert.Empty(model.UnusedTensors);
        Assert.Equal((0L, 2L * 2 * 16 * sizeof(float) * 3), model.MemoryCost);
    }

    [Fact]
    public void TrailingLayersWithoutRwkvTensorsAreSoftmaxAttention()
    {
        using var copy = new FixtureCopy("rwkv7");
        copy.EditConfig(c => c.Replace("\"num_attention_layers\": 0", "\"num_attention_layers\": 1", StringComparison.Ordinal));
        using var model = Load(copy.Directory);
        Assert.Equal("softmax attention (KV cache)", model.LayerSummaries[2]);
        Assert.StartsWith("RAD-RWKV7", model.LayerSummaries[1], StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownModelTypeIsNamed()
    {
        using var copy = new FixtureCopy("qwen2");
        copy.EditConfig(c => c.Replace("\"model_type\": \"qwen2\"", "\"model_type\": \"llama\"", StringComparison.Ordinal));
        var e = LoadFails(copy.Directory);
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("'llama'", e.Message, StringComparison.Ordinal);
        Assert.Contains("rwkv7qwen2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GarbageConfigIsNamed()
    {
        using var copy = new FixtureCopy("rwkv6");
        copy.EditConfig(_ => "{ not json");
        var e = LoadFails(copy.Directory);
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"hidden_size\": 64,", "", "'hidden_size' is missing")]
    [InlineData("\"num_attention_heads\": 4,", "\"num_attention_heads\": \"four\",", "'num_attention_heads' must be an integer")]
    [InlineData("\"num_key_value_heads\": 2,", "\"num_key_value_heads\": 3,", "not a multiple of num_key_value_heads 3")]
    [InlineData("\"balance_state\": true,", "\"balance_state\": \"yes\",", "'balance_state' must be true or false")]
    public void BadConfigFieldsAreNamed(string find, string replace, string expected)
    {
        using var copy = new FixtureCopy("rwkv7");
        copy.EditConfig(c =>
        {
            Assert.Contains(find, c, StringComparison.Ordinal);
            return c.Replace(find, replace, StringComparison.Ordinal);
        });
        var e = LoadFails(copy.Directory);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        using var copy = new FixtureCopy("rwkv7");
        copy.EditTensors(t => t.Name == "model.layers.1.self_attn.a1" ? null : t);
        var e = LoadFails(copy.Directory);
        Assert.Contains("'model.layers.1.self_attn.a1'", e.Message, StringComparison.Ordinal);
        Assert.Contains(copy.Directory, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongShapeIsNamedWithBothShapes()
    {
        using var copy = new FixtureCopy("qwen2");
        copy.EditTensors(t => t.Name == "model.layers.2.self_attn.q_proj.weight" ? t with { Shape = [32, 128] } : t);
        var e = LoadFails(copy.Directory);
        Assert.Contains("model.layers.2.self_attn.q_proj.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("[32, 128]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[64, 64]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TokenShiftRankThatIsNotAMultipleOfFiveIsNamed()
    {
        using var copy = new FixtureCopy("rwkv6");
        copy.EditTensors(t => t.Name == "model.layers.0.self_attn.time_maa_w1" ? t with { Shape = [64, 39], Data = t.Data[..(64 * 39 * 2)] } : t);
        var e = LoadFails(copy.Directory);
        Assert.Contains("time_maa_w1", e.Message, StringComparison.Ordinal);
        Assert.Contains("5 ×", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedWeightsAreNamed()
    {
        using var copy = new FixtureCopy("rwkv6");
        var bytes = File.ReadAllBytes(copy.WeightsPath);
        File.WriteAllBytes(copy.WeightsPath, bytes[..(bytes.Length - 100)]);
        var e = LoadFails(copy.Directory);
        Assert.Contains("model.safetensors", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingFolderAndMissingConfigAreNamed()
    {
        Assert.Contains("does not exist", LoadFails("/nonexistent/radlads-model").Message, StringComparison.Ordinal);
        using var copy = new FixtureCopy("qwen2");
        File.Delete(copy.ConfigPath);
        Assert.Contains("config.json: not found", LoadFails(copy.Directory).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NonFiniteWeightsStopTheRunWithAClearError()
    {
        using var copy = new FixtureCopy("rwkv7");
        copy.EditTensors(t =>
        {
            if (t.Name != "model.norm.weight")
            {
                return t;
            }

            var data = (byte[])t.Data.Clone();
            BitConverter.GetBytes(Bf16.FromSingle(float.NaN)).CopyTo(data, 0);
            return t with { Data = data };
        });
        using var model = Load(copy.Directory);
        using var state = model.CreateState();
        var e = Assert.Throws<RadladsException>(() => model.Forward(state, [1, 2, 3]));
        Assert.Contains("non-finite", e.Message, StringComparison.Ordinal);
    }
}
