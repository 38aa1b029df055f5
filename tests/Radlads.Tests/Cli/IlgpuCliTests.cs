using System.Globalization;
using Radlads.Cli;
using Radlads.Ilgpu;
using Radlads.Tests.Models;

namespace Radlads.Tests.Cli;

/// <summary>
/// `--backend ilgpu` and `--ilgpu-device` on the command line: all three architectures score and generate on ILGPU's
/// CPU simulator as on the CPU backend, the accelerator and kernel compile time are reported on one line, and the CUDA
/// accelerator runs or says what is missing.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuCliTests
{
    private static string Dir(string name) => Fixtures.Directory(name);

    private static double Perplexity(string output) =>
        double.Parse(output[(output.LastIndexOf("perplexity: ", StringComparison.Ordinal) + 12)..].Trim(), CultureInfo.InvariantCulture);

    private static string[] IlgpuNotes(string error) =>
        error.Split('\n').Where(l => l.StartsWith(CommonOptions.IlgpuNotePrefix, StringComparison.Ordinal)).ToArray();

    [Theory]
    [InlineData("qwen2")]
    [InlineData("rwkv6")]
    [InlineData("rwkv7")]
    public void ScoreOnTheIlgpuCpuSimulatorMatchesTheCpuBackend(string name)
    {
        string[] score = ["score", "--model", Dir(name), "--tokens", "1,5,9,30,200,7,7,12"];
        var ilgpu = CliRunner.Run([.. score, "--backend", "ilgpu", "--ilgpu-device", "cpu"]);
        Assert.True(ilgpu.Exit == 0, ilgpu.Error);
        var note = Assert.Single(IlgpuNotes(ilgpu.Error));
        Assert.Contains("ILGPU 1.5.3 cpu: ", note, StringComparison.Ordinal);
        Assert.Contains("kernels compiled in", note, StringComparison.Ordinal);
        var cpu = CliRunner.Run([.. score, "--backend", "cpu"]);
        Assert.Equal(0, cpu.Exit);
        double expected = Perplexity(cpu.Output);
        double actual = Perplexity(ilgpu.Output);
        Assert.True(Math.Abs(actual - expected) <= Tolerances.BackendPerplexityRelative * expected, $"perplexity {actual} on ILGPU, {expected} on the CPU");
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("rwkv6")]
    [InlineData("rwkv7")]
    public void GreedyGenerateOnTheIlgpuCpuSimulatorIsTheCpuBackends(string name)
    {
        string[] generate = ["generate", "--model", Dir(name), "--prompt", "The river", "--temperature", "0", "--max-tokens", "16"];
        var ilgpu = CliRunner.Run([.. generate, "--backend", "ilgpu", "--ilgpu-device", "cpu"]);
        Assert.True(ilgpu.Exit == 0, ilgpu.Error);
        Assert.Contains("[ilgpu]", ilgpu.Error, StringComparison.Ordinal);
        var cpu = CliRunner.Run([.. generate, "--backend", "cpu"]);
        Assert.Equal(0, cpu.Exit);
        Assert.Equal(cpu.Output, ilgpu.Output);
    }

    [Fact]
    public void IlgpuCudaRunsOrSaysWhatIsMissing()
    {
        string[] score = ["score", "--model", Dir("rwkv7"), "--tokens", "1,5,9,30,200,7,7,12"];
        var result = CliRunner.Run([.. score, "--backend", "ilgpu", "--ilgpu-device", "cuda"]);
        if (IlgpuAvailability.Unavailable(IlgpuDeviceKind.Cuda) is not null)
        {
            var line = CliRunner.AssertUserError(result);
            Assert.Contains("--backend ilgpu --ilgpu-device cuda: no CUDA device for ILGPU: ", line, StringComparison.Ordinal);
            return;
        }

        Assert.True(result.Exit == 0, result.Error);
        Assert.Contains("ILGPU 1.5.3 cuda: ", Assert.Single(IlgpuNotes(result.Error)), StringComparison.Ordinal);
        var cpu = CliRunner.Run([.. score, "--backend", "cpu"]);
        double expected = Perplexity(cpu.Output);
        double actual = Perplexity(result.Output);
        Assert.True(Math.Abs(actual - expected) <= Tolerances.BackendPerplexityRelative * expected, $"perplexity {actual} on ILGPU CUDA, {expected} on the CPU");
    }

    [Fact]
    public void AnUnknownIlgpuDeviceIsAUserError()
    {
        // System.CommandLine's own validation: exit code 1 and the accepted values listed.
        var (exit, _, error) = CliRunner.Run("score", "--model", Dir("rwkv7"), "--tokens", "1,2", "--backend", "ilgpu", "--ilgpu-device", "vulkan");
        Assert.Equal(1, exit);
        Assert.Contains("'vulkan'", error, StringComparison.Ordinal);
        Assert.Contains("'opencl'", error, StringComparison.Ordinal);
    }
}
