using System.Globalization;
using Radlads.Checkpoints;
using Radlads.Cuda;
using Radlads.Ilgpu;
using Radlads.Ops;
using Radlads.Tests.Models;

namespace Radlads.Tests.Ops;

/// <summary>
/// Issue #5's comparison, at op level: the ops that dominate decode (T = 1) and prefill (T = 512) of a RAD-RWKV7 layer and
/// of the teacher's attention, at Qwen2.5-0.5B and 7B shapes, on ILGPU's CUDA accelerator and on our hand-written CUDA
/// backend, on the same GPU. Runs only with RADLADS_BENCH=1 (the GPU machine); prints one table row per op.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuVsCudaBenchmarks
{
    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    private static double Time(Action op, Action synchronize) => BenchTiming.MeanSeconds(op, synchronize, maxCalls: 500);

    private sealed class Side(IBackend backend, Action synchronize) : IDisposable
    {
        private readonly List<IDisposable> owned = [];

        public IBackend Backend => backend;

        public Action Synchronize => synchronize;

        public Tensor Own(Tensor t)
        {
            owned.Add(t);
            return t;
        }

        public Tensor Random(Random random, params int[] shape)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var values = new float[n];
            for (long i = 0; i < n; i++)
            {
                values[i] = (random.NextSingle() - 0.5f) * 0.2f;
            }

            return Own(backend.FromFloats(values, shape));
        }

        public void Dispose()
        {
            foreach (var d in owned)
            {
                d.Dispose();
            }

            backend.Dispose();
        }
    }

    [Fact]
    public void DecodeAndPrefillOpsAtHalfBAnd7BShapes()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("RADLADS_BENCH") == "1", "a GPU benchmark: set RADLADS_BENCH=1 to run it");
        Assert.SkipWhen(CudaAvailability.Unavailable is not null, CudaAvailability.Unavailable ?? "");
        Assert.SkipWhen(IlgpuAvailability.Unavailable(IlgpuDeviceKind.Cuda) is not null, IlgpuAvailability.Unavailable(IlgpuDeviceKind.Cuda) ?? "");
        var cudaBackend = new CudaBackend();
        var ilgpuBackend = new IlgpuBackend(IlgpuDeviceKind.Cuda, threadPerOutputKernels: null, baseline: false);
        var baselineBackend = new IlgpuBackend(IlgpuDeviceKind.Cuda, threadPerOutputKernels: null, baseline: true);
        using var cuda = new Side(cudaBackend, cudaBackend.Synchronize);
        using var ilgpu = new Side(ilgpuBackend, ilgpuBackend.Synchronize);
        using var baseline = new Side(baselineBackend, baselineBackend.Synchronize);
        Report($"CUDA:  {cudaBackend.Description}");
        Report($"ILGPU: {ilgpuBackend.Description}");
        // The floor under every op: ILGPU's host cost per launch (empty kernel), and one tiny op on each backend.
        double launch = ilgpuBackend.MeasureLaunchMicroseconds(5000);
        using var one = cuda.Backend.FromFloats([1f], 1);
        using var oneIlgpu = ilgpu.Backend.FromFloats([1f], 1);
        double cudaTiny = Time(() => cuda.Backend.Ops.Add(one, one, one), cuda.Synchronize);
        double ilgpuTiny = Time(() => ilgpu.Backend.Ops.Add(oneIlgpu, oneIlgpu, oneIlgpu), ilgpu.Synchronize);
        Report(string.Create(CultureInfo.InvariantCulture,
            $"launch overhead: ILGPU empty kernel {launch:F2} µs per launch; Add of one element: CUDA {cudaTiny * 1e6:F2} µs, ILGPU {ilgpuTiny * 1e6:F2} µs per op"));
        Report("| shape | op | T | CUDA µs | ILGPU µs | ILGPU / CUDA | ILGPU baseline µs | baseline / ILGPU |");
        Report("|---|---|---:|---:|---:|---:|---:|---:|");
        // (name, C, F, H, N, KV heads, layers)
        (string Name, int C, int F, int H, int N, int Kv, int Layers)[] shapes =
            [("0.5B", 896, 4864, 14, 64, 2, 24), ("7B", 3584, 18944, 28, 128, 4, 28)];
        foreach (var s in shapes)
        {
            using var up = new NativeWeight(new float[(long)s.F * s.C], DType.BF16, s.F, s.C);
            using var down = new NativeWeight(new float[(long)s.C * s.F], DType.BF16, s.C, s.F);
            using var square = new NativeWeight(new float[(long)s.C * s.C], DType.BF16, s.C, s.C);
            // The low-rank gate's factors (the largest LoRA of a RAD-RWKV7 layer), stored in×out.
            int gateRank = Radlads.Models.SyntheticModel.LoraRank(s.C, 0.8, 0.6);
            using var loraDown = new NativeWeight(new float[(long)s.C * gateRank], DType.BF16, s.C, gateRank);
            using var loraUp = new NativeWeight(new float[(long)gateRank * s.C], DType.BF16, gateRank, s.C);
            double[] decodeLayer = [0, 0, 0];
            foreach (int t in new[] { 1, 512 })
            {
                var rows = new List<(string Op, double Cuda, double Ilgpu, double Baseline)>();
                void Measure(string op, Func<Side, Action> setup)
                {
                    var c = setup(cuda);
                    var i = setup(ilgpu);
                    var b = setup(baseline);
                    rows.Add((op, Time(c, cuda.Synchronize), Time(i, ilgpu.Synchronize), Time(b, baseline.Synchronize)));
                }

                Measure($"matmul bf16 [T,{s.C}]·[{s.F},{s.C}]ᵀ (MLP up)", side =>
                {
                    var w = side.Own(side.Backend.LoadWeight(up.Data));
                    var x = side.Random(new Random(1), t, s.C);
                    var y = side.Own(side.Backend.Allocate(t, s.F));
                    return () => side.Backend.Ops.MatMul(x, w, null, y);
                });
                Measure($"matmul bf16 [T,{s.F}]·[{s.C},{s.F}]ᵀ (MLP down)", side =>
                {
                    var w = side.Own(side.Backend.LoadWeight(down.Data));
                    var x = side.Random(new Random(2), t, s.F);
                    var y = side.Own(side.Backend.Allocate(t, s.C));
                    return () => side.Backend.Ops.MatMul(x, w, null, y);
                });
                Measure($"matmul bf16 [T,{s.C}]·[{s.C},{s.C}]ᵀ (r/k/v/o)", side =>
                {
                    var w = side.Own(side.Backend.LoadWeight(square.Data));
                    var x = side.Random(new Random(3), t, s.C);
                    var y = side.Own(side.Backend.Allocate(t, s.C));
                    return () => side.Backend.Ops.MatMul(x, w, null, y);
                });
                Measure($"wkv7 H{s.H} N{s.N}", side =>
                {
                    var random = new Random(4);
                    var r = side.Random(random, t, s.H * s.N);
                    var w = side.Own(side.Backend.FromFloats(Enumerable.Repeat(0.9f, t * s.H * s.N).ToArray(), t, s.H * s.N));
                    var k = side.Random(random, t, s.H * s.N);
                    var v = side.Random(random, t, s.H * s.N);
                    var a = side.Random(random, t, s.H * s.N);
                    var b = side.Random(random, t, s.H * s.N);
                    var state = side.Own(side.Backend.Allocate(s.H, s.N, s.N));
                    var y = side.Own(side.Backend.Allocate(t, s.H * s.N));
                    return () => side.Backend.Ops.Wkv7(r, w, k, v, a, b, state, y);
                });
                Measure($"rms_norm C{s.C}", side =>
                {
                    var x = side.Random(new Random(5), t, s.C);
                    var g = side.Random(new Random(6), s.C);
                    var y = side.Own(side.Backend.Allocate(t, s.C));
                    return () => side.Backend.Ops.RmsNorm(x, g, 1e-6f, y);
                });
                int context = 1024;
                Measure($"attention H{s.H}/{s.Kv} N{s.N}, {context} positions (teacher)", side =>
                {
                    var random = new Random(7);
                    var q = side.Random(random, t, s.H * s.N);
                    var kc = side.Random(random, context, s.Kv * s.N);
                    var vc = side.Random(random, context, s.Kv * s.N);
                    var y = side.Own(side.Backend.Allocate(t, s.H * s.N));
                    int start = context - t;
                    return () => side.Backend.Ops.Attention(q, kc, vc, s.H, s.Kv, s.N, start, y);
                });
                Measure($"lora bf16 [T,{s.C}]·[{s.C},{gateRank}] (gate down, in×out)", side =>
                {
                    var w = side.Own(side.Backend.LoadWeight(loraDown.Data));
                    var x = side.Random(new Random(8), t, s.C);
                    var y = side.Own(side.Backend.Allocate(t, gateRank));
                    return () => side.Backend.Ops.MatMul(x, w, null, y, WeightLayout.InOut);
                });
                Measure($"lora bf16 [T,{gateRank}]·[{gateRank},{s.C}] (gate up, in×out)", side =>
                {
                    var w = side.Own(side.Backend.LoadWeight(loraUp.Data));
                    var x = side.Random(new Random(9), t, gateRank);
                    var y = side.Own(side.Backend.Allocate(t, s.C));
                    return () => side.Backend.Ops.MatMul(x, w, null, y, WeightLayout.InOut);
                });
                foreach (var (op, c, i, b) in rows)
                {
                    Report(string.Create(CultureInfo.InvariantCulture, $"| {s.Name} | {op} | {t} | {c * 1e6:F1} | {i * 1e6:F1} | {i / c:F2} | {b * 1e6:F1} | {b / i:F2} |"));
                }

                if (t == 1)
                {
                    // A RAD-RWKV7 layer's big matmuls: r, k, v, o (C×C), MLP gate + up (F×C) and down; plus wkv7, two norms
                    // and four LoRAs (counted at the gate's rank, the largest).
                    double Layer(Func<(string Op, double Cuda, double Ilgpu, double Baseline), double> of) =>
                        (4 * of(rows[2])) + (2 * of(rows[0])) + of(rows[1]) + of(rows[3]) + (2 * of(rows[4])) + (4 * (of(rows[6]) + of(rows[7])));
                    decodeLayer[0] = Layer(r => r.Cuda);
                    decodeLayer[1] = Layer(r => r.Ilgpu);
                    decodeLayer[2] = Layer(r => r.Baseline);
                }
            }

            Report(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Name} | decode estimate: {s.Layers} × (4 r/k/v/o + gate + up + down + wkv7 + 2 norms + 4 LoRAs), no head | 1 | {decodeLayer[0] * s.Layers * 1e6:F0} | {decodeLayer[1] * s.Layers * 1e6:F0} | {decodeLayer[1] / decodeLayer[0]:F2} | {decodeLayer[2] * s.Layers * 1e6:F0} | {decodeLayer[2] / decodeLayer[1]:F2} |"));
        }
    }
}
