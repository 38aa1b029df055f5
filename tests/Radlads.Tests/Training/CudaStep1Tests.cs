using System.Globalization;
using System.Text.RegularExpressions;
using Radlads.Cpu;
using Radlads.Cuda;
using Radlads.Ops;
using Radlads.Tests.Models;
using Radlads.Tests.Ops;
using Radlads.Training;

namespace Radlads.Tests.Training;

/// <summary>
/// <see cref="Step1Objective"/> on the CUDA backend against the CPU reference, and its device memory. Skips without a
/// GPU, and while the CUDA backend has no backward ops (issue #7's CUDA kernels).
/// </summary>
public sealed class CudaStep1Tests
{
    private static CudaBackend TrainingBackend()
    {
        var backend = CudaAvailability.Backend();
        if (((IBackend)backend).BackwardOps is null)
        {
            backend.Dispose();
            Assert.Skip("the CUDA backend has no backward ops yet");
        }

        // fp32 activations throughout, as the CPU reference: cuBLASLt would round the teacher's activations to bf16
        // from two rows (a real run takes that path; its bound is Tolerances.Bf16GemmLogitsRelativeToMax, not this test's).
        backend.GemmMinRows = int.MaxValue;
        backend.AttentionTensorCores = false; // the teacher's prefill attention in fp32 too (its tensor-core path rounds to bf16)
        return backend;
    }

    private static float[] Read(IBackend backend, Tensor t)
    {
        var values = new float[t.ElementCount];
        backend.Download(t, values);
        return values;
    }

    [Theory]
    [InlineData("rwkv6", 2, 9)]
    [InlineData("rwkv6-rope", 3, 1)]
    [InlineData("rwkv7", 2, 9)]
    [InlineData("rwkv7-groupnorm", 1, 40)]
    public void LossAndGradientsMatchTheCpu(string student, int windows, int length)
    {
        using var cuda = TrainingBackend();
        using var copy = new FixtureCopy(student);
        copy.EditConfig(text => Regex.Replace(text, "\"rope_theta\": [0-9.e+]+", "\"rope_theta\": 1000000.0"));
        var tokens = new TestData(311).Ints(windows * length, 400);
        var cpu = new CpuBackend();
        using var reference = Step1Objective.Open(cpu, Fixtures.Directory("qwen2"), copy.Directory);
        using var objective = Step1Objective.Open(cuda, Fixtures.Directory("qwen2"), copy.Directory);
        double expected = reference.ForwardBackward(tokens, windows, length);
        double loss = objective.ForwardBackward(tokens, windows, length);
        Assert.Equal(expected, loss, expected * Tolerances.CudaStep1Relative);
        for (int i = 0; i < reference.Parameters.Count; i++)
        {
            var e = Read(cpu, reference.Parameters[i].Grad).Select(v => (double)v).ToArray();
            Compare.Gradient(e, Read(cuda, objective.Parameters[i].Grad), Tolerances.CudaStep1Relative, Tolerances.CudaStep1Relative,
                $"{student} d{reference.Parameters[i].Name} (CUDA vs CPU)");
        }
    }

    /// <summary>Opening, one step and Dispose leave the device's free memory where it was (after the block cache is emptied).</summary>
    [Fact]
    public void DisposeGivesTheDeviceMemoryBack()
    {
        using var cuda = TrainingBackend();
        using var copy = new FixtureCopy("rwkv7");
        copy.EditConfig(text => Regex.Replace(text, "\"rope_theta\": [0-9.e+]+", "\"rope_theta\": 1000000.0"));
        var tokens = new TestData(312).Ints(64, 400);
        void Cycle()
        {
            using var objective = Step1Objective.Open(cuda, Fixtures.Directory("qwen2"), copy.Directory);
            objective.ForwardBackward(tokens, 2, 32);
        }

        Cycle(); // kernels compiled and loaded once
        cuda.ReleaseCachedMemory();
        long before = cuda.Device.MemoryInfo().Free;
        Cycle();
        cuda.ReleaseCachedMemory();
        long after = cuda.Device.MemoryInfo().Free;
        CudaModelTests.Report(string.Create(CultureInfo.InvariantCulture, $"free before {before:N0} B, after {after:N0} B"));
        Assert.True(Math.Abs(before - after) < (2L << 20), $"device free memory moved from {before:N0} to {after:N0} bytes across Open/ForwardBackward/Dispose");
    }
}
