using BenchmarkDotNet.Attributes;
using Radlads.Cpu;
using Radlads.Models;

namespace Radlads.Bench;

/// <summary>One decode step of the embedded tiny model on the CPU backend: the fixed per-token overhead of the runtime.</summary>
[MemoryDiagnoser]
public class DecodeBenchmarks
{
    private CausalLM model = null!;
    private SequenceState state = null!;

    [GlobalSetup]
    public void Setup()
    {
        model = CausalLM.Load(Path.Combine(AppContext.BaseDirectory, "models", "tiny-random-rwkv7"), new CpuBackend());
        state = model.CreateState();
        model.Forward(state, [1, 2, 3]);
    }

    [Benchmark(Description = "tiny rwkv7 decode step (CPU)")]
    public float[] DecodeStep() => model.Forward(state, [42]);

    [GlobalCleanup]
    public void Cleanup()
    {
        state.Dispose();
        model.Dispose();
    }
}
