using Radlads.Conversion;
using Radlads.Generation;

namespace Radlads.Tests.Convert;

/// <summary>The spec's rank formula and init formulas, including the edge cases the trainer would divide by zero on.</summary>
public sealed class InitRuleTests
{
    [Theory]
    // Spec §4.1 (RAD-RWKV7 Rw = Ra, Rv, Rg) and §3.1 (RAD-RWKV6 Rm = Rd = calc(0.5, 1.8)) for the released sizes.
    [InlineData(3584, 96, 64, 416)]
    [InlineData(5120, 128, 96, 544)]
    [InlineData(8192, 160, 128, 800)]
    // The demo teacher and the golden fixtures.
    [InlineData(384, 32, 32, 64)]
    [InlineData(64, 32, 32, 32)]
    // Qwen2.5 0.5B / 1.5B / 3B (values checked with the Python expression).
    [InlineData(896, 64, 32, 128)]
    [InlineData(1536, 64, 64, 224)]
    [InlineData(2048, 96, 64, 256)]
    public void RanksFollowCalcLoraRank(int hidden, int wide, int value, int gate)
    {
        var v7 = LoraRanks.Resolve(StudentArchitecture.RadRwkv7, hidden);
        Assert.Equal(new LoraRanks(0, wide, wide, value, gate), v7);
        var v6 = LoraRanks.Resolve(StudentArchitecture.RadRwkv6, hidden);
        Assert.Equal(new LoraRanks(wide, wide, 0, 0, 0), v6);
    }

    [Fact]
    public void CalcLoraRankRoundsHalvesToEvenAsPythonDoes()
    {
        // C^1·m/32 = 0.5 → round 0 → max(1, 0) = 1; 1.5 → 2; 2.5 → 2 (Python's round()).
        Assert.Equal(32, LoraRanks.Calc(16, 1, 1));
        Assert.Equal(64, LoraRanks.Calc(48, 1, 1));
        Assert.Equal(64, LoraRanks.Calc(80, 1, 1));
        Assert.Equal(128, LoraRanks.Calc(112, 1, 1));
    }

    [Fact]
    public void OverridesReplaceOnlyTheirRank()
    {
        var ranks = LoraRanks.Resolve(StudentArchitecture.RadRwkv7, 3584, new LoraRankOverrides { Gate = 7, ValueResidualMix = 1 });
        Assert.Equal(new LoraRanks(0, 96, 96, 1, 7), ranks);
        Assert.Equal("Rw=96, Ra=96, Rv=1, Rg=7", ranks.Describe(StudentArchitecture.RadRwkv7));
        Assert.Equal(new LoraRanks(64, 128, 0, 0, 0), LoraRanks.Resolve(StudentArchitecture.RadRwkv6, 3584, new LoraRankOverrides { TokenShift = 64, Decay = 128 }));
    }

    [Theory]
    [InlineData(StudentArchitecture.RadRwkv7, "tokenshift", 32, "--lora-rank-tokenshift does not apply to rad-rwkv7")]
    [InlineData(StudentArchitecture.RadRwkv6, "iclr", 32, "--lora-rank-iclr does not apply to rad-rwkv6")]
    [InlineData(StudentArchitecture.RadRwkv6, "gate", 32, "--lora-rank-gate does not apply to rad-rwkv6")]
    [InlineData(StudentArchitecture.RadRwkv7, "decay", 0, "--lora-rank-decay 0: a LoRA rank must be between 1 and 65536")]
    [InlineData(StudentArchitecture.RadRwkv7, "decay", -3, "--lora-rank-decay -3")]
    [InlineData(StudentArchitecture.RadRwkv7, "value", 65537, "--lora-rank-value-residual-mix 65537")]
    public void InvalidOverridesAreUserErrors(StudentArchitecture architecture, string which, int rank, string message)
    {
        var overrides = which switch
        {
            "tokenshift" => new LoraRankOverrides { TokenShift = rank },
            "iclr" => new LoraRankOverrides { Iclr = rank },
            "gate" => new LoraRankOverrides { Gate = rank },
            "value" => new LoraRankOverrides { ValueResidualMix = rank },
            _ => new LoraRankOverrides { Decay = rank },
        };
        var error = Assert.Throws<RadladsException>(() => LoraRanks.Resolve(architecture, 64, overrides));
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DecayCurvesSpanTheSpecsRangeInEveryLayer()
    {
        for (int l = 0; l < 5; l++)
        {
            var d6 = InitRules.Rwkv6TimeDecay(l, 5, 128);
            Assert.Equal(-6f, d6[0]);
            Assert.Equal(-1f, d6[^1]);
            var w0 = InitRules.Rwkv7W0(l, 5, 128);
            Assert.Equal(-6.5f, w0[0]);
            Assert.Equal(-1.5f, w0[^1]);
            Assert.True(d6.Zip(d6.Skip(1)).All(p => p.First <= p.Second), "time_decay rises with the channel");
            Assert.True(w0.Zip(w0.Skip(1)).All(p => p.First <= p.Second), "w0 rises with the channel");
        }

        // Deeper layers have larger exponents, so their curves stay low for longer.
        Assert.True(InitRules.Rwkv6TimeDecay(4, 5, 128)[64] < InitRules.Rwkv6TimeDecay(0, 5, 128)[64]);
        Assert.True(InitRules.Rwkv7W0(4, 5, 128)[64] < InitRules.Rwkv7W0(0, 5, 128)[64]);
        // Middle layer, middle channel: −6 + 5·(64/127)^(0.7 + 1.3·0.5) and −7 + 5·(64/127)^(0.85 + 0.5^0.5) + 0.5.
        Assert.Equal((float)(-6 + (5 * Math.Pow(64 / 127.0, 1.35))), InitRules.Rwkv6TimeDecay(2, 5, 128)[64]);
        Assert.Equal((float)(-7 + (5 * Math.Pow(64 / 127.0, 0.85 + Math.Sqrt(0.5)))) + 0.5f, InitRules.Rwkv7W0(2, 5, 128)[64]);
    }

    [Fact]
    public void OneLayerAndOneChannelUseZeroForTheUndefinedRatios()
    {
        // l/(L−1) and n/(A−1) divide by zero when L = 1 or A = 1 (the trainer would raise); both are taken as 0.
        Assert.Equal(0, InitRules.LayerRatio(0, 1));
        Assert.Equal(0, InitRules.ChannelRatio(0, 1));
        Assert.Equal(InitRules.Rwkv6TimeDecay(0, 4, 64), InitRules.Rwkv6TimeDecay(0, 1, 64));
        Assert.Equal(InitRules.Rwkv7W0(0, 4, 64), InitRules.Rwkv7W0(0, 1, 64));
        Assert.Equal([-6f], InitRules.Rwkv6TimeDecay(2, 3, 1));
        Assert.Equal([-6.5f], InitRules.Rwkv7W0(2, 3, 1));
    }

    [Fact]
    public void EveryTensorHasItsOwnStreamFromTheSeedAndItsName()
    {
        ulong First(ulong seed, string name) => TensorRng.For(seed, name).NextUInt64();
        Assert.Equal(First(1, "model.layers.0.self_attn.w2"), First(1, "model.layers.0.self_attn.w2"));
        Assert.NotEqual(First(1, "model.layers.0.self_attn.w2"), First(2, "model.layers.0.self_attn.w2"));
        Assert.NotEqual(First(1, "model.layers.0.self_attn.w2"), First(1, "model.layers.1.self_attn.w2"));
        Assert.NotEqual(First(1, "model.layers.0.self_attn.w2"), First(1, "model.layers.0.self_attn.a2"));
    }

    [Fact]
    public void UniformDrawsStayInsideTheBounds()
    {
        var values = InitRules.Uniform(20000, -0.01, 0.01, new Xoshiro256StarStar(3));
        Assert.All(values, v => Assert.InRange(v, -0.01f, 0.01f));
        Assert.InRange(values.Average(v => (double)v), -2e-4, 2e-4);
        Assert.InRange(values.Min(), -0.01f, -0.0099f);
        Assert.InRange(values.Max(), 0.0099f, 0.01f);
    }
}
