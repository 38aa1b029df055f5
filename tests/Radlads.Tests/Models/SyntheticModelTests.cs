using Radlads.Checkpoints;
using Radlads.Cpu;
using Radlads.Models;

namespace Radlads.Tests.Models;

/// <summary>The random-weight models of the decode benchmark, and the in-memory checkpoint they are built on.</summary>
public sealed class SyntheticModelTests
{
    [Theory]
    [InlineData(3584, 96, 64, 416)]
    [InlineData(5120, 128, 96, 544)]
    [InlineData(8192, 160, 128, 800)]
    public void LoraRanksFollowTheReferenceRule(int hidden, int decay, int value, int gate)
    {
        // The table of spec §4.1.
        Assert.Equal(decay, SyntheticModel.LoraRank(hidden, 0.5, 1.8));
        Assert.Equal(value, SyntheticModel.LoraRank(hidden, 0.5, 1.3));
        Assert.Equal(gate, SyntheticModel.LoraRank(hidden, 0.8, 0.6));
    }

    [Fact]
    public void DecodeBytesMatchTheRooflineTable()
    {
        // kernels-and-performance.md §0: 0.988 GB/token at 0.5B, 3.087 at 1.5B, 14.14 at 7B (bf16 weights, LM head included).
        Assert.Equal(0.988, SyntheticModel.DecodeBytes(SyntheticModel.Config("0.5b", Architecture.Qwen2), 0).Weights / 1e9, 2);
        Assert.Equal(3.09, SyntheticModel.DecodeBytes(SyntheticModel.Config("1.5b", Architecture.Qwen2), 0).Weights / 1e9, 2);
        Assert.Equal(14.1, SyntheticModel.DecodeBytes(SyntheticModel.Config("7b", Architecture.Qwen2), 0).Weights / 1e9, 1);
        // 7B RAD-RWKV7: 28 layers × 28 heads × 128² × 4 bytes, read and written.
        var (_, state) = SyntheticModel.DecodeBytes(SyntheticModel.Config("7b", Architecture.Rwkv7Qwen2), 100_000);
        Assert.Equal(2L * 28 * 28 * 128 * 128 * 4, state);
    }

    [Fact]
    public void PrefillFlopsCountEveryLayerMatrixOnceAndTheMixingTerm()
    {
        // Qwen2.5-0.5B: per layer q and o 896², k and v 128·896, gate/up/down 896·4864; 24 layers; one head row.
        var qwen = SyntheticModel.Config("0.5b", Architecture.Qwen2);
        double perLayer = (2.0 * 896 * 896) + (2.0 * 128 * 896) + (3.0 * 896 * 4864);
        var (gemm, attention) = SyntheticModel.PrefillFlops(qwen, 100);
        Assert.Equal((2 * 100 * 24 * perLayer) + (2.0 * 896 * qwen.VocabSize), gemm);
        Assert.Equal(24 * 2.0 * 14 * 64 * 100 * 101, attention);
        // RAD-RWKV7 adds the LoRA factors (C·R + R·A for w, a, g and, except in layer 0, v) and 9·H·N² per token.
        var rwkv = SyntheticModel.Config("0.5b", Architecture.Rwkv7Qwen2);
        int rw = SyntheticModel.LoraRank(896, 0.5, 1.8), rv = SyntheticModel.LoraRank(896, 0.5, 1.3), rg = SyntheticModel.LoraRank(896, 0.8, 0.6);
        double lora = (24 * 2.0 * 896 * (rw + rw + rg)) + (23 * 2.0 * 896 * rv);
        var (rwkvGemm, scan) = SyntheticModel.PrefillFlops(rwkv, 100);
        Assert.Equal((2 * 100 * ((24 * perLayer) + lora)) + (2.0 * 896 * rwkv.VocabSize), rwkvGemm);
        Assert.Equal(24 * 9.0 * 14 * 64 * 64 * 100, scan);
    }

    [Fact]
    public void ShapesIncludeThe32BAndTakeTheQwenPrefix()
    {
        Assert.Equal("7b", SyntheticModel.Normalize("qwen2.5-7b"));
        Assert.Equal("32b", SyntheticModel.Normalize("Qwen2.5-32B"));
        Assert.Equal("0.5b", SyntheticModel.Normalize("0.5b"));
        var e = Assert.Throws<RadladsException>(() => SyntheticModel.Normalize("qwen2.5-3b"));
        Assert.Contains("qwen2.5-32b", e.Message, StringComparison.Ordinal);
        // Spec §1: 32B is C 5120, 40 heads, 8 KV heads, 64 layers, F 27648, untied: 32.76 B parameters, 65.5 GB of bf16.
        var config = SyntheticModel.Config("qwen2.5-32b", Architecture.Qwen2);
        Assert.Equal((5120, 40, 8, 64, 27648, false), (config.HiddenSize, config.NumAttentionHeads, config.NumKeyValueHeads, config.NumHiddenLayers, config.IntermediateSize, config.TieWordEmbeddings));
        Assert.Equal(65.5, SyntheticModel.WeightBytes(config) / 1e9, 1);
        // The KV cache the runtime holds: 64 layers × K and V × 8 × 128 × fp32 per token.
        Assert.Equal(64L * 2 * 1000 * 8 * 128 * 4, SyntheticModel.StateBytes(config, 1000));
        var v7 = SyntheticModel.Config("32b", Architecture.Rwkv7Qwen2);
        Assert.Equal(64L * 40 * 128 * 128 * 4, SyntheticModel.StateBytes(v7, 1_000_000));
        // RAD-RWKV6 adds the token-shift vector of each layer to its state.
        var v6 = SyntheticModel.Config("32b", Architecture.Rwkv6Qwen2);
        Assert.Equal(64L * ((40 * 128 * 128) + 5120) * 4, SyntheticModel.StateBytes(v6, 1));
        Assert.True(v6.UseTokenShift && !v6.UseRope && v6.GateRankType == 1);
    }

    [Theory]
    [InlineData(Architecture.Rwkv7Qwen2)]
    [InlineData(Architecture.Rwkv6Qwen2)]
    [InlineData(Architecture.Qwen2)]
    public void ATinySyntheticModelDecodesFiniteLogitsAndFastForwards(Architecture architecture)
    {
        var config = SyntheticModel.Config("tiny", architecture);
        using var model = SyntheticModel.Create(config, new CpuBackend(), seed: 3);
        Assert.Equal(config.VocabSize, model.Config.VocabSize);
        Assert.Equal(architecture == Architecture.Rwkv7Qwen2 ? ["model.layers.0.self_attn.v0", "model.layers.0.self_attn.v1", "model.layers.0.self_attn.v2"] : [],
            model.UnusedTensors);
        Assert.Equal(architecture, model.Config.Architecture);
        if (architecture == Architecture.Rwkv6Qwen2)
        {
            Assert.Contains("RAD-RWKV6", string.Join(' ', model.LayerSummaries), StringComparison.Ordinal);
        }
        using var state = model.CreateState();
        Assert.All(model.Forward(state, [1, 2, 3]), v => Assert.True(float.IsFinite(v)));
        state.FastForward(300, 4, new Random(1));
        Assert.Equal(300, state.Position);
        Assert.All(model.Forward(state, [7]), v => Assert.True(float.IsFinite(v)));
        Assert.Equal(301, state.Position);
    }

    [Fact]
    public unsafe void AnInMemoryCheckpointServesItsTensorsAndRejectsBadOnes()
    {
        var values = new ushort[] { Bf16.FromSingle(1.5f), Bf16.FromSingle(-2f), Bf16.FromSingle(0.25f) };
        fixed (ushort* p = values)
        {
            var data = new TensorData("v", DType.BF16, [3], (byte*)p, 6);
            using var checkpoint = Checkpoint.FromMemory("memory", [data], null);
            Assert.Equal([1.5f, -2f, 0.25f], checkpoint.ReadVector("v", 3));
            var e = Assert.Throws<RadladsException>(() => checkpoint.Get("v", 4));
            Assert.Contains("in memory has shape [3], expected [4]", e.Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentException>(() => Checkpoint.FromMemory("memory", [data, data], null));
            var wrongSize = new TensorData("w", DType.BF16, [2], (byte*)p, 6);
            Assert.Throws<ArgumentException>(() => Checkpoint.FromMemory("memory", [wrongSize], null));

            // The CPU backend views weights in place: a shape claiming more bytes than there are is refused, not read.
            using var cpu = new Radlads.Cpu.CpuBackend();
            var tooLong = new TensorData("w", DType.BF16, [2, 2], (byte*)p, 6);
            var refused = Assert.Throws<ArgumentException>(() => cpu.LoadWeight(tooLong));
            Assert.Contains("shape [2, 2] of BF16 does not match its 6 bytes", refused.Message, StringComparison.Ordinal);
            using var fits = cpu.LoadWeight(data);
            var read = new float[3];
            cpu.Download(fits, read);
            Assert.Equal([1.5f, -2f, 0.25f], read);
        }
    }
}
