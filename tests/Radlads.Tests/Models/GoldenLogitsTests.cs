using System.Text.Json;
using Radlads.Cpu;
using Radlads.IO;
using Radlads.Models;
using Radlads.Tests.Ops;

namespace Radlads.Tests.Models;

/// <summary>
/// Whole-model logits against references nobody here wrote: Hugging Face transformers' Qwen2ForCausalLM for
/// qwen2, and a PyTorch float64 reference written from the spec for the RAD-RWKV types (tests/golden/README.md).
/// </summary>
public sealed class GoldenLogitsTests
{
    public static int[] Tokens(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Directory(name), "golden.json")));
        return doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void OnePassMatchesTheReference(string name)
    {
        var (reference, shape) = Npy.ReadFloat64(Path.Combine(Fixtures.Directory(name), "logits.npy"));
        var tokens = Tokens(name);
        using var model = CausalLM.Load(Fixtures.Directory(name), new CpuBackend());
        Assert.Equal([tokens.Length, model.Config.VocabSize], shape);
        using var state = model.CreateState();
        var logits = model.Forward(state, tokens, allLogits: true);
        double error = Compare.MaxErrorRelativeToMax(reference, logits);
        Assert.True(error <= Tolerances.GoldenLogitsRelativeToMax, $"{name}: max error {error:G3} × max |logit| exceeds {Tolerances.GoldenLogitsRelativeToMax}");
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void TokenByTokenDecodeMatchesTheReference(string name)
    {
        var (reference, _) = Npy.ReadFloat64(Path.Combine(Fixtures.Directory(name), "logits.npy"));
        var tokens = Tokens(name);
        using var model = CausalLM.Load(Fixtures.Directory(name), new CpuBackend());
        using var state = model.CreateState();
        var logits = tokens.SelectMany(t => model.Forward(state, [t])).ToArray();
        Assert.Equal(tokens.Length, state.Position);
        double error = Compare.MaxErrorRelativeToMax(reference, logits);
        Assert.True(error <= Tolerances.GoldenLogitsRelativeToMax, $"{name}: max error {error:G3} × max |logit|");
    }
}
