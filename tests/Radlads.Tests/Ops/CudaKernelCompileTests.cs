using Radlads.Cuda;
using Radlads.Native;

namespace Radlads.Tests.Ops;

/// <summary>
/// The kernel sources compile with the NVRTC found on this machine (no GPU needed) and land in the disk cache;
/// skipped where NVRTC is not installed. The same sources are embedded for published programs.
/// </summary>
public sealed class CudaKernelCompileTests
{
    private static Nvrtc NvrtcOrSkip()
    {
        try
        {
            return Nvrtc.Instance;
        }
        catch (CudaUnavailableException e)
        {
            Assert.Skip(e.Message);
            throw;
        }
    }

    [Fact]
    public void EveryKernelFileCompilesAndIsCachedOnDisk()
    {
        var nvrtc = NvrtcOrSkip();
        var (files, headers, _) = KernelSources.Load();
        Assert.Equal(["attention.cu", "backward.cu", "backward_matmul.cu", "backward_rwkv6.cu", "backward_rwkv7.cu", "backward_training.cu", "decode_batch.cu", "elementwise.cu", "embedding.cu", "lora.cu", "matmul.cu", "norms.cu", "prefetch.cu", "rwkv6.cu", "rwkv7.cu", "sampling.cu", "wkv7_chunked.cu"], files.Keys.Order(StringComparer.Ordinal));
        // Hopper when this NVRTC knows it (the GPU machine's card), else the newest it knows.
        int arch = nvrtc.SupportedArchitectures.Contains(90) ? 90 : nvrtc.SupportedArchitectures.Max();
        var cache = Path.Combine(Path.GetTempPath(), $"radlads-kernel-cache-{Guid.NewGuid():N}");
        try
        {
            foreach (var (name, source) in files)
            {
                var image = KernelCompiler.Compile(arch, name, source, headers, KernelLibrary.Options, cache);
                Assert.True(image.IsCubin, name);
                Assert.NotEmpty(image.Image);
                var again = KernelCompiler.Compile(arch, name, source, headers, KernelLibrary.Options, cache);
                Assert.StartsWith("(from cache", again.Log, StringComparison.Ordinal);
                Assert.Equal(image.Image, again.Image);
            }

            Assert.Equal(files.Count, Directory.GetFiles(cache, "*.cubin").Length);
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    // The GEMV tuning knobs a RADLADS_NVRTC_DEFINES sweep sets must compile at the values a sweep tries.
    [Theory]
    [InlineData("-DGEMV_UNROLL=8")]
    [InlineData("-DGEMV_MIN_BLOCKS=8")]
    [InlineData("-DGEMV_UNROLL=2 -DGEMV_MIN_BLOCKS=6")]
    public void TheGemvTuningMacrosCompile(string defines)
    {
        var nvrtc = NvrtcOrSkip();
        var (files, headers, _) = KernelSources.Load();
        int arch = nvrtc.SupportedArchitectures.Contains(90) ? 90 : nvrtc.SupportedArchitectures.Max();
        var cache = Path.Combine(Path.GetTempPath(), $"radlads-kernel-cache-{Guid.NewGuid():N}");
        try
        {
            string[] options = [.. KernelLibrary.Options, .. defines.Split(' ')];
            var image = KernelCompiler.Compile(arch, "matmul.cu", files["matmul.cu"], headers, options, cache);
            Assert.NotEmpty(image.Image);
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    [Fact]
    public void ACompileErrorNamesTheFileAndShowsTheLog()
    {
        var nvrtc = NvrtcOrSkip();
        var e = Assert.Throws<CudaException>(() =>
            nvrtc.Compile("extern \"C\" __global__ void broken(float* y) { y[0] = undeclared; }", "broken.cu", [], ["-default-device"], cubin: false));
        Assert.Contains("nvrtcCompileProgram(broken.cu)", e.Message, StringComparison.Ordinal);
        Assert.Contains("undeclared", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheFusedDecodeKernelsAreExportedUnderTheNamesTheHostLoads()
    {
        // Kernels.cs looks these up by name at backend start; a typo would only show on the GPU machine.
        var nvrtc = NvrtcOrSkip();
        var (files, headers, _) = KernelSources.Load();
        int arch = nvrtc.SupportedArchitectures.Contains(90) ? 90 : nvrtc.SupportedArchitectures.Max();
        var cache = Path.Combine(Path.GetTempPath(), $"radlads-kernel-cache-{Guid.NewGuid():N}");
        try
        {
            string[] gateUp = [.. new[] { "f32", "f16", "bf16" }.SelectMany(d => new[] { 1, 2, 4, 8 }.Select(w => $"gate_up_swiglu_{d}_vec{w}")),
                .. new[] { 1, 2, 4, 8 }.Select(w => $"gemv_group_lora_down_bf16_vec{w}")];
            string[] attention = [.. Kernels.TensorCoreAttentionHeadDims.Select(n => $"attention_prefill_tc_{n}"), "attention_kv_to_bf16"];
            foreach (var (file, names) in new[] { ("rwkv7.cu", new[] { "rwkv7_keys_vres_f32" }), ("matmul.cu", gateUp), ("attention.cu", attention) })
            {
                var image = KernelCompiler.Compile(arch, file, files[file], headers, KernelLibrary.Options, cache);
                string text = System.Text.Encoding.Latin1.GetString(image.Image);
                Assert.All(names, name => Assert.Contains(name + "\0", text, StringComparison.Ordinal));
            }
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    [Fact]
    public void TheEmbeddedSourcesAreTheShippedFiles()
    {
        var (files, headers, origin) = KernelSources.Load();
        var (embedded, embeddedHeaders, _) = KernelSources.LoadEmbedded();
        Assert.EndsWith("kernels", origin, StringComparison.Ordinal);
        Assert.Equal(["common.cuh", "lora_down.cuh"], headers.Select(h => h.Name));
        Assert.Equal(headers, embeddedHeaders);
        Assert.Equal(files.OrderBy(p => p.Key, StringComparer.Ordinal), embedded.OrderBy(p => p.Key, StringComparer.Ordinal));
    }
}
