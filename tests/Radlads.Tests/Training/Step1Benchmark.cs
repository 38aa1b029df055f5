using System.Diagnostics;
using System.Globalization;
using Radlads.Conversion;
using Radlads.Cpu;
using Radlads.Ops;
using Radlads.Tests.Convert;
using Radlads.Tests.Models;
using Radlads.Training;

namespace Radlads.Tests.Training;

/// <summary>
/// Tokens/s of <see cref="Step1Objective.ForwardBackward"/> on the demo teacher (C 384, 8 layers) and its converted
/// students. Runs only with RADLADS_BENCH=1; prints one line per case (the NOTES record the CPU numbers).
/// </summary>
public sealed class Step1Benchmark
{
    private static void Report(string line)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        Console.Error.WriteLine(line);
    }

    [Theory]
    [InlineData("cpu", StudentArchitecture.RadRwkv7, 1, 512)]
    [InlineData("cpu", StudentArchitecture.RadRwkv6, 1, 512)]
    [InlineData("cpu", StudentArchitecture.RadRwkv7, 4, 128)]
    [InlineData("cuda", StudentArchitecture.RadRwkv7, 8, 512)]
    [InlineData("cuda", StudentArchitecture.RadRwkv6, 8, 512)]
    public void ForwardBackwardTokensPerSecond(string backendName, StudentArchitecture architecture, int windows, int length)
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("RADLADS_BENCH") == "1", "a benchmark: set RADLADS_BENCH=1 to run it");
        IBackend backend;
        if (backendName == "cuda")
        {
            Assert.SkipWhen(CudaAvailability.Unavailable is not null, CudaAvailability.Unavailable ?? "");
            backend = CudaAvailability.Backend();
            Assert.SkipWhen(backend.BackwardOps is null, "the CUDA backend has no backward ops yet");
        }
        else
        {
            backend = new CpuBackend();
        }

        string teacher = Path.Combine(Fixtures.RepositoryRoot, "models", "demo-teacher");
        using var student = new ConvertedStudent(teacher, architecture);
        using var objective = Step1Objective.Open(backend, teacher, student.Directory);
        var data = new Ops.TestData(401);
        objective.ForwardBackward(data.Ints(windows * length, objective.TeacherConfig.VocabSize), windows, length); // warm-up
        const int Calls = 3;
        var clock = Stopwatch.StartNew();
        double loss = 0;
        for (int i = 0; i < Calls; i++)
        {
            loss = objective.ForwardBackward(data.Ints(windows * length, objective.TeacherConfig.VocabSize), windows, length);
        }

        double seconds = clock.Elapsed.TotalSeconds / Calls;
        Report(string.Create(CultureInfo.InvariantCulture,
            $"step1 {backend.Description} {architecture} {windows}x{length}: {seconds * 1000:F0} ms per call, {windows * length / seconds:F0} tokens/s, loss {loss:F4}, {objective.ParameterCount:N0} trained parameters"));
        Assert.True(double.IsFinite(loss));
    }
}
