using Radlads.Cpu;
using Radlads.IO;
using Radlads.Models;
using Radlads.Tests.Ops;

namespace Radlads.Tests.Models;

/// <summary>
/// What rounding the GEMM activations to bf16 (the CUDA backend's cuBLASLt path) does to whole-model logits, on the
/// CPU: against the golden references and against fp32 token-by-token decode. These measure the bounds the CUDA
/// model tests use for that path (<see cref="Tolerances.Bf16GemmLogitsRelativeToMax"/>).
/// </summary>
public sealed class Bf16GemmEmulationTests
{
    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void PrefillWithBf16ActivationsStaysWithinItsBound(string name)
    {
        var (reference, _) = Npy.ReadFloat64(Path.Combine(Fixtures.Directory(name), "logits.npy"));
        var tokens = GoldenLogitsTests.Tokens(name);
        using var emulated = CausalLM.Load(Fixtures.Directory(name), new Bf16GemmEmulation(minRows: 2));
        using var exact = CausalLM.Load(Fixtures.Directory(name), new CpuBackend());
        using var prefillState = emulated.CreateState();
        var prefill = emulated.Forward(prefillState, tokens, allLogits: true);
        using var stepState = exact.CreateState();
        var steps = tokens.SelectMany(t => exact.Forward(stepState, [t])).ToArray();

        double golden = Compare.MaxErrorRelativeToMax(reference, prefill);
        double decode = Compare.MaxErrorRelativeToMax(steps.Select(v => (double)v).ToArray(), prefill);
        CudaModelTests.Report($"{name}: bf16-activation prefill vs golden {golden:G3}, vs fp32 decode {decode:G3} × max |logit|");
        // The rounding must show (else the emulation did nothing) and stay inside the bound.
        Assert.True(golden > Tolerances.ConsistencyRelativeToMax, $"{name}: {golden:G3}: bf16 rounding changed nothing");
        Assert.True(golden <= Tolerances.Bf16GemmLogitsRelativeToMax, $"{name}: vs golden {golden:G3} × max |logit|");
        Assert.True(decode <= Tolerances.Bf16GemmLogitsRelativeToMax, $"{name}: vs decode {decode:G3} × max |logit|");
    }
}
