using BenchmarkDotNet.Attributes;
using Radlads.Checkpoints;
using Radlads.Cpu;
using Radlads.Models;

namespace Radlads.Bench;

/// <summary>
/// Safetensors load: opening the demo teacher's 37.8 MB checkpoint (memory map + header), reading every tensor's
/// bytes once (bf16 → f32 sum, so every page is touched: the file-to-memory rate once the page cache holds it),
/// and building the whole model on the CPU backend (weights alias the mapping; vectors are converted).
/// </summary>
[MemoryDiagnoser]
public class SafetensorsBenchmarks
{
    private readonly string directory = Repository.Path("models", "demo-teacher");

    [Benchmark(Description = "open checkpoint (map + header)")]
    public int Open()
    {
        using var checkpoint = Checkpoint.Open(directory);
        return checkpoint.Names.Count;
    }

    [Benchmark(Description = "open + read every tensor (bf16 -> f32 sum)")]
    public unsafe float ReadAll()
    {
        using var checkpoint = Checkpoint.Open(directory);
        float sum = 0;
        foreach (var name in checkpoint.Names)
        {
            var data = checkpoint.Get(name);
            if (data.DType != DType.BF16)
            {
                continue;
            }

            var values = new ReadOnlySpan<ushort>(data.Pointer, (int)data.ElementCount);
            for (int i = 0; i < values.Length; i++)
            {
                sum += Bf16.ToSingle(values[i]);
            }
        }

        return sum;
    }

    [Benchmark(Description = "CausalLM.Load on the CPU backend")]
    public long LoadModel()
    {
        using var model = CausalLM.Load(directory, new CpuBackend());
        return model.ParameterCount;
    }
}
