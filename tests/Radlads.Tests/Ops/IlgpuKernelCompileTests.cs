using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime.Cuda;
using Radlads.Ilgpu;
using Radlads.Ilgpu.Kernels;

namespace Radlads.Tests.Ops;

/// <summary>
/// Every ILGPU kernel compiles to PTX for Hopper with ILGPU's own backend, on any machine (no GPU or driver needed), so
/// the GPU run is not the first time the PTX backend sees them; and the CPU accelerator reports its compile time.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuKernelCompileTests
{
    /// <summary>
    /// Every kernel method: implicitly grouped (first parameter Index1D) or explicitly grouped; a generic kernel once per
    /// weight dtype it is loaded for.
    /// </summary>
    public static IEnumerable<(MethodInfo Method, bool Implicit)> Kernels() =>
        new[]
        {
            typeof(ElementwiseKernels), typeof(SequenceKernels), typeof(GroupedKernels), typeof(GemvKernels), typeof(TiledKernels),
            typeof(AttentionKernels), typeof(ProbeKernels), typeof(SamplingKernels), typeof(FusedKernels), typeof(LoraKernels),
        }
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => m.ReturnType == typeof(void))
            .SelectMany(m => !m.IsGenericMethodDefinition ? [m]
                : m.DeclaringType == typeof(SamplingKernels) ? [m.MakeGenericMethod(typeof(PtxFusedMultiplyAdd))]
                : new[] { typeof(F32Words), typeof(F16Words), typeof(Bf16Words) }.Select(w => m.MakeGenericMethod(w)))
            .Select(m => (m, m.GetParameters().FirstOrDefault()?.ParameterType == typeof(Index1D)));

    [Fact]
    public void EveryKernelCompilesToPtxForSm90WithoutAGpu()
    {
        var kernels = Kernels().ToArray();
        Assert.Equal(KernelSet.Count, kernels.Length);
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2).EnableAlgorithms());
        using var backend = new PTXBackend(context, CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null!);
        foreach (var (method, isImplicit) in kernels)
        {
            var entry = isImplicit
                ? EntryPointDescription.FromImplicitlyGroupedKernel(method)
                : EntryPointDescription.FromExplicitlyGroupedKernel(method);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, default);
            Assert.Contains(".entry", compiled.PTXAssembly, StringComparison.Ordinal);
            // MathF.Tanh would become tanh.approx.f32 (about 11 bits): the kernels use KernelMath.Tanh instead.
            Assert.DoesNotContain("tanh.approx", compiled.PTXAssembly, StringComparison.Ordinal);
            // A .NET method ILGPU cannot lower (e.g. Math.FusedMultiplyAdd) becomes an unresolved .extern the driver rejects.
            Assert.DoesNotContain(".extern", compiled.PTXAssembly, StringComparison.Ordinal);
            if (Environment.GetEnvironmentVariable("RADLADS_DUMP_PTX") is { } dump)
            {
                File.WriteAllText(Path.Combine(dump, method.Name + ".ptx"), compiled.PTXAssembly);
            }
        }
    }

    [Fact]
    public void TheDecodeGemvReadsWeightsWithSixteenByteLoadsAndNoDtypeBranch()
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2).EnableAlgorithms());
        using var backend = new PTXBackend(context, CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null!);
        foreach (var words in new[] { typeof(F32Words), typeof(F16Words), typeof(Bf16Words) })
        {
            var method = typeof(GemvKernels).GetMethod(nameof(GemvKernels.GemvOutIn))!.MakeGenericMethod(words);
            var ptx = ((PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(method), default)).PTXAssembly;
            // Weights and x: ld.global.v4 (16 bytes a lane). The only 16-bit loads left are the bias's (one per row, bf16
            // or f16 branch); the per-element weight path had one in each of the unrolled loop's eight-weight chunks.
            Assert.Contains("ld.global.v4.b32", ptx, StringComparison.Ordinal);
            int sixteenBit = ptx.Split("ld.global.b16").Length - 1 + ptx.Split("ld.global.u16").Length - 1;
            Assert.True(sixteenBit <= 2, $"{words.Name}: {sixteenBit} 16-bit loads in the GEMV");
        }
    }

    // The in×out GEMV and the LoRA kernels share GemvKernels.InOutRows (inlined): its weight loads must stay 16 bytes;
    // so must the fused gate/up GEMV's.
    [Theory]
    [InlineData(typeof(GemvKernels), nameof(GemvKernels.GemvInOut))]
    [InlineData(typeof(LoraKernels), nameof(LoraKernels.LoraDown))]
    [InlineData(typeof(LoraKernels), nameof(LoraKernels.LoraUp))]
    [InlineData(typeof(FusedKernels), nameof(FusedKernels.GateUpSwiGlu))] // reads W_gate or W_up as GemvOutIn reads W
    public void TheInOutKernelsReadWeightsWithSixteenByteLoads(Type kernels, string name)
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2).EnableAlgorithms());
        using var backend = new PTXBackend(context, CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null!);
        var method = kernels.GetMethod(name)!.MakeGenericMethod(typeof(Bf16Words));
        var ptx = ((PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(method), default)).PTXAssembly;
        Assert.Contains("ld.global.v4.b32", ptx, StringComparison.Ordinal);
    }

    [Fact]
    public void TheCpuAcceleratorReportsItsKernelCompileTime()
    {
        using var backend = new IlgpuBackend(IlgpuDeviceKind.Cpu);
        Assert.Equal(IlgpuDeviceKind.Cpu, backend.Kind);
        Assert.True(backend.KernelCompileTime > TimeSpan.Zero);
        Assert.Contains($"{KernelSet.Count} kernels compiled in", backend.Description, StringComparison.Ordinal);
        TestContext.Current.TestOutputHelper?.WriteLine(backend.Description);
    }

    [Fact]
    public void ResolverTriesTheVersionedDriverLibraryAfterTheUnversionedName()
    {
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(["libcuda.so", "libcuda.so.1"], NativeLibraries.Candidates("cuda"));
            Assert.Equal(["libOpenCL.so", "libOpenCL.so.1"], NativeLibraries.Candidates("OpenCL"));
        }

        // The names ILGPU 1.5.3 actually imports: if an ILGPU update renames them, the resolver must follow.
        var imports = typeof(Context).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => m.GetCustomAttribute<System.Runtime.InteropServices.DllImportAttribute>()?.Value)
            .OfType<string>().Distinct().Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["OpenCL", "cuda", "nvcuda", "opencl"], imports);
    }
}
