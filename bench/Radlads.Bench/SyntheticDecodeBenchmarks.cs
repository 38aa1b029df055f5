using BenchmarkDotNet.Attributes;
using Radlads.Cpu;
using Radlads.Models;

namespace Radlads.Bench;

/// <summary>
/// CPU decode at a real shape: one batch-1 step of Qwen2 and its RAD-RWKV6/7 students at the Qwen2.5-0.5B shape
/// (random bf16 weights, <see cref="SyntheticModel"/>) at a 1024-token context (Qwen2's KV cache fast-forwarded).
/// About 1 GB of weights per step: a memory-bandwidth measurement of the CPU backend.
/// </summary>
[MemoryDiagnoser]
public class SyntheticDecodeBenchmarks
{
    private CausalLM model = null!;
    private SequenceState state = null!;

    [Params("qwen2", "rwkv6", "rwkv7")]
    public string Arch { get; set; } = "rwkv7";

    [GlobalSetup]
    public void Setup()
    {
        var architecture = Arch switch { "qwen2" => Architecture.Qwen2, "rwkv6" => Architecture.Rwkv6Qwen2, _ => Architecture.Rwkv7Qwen2 };
        model = SyntheticModel.Create(SyntheticModel.Config("0.5b", architecture), new CpuBackend());
        state = model.CreateState();
        model.Forward(state, [1, 2, 3]);
        state.FastForward(1024, 8192, new Random(1)); // the cache grows (doubling) if a long run needs more
    }

    [Benchmark(Description = "0.5B decode step at 1k context (CPU)")]
    public float[] DecodeStep() => model.Forward(state, [42]);

    [GlobalCleanup]
    public void Cleanup()
    {
        state.Dispose();
        model.Dispose();
    }
}
