using System.Globalization;
using Radlads.Cuda;
using Radlads.Ilgpu;
using Radlads.Ilgpu.Kernels;
using Radlads.Ops;
using Radlads.Tests.Models;

namespace Radlads.Tests.Ops;

/// <summary>
/// µs per Sample at Qwen2.5's vocabulary (V = 151,936, one row) on ILGPU's CUDA accelerator (SamplingKernels: scan +
/// finish) next to the CUDA backend (sample_scan_f32 + sample_finish_f32) on the same GPU, for greedy, Qwen2.5's defaults
/// (T 0.7, top-k 20, top-p 0.8), top-k at the bound and top-p only (the whole-row path). "kernels" = the queued launches
/// alone, back to back (what a recorded decode step pays); "call" = the whole IOps.Sample (parameter upload, launches,
/// id download, synchronise). Runs only with RADLADS_BENCH=1 (the GPU machine); checks that both pick the same id.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuSampleBenchmarks
{
    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Fact]
    public void IlgpuSampleMicrosecondsAtQwenVocabulary()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("RADLADS_BENCH") == "1", "a GPU benchmark: set RADLADS_BENCH=1 to run it");
        Assert.SkipWhen(CudaAvailability.Unavailable is not null, CudaAvailability.Unavailable ?? "");
        Assert.SkipWhen(IlgpuAvailability.Unavailable(IlgpuDeviceKind.Cuda) is not null, IlgpuAvailability.Unavailable(IlgpuDeviceKind.Cuda) ?? "");
        const int v = 151936;
        using var cuda = new CudaBackend();
        using var ilgpu = new IlgpuBackend(IlgpuDeviceKind.Cuda);
        var cudaOps = (CudaOps)cuda.Ops;
        var ilgpuOps = (IlgpuOps)ilgpu.Ops;
        var values = new TestData(5).Normal(v, 3f);
        using var cudaLogits = cuda.FromFloats(values, 1, v);
        using var ilgpuLogits = ilgpu.FromFloats(values, 1, v);
        Report($"CUDA:  {cuda.Description}");
        Report($"ILGPU: {ilgpu.Description}");
        Report("| options | CUDA kernels µs | ILGPU kernels µs | CUDA call µs | ILGPU call µs | id |");
        Report("|---|---:|---:|---:|---:|---:|");
        (string Name, SampleRow Row)[] cases =
        [
            ("greedy", SampleRow.Greedy),
            ("T 0.7, top-k 20, top-p 0.8", new SampleRow(0.7f, 20, 0.8f, 0f, 0.37)),
            ("T 1, top-k 1024, top-p 0.95", new SampleRow(1f, 1024, 0.95f, 0f, 0.37)),
            ("T 0.7, top-p 0.8 (no top-k)", new SampleRow(0.7f, 0, 0.8f, 0f, 0.37)),
        ];
        foreach (var (name, row) in cases)
        {
            var cudaId = new int[1];
            var ilgpuId = new int[1];
            double cudaCall = Time(() => cudaOps.Sample(cudaLogits, v, [row], cudaId), cuda.Synchronize);
            double ilgpuCall = Time(() => ilgpuOps.Sample(ilgpuLogits, v, [row], ilgpuId), ilgpu.Synchronize);
            Assert.Equal(cudaId[0], ilgpuId[0]);

            // The launches alone: CUDA's parameters stay in its sample buffer from the last call; ILGPU's are uploaded once.
            ulong buffer = cuda.SampleBuffer(1);
            double cudaKernels = Time(() => cudaOps.QueueSample(cudaLogits, v, 1, buffer, buffer + 24), cuda.Synchronize);
            double[] parameters = [row.Temperature, row.TopK, row.TopP, row.MinP, row.Uniform];
            Assert.Equal(SamplingKernels.ParameterCount, parameters.Length);
            double ilgpuKernels;
            using (var scope = ilgpu.Enter())
            {
                var view = ilgpu.UploadSampleParameters(parameters);
                var codes = ilgpu.SampleIds(1);
                ilgpuKernels = Time(() => ilgpuOps.QueueSample(ilgpuLogits, v, 1, view, codes), ilgpu.Stream.Synchronize);
            }

            Report(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {cudaKernels * 1e6:F1} | {ilgpuKernels * 1e6:F1} | {cudaCall * 1e6:F1} | {ilgpuCall * 1e6:F1} | {ilgpuId[0]} |"));
        }
    }

    private static double Time(Action op, Action synchronize) => BenchTiming.MeanSeconds(op, synchronize);
}
