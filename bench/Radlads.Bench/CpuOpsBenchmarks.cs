using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Radlads.Checkpoints;
using Radlads.Cpu;
using Radlads.Ops;

namespace Radlads.Bench;

/// <summary>
/// The CPU reference ops at real Qwen2.5-0.5B decode shapes (C 896, H 14, N 64, MLP 4864): the bf16 GEMV
/// that dominates decode, and the two recurrences for one token. Same op names as the kernels and tests.
/// </summary>
[MemoryDiagnoser]
public unsafe class CpuOpsBenchmarks
{
    private readonly CpuBackend backend = new();
    private byte* weightMemory;
    private Tensor weight = null!;
    private Tensor x = null!;
    private Tensor y = null!;
    private Tensor r = null!, w = null!, k = null!, v = null!, a = null!, b = null!, state = null!, o = null!;

    [Params(1, 16)]
    public int Tokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        const int C = 896, F = 4864, H = 14, N = 64;
        var random = new Random(1);
        weightMemory = (byte*)NativeMemory.Alloc((nuint)(F * C * 2));
        for (int i = 0; i < F * C; i++)
        {
            ((ushort*)weightMemory)[i] = Bf16.FromSingle((random.NextSingle() - 0.5f) * 0.05f);
        }

        weight = backend.LoadWeight(new TensorData("mlp.up_proj.weight", DType.BF16, [F, C], weightMemory, (long)F * C * 2));
        x = Fill(random, Tokens, C);
        y = backend.Allocate(Tokens, F);
        r = Fill(random, Tokens, H * N);
        k = Fill(random, Tokens, H * N);
        v = Fill(random, Tokens, H * N);
        a = Fill(random, Tokens, H * N);
        b = Fill(random, Tokens, H * N);
        w = backend.FromFloats(Enumerable.Repeat(0.9f, Tokens * H * N).ToArray(), Tokens, H * N);
        state = backend.Allocate(H, N, N);
        o = backend.Allocate(Tokens, H * N);
    }

    private Tensor Fill(Random random, int rows, int cols) =>
        backend.FromFloats(Enumerable.Range(0, rows * cols).Select(_ => random.NextSingle() - 0.5f).ToArray(), rows, cols);

    [Benchmark(Description = "matmul bf16 [T,896]x[4864,896]")]
    public void MatMul() => backend.Ops.MatMul(x, weight, null, y);

    [Benchmark(Description = "wkv6 H14 N64")]
    public void Wkv6() => backend.Ops.Wkv6(r, k, v, w, state, 0.125f, o);

    [Benchmark(Description = "wkv7 H14 N64")]
    public void Wkv7() => backend.Ops.Wkv7(r, w, k, v, a, b, state, o);

    [GlobalCleanup]
    public void Cleanup() => NativeMemory.Free(weightMemory);
}
