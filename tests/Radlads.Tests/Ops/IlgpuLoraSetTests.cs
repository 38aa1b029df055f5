using System.Globalization;
using Radlads.Checkpoints;
using Radlads.Ilgpu;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// ILGPU's two-launch <see cref="IOps.LoraSet"/> (LoraKernels) on the CPU simulator, where the conformance tests' shapes
/// split K over two groups at most (one multiprocessor of 8 threads): here the first launch is also made to aim for 64
/// groups, so K splits into many parts and the last group of each column tile reduces them through the counters. Each
/// case checks that the kernels ran (not the composed ops), hidden and y against float64, that a second call gives the
/// same bits (the counters were reset, the sums run in a fixed order), and that every counter is zero afterwards.
/// </summary>
[Collection(nameof(IlgpuCollection))]
public sealed class IlgpuLoraSetTests
{
    [Theory]
    [InlineData(DType.BF16, 64, "8x64 tanh rwkv7", null)]
    [InlineData(DType.F16, 64, "8x64 tanh rwkv7", 64)]
    [InlineData(DType.BF16, 896, "32x896 tanh rwkv7; 32x896 none add; 64x896 sigmoid none", null)]
    [InlineData(DType.BF16, 896, "32x896 tanh rwkv7; 32x896 none add; 64x896 sigmoid none", 64)]
    [InlineData(DType.F16, 896, "96x896 tanh rwkv7; 8x64 none add; 32x40 none add; 96x24 sigmoid rwkv6", 64)]
    [InlineData(DType.BF16, 64, "96x64 tanh rwkv6; 32x8 sigmoid add; 8x16 none none; 32x64 none rwkv7", 64)]
    [InlineData(DType.F16, 896, "8x896 none none", 3)]
    public void TheKernelsRunEveryBranchAndAgreeWithFloat64AndWithThemselves(DType dtype, int c, string spec, int? groups)
    {
        using var backend = new IlgpuBackend(IlgpuDeviceKind.Cpu, threadPerOutputKernels: false) { LoraDownGroups = groups };
        var data = new TestData(90 + c + spec.Length);
        var x = data.Normal(c);
        var parts = spec.Split(';');
        var owned = new List<IDisposable>();
        var set = new LoraBranch[parts.Length];
        var expected = new (double[] Hidden, double[] Y)[parts.Length];
        try
        {
            var xt = backend.FromFloats(x, 1, c);
            owned.Add(xt);
            for (int i = 0; i < parts.Length; i++)
            {
                var f = parts[i].Trim().Split(' ');
                var size = f[0].Split('x');
                int r = int.Parse(size[0], CultureInfo.InvariantCulture), m = int.Parse(size[1], CultureInfo.InvariantCulture);
                var inner = f[1] switch { "tanh" => LoraInner.Tanh, "sigmoid" => LoraInner.Sigmoid, _ => LoraInner.None };
                var outer = f[2] switch { "add" => LoraOuter.AddSigmoid, "rwkv7" => LoraOuter.Rwkv7Decay, "rwkv6" => LoraOuter.Rwkv6Decay, _ => LoraOuter.None };
                var a = new NativeWeight(data.Normal(c * r, 1f / MathF.Sqrt(c)), dtype, [c, r]);
                var b = new NativeWeight(data.Normal(r * m, 1f / MathF.Sqrt(r)), dtype, [r, m]);
                owned.Add(a);
                owned.Add(b);
                var offset = outer == LoraOuter.None ? null : data.Normal(m);
                Tensor Poisoned(int n)
                {
                    var t = backend.FromFloats(Enumerable.Repeat(float.NaN, n).ToArray(), 1, n);
                    owned.Add(t);
                    return t;
                }

                Tensor? offsetTensor = null;
                if (offset is not null)
                {
                    offsetTensor = backend.FromFloats(offset, m);
                    owned.Add(offsetTensor);
                }

                var at = backend.LoadWeight(a.Data);
                var bt = backend.LoadWeight(b.Data);
                owned.Add(at);
                owned.Add(bt);
                set[i] = new LoraBranch(at, bt, Poisoned(r), Poisoned(m), inner, outer, offsetTensor);
                var hidden = NaiveOps.MatMul(x, a.Values, null, 1, c, r, outIn: false);
                hidden = inner switch
                {
                    LoraInner.Tanh => NaiveOps.Tanh(hidden),
                    LoraInner.Sigmoid => NaiveOps.Sigmoid(hidden),
                    _ => hidden,
                };
                var z = NaiveOps.MatMul(hidden, NaiveOps.ToDouble(b.Values), null, 1, r, m, outIn: false);
                expected[i] = (hidden, outer switch
                {
                    LoraOuter.AddSigmoid => NaiveOps.AddSigmoid(z, NaiveOps.ToDouble(offset!)),
                    LoraOuter.Rwkv7Decay => NaiveOps.Rwkv7Decay(z, NaiveOps.ToDouble(offset!)),
                    LoraOuter.Rwkv6Decay => NaiveOps.Rwkv6Decay(z, NaiveOps.ToDouble(offset!)),
                    _ => z,
                });
            }

            backend.Ops.LoraSet(xt, set);
            Assert.Equal(parts.Length, backend.LoraKernelBranches);
            var first = set.Select(b => (Read(backend, b.Hidden), Read(backend, b.Y))).ToArray();
            for (int i = 0; i < parts.Length; i++)
            {
                Compare.Close(expected[i].Hidden, first[i].Item1, Tolerances.LoraSetRelative, Tolerances.LoraSetAbsolute, $"branch {i} hidden");
                Compare.Close(expected[i].Y, first[i].Item2, Tolerances.LoraSetRelative, Tolerances.LoraSetAbsolute, $"branch {i} y");
            }

            var counters = new int[IlgpuBackend.SplitCounterCount];
            backend.DownloadIds(backend.SplitCounters, counters);
            Assert.All(counters, v => Assert.Equal(0, v));
            backend.Ops.LoraSet(xt, set);
            for (int i = 0; i < parts.Length; i++)
            {
                Assert.Equal(first[i].Item1, Read(backend, set[i].Hidden));
                Assert.Equal(first[i].Item2, Read(backend, set[i].Y));
            }
        }
        finally
        {
            foreach (var d in owned)
            {
                d.Dispose();
            }
        }
    }

    [Fact]
    public void SeveralRowsOddRanksAndTwoDtypesTakeTheComposedOps()
    {
        using var backend = new IlgpuBackend(IlgpuDeviceKind.Cpu, threadPerOutputKernels: false);
        var data = new TestData(97);
        const int c = 64;
        using var a8 = new NativeWeight(data.Normal(c * 8, 0.1f), DType.BF16, [c, 8]);
        using var a12 = new NativeWeight(data.Normal(c * 12, 0.1f), DType.BF16, [c, 12]);
        using var b8 = new NativeWeight(data.Normal(8 * c, 0.1f), DType.BF16, [8, c]);
        using var b8f = new NativeWeight(data.Normal(8 * c, 0.1f), DType.F16, [8, c]);
        using var b12 = new NativeWeight(data.Normal(12 * c, 0.1f), DType.BF16, [12, c]);
        using var ta8 = backend.LoadWeight(a8.Data);
        using var ta12 = backend.LoadWeight(a12.Data);
        using var tb8 = backend.LoadWeight(b8.Data);
        using var tb8f = backend.LoadWeight(b8f.Data);
        using var tb12 = backend.LoadWeight(b12.Data);
        using var x3 = backend.FromFloats(data.Normal(3 * c), 3, c);
        using var x1 = backend.FromFloats(data.Normal(c), 1, c);
        using var h3 = backend.Allocate(3, 8);
        using var y3 = backend.Allocate(3, c);
        using var h1 = backend.Allocate(1, 12);
        using var y1 = backend.Allocate(1, c);
        using var h2 = backend.Allocate(1, 8);
        using var y2 = backend.Allocate(1, c);
        backend.Ops.LoraSet(x3, [new LoraBranch(ta8, tb8, h3, y3)]);
        backend.Ops.LoraSet(x1, [new LoraBranch(ta12, tb12, h1, y1), new LoraBranch(ta8, tb8f, h2, y2)]);
        Assert.Equal(0, backend.LoraKernelBranches);
        // A set mixing both: the rank-8 bf16 branch takes the kernels, the rank-12 one the composed ops.
        backend.Ops.LoraSet(x1, [new LoraBranch(ta12, tb12, h1, y1), new LoraBranch(ta8, tb8, h2, y2)]);
        Assert.Equal(1, backend.LoraKernelBranches);
    }

    private static float[] Read(IBackend backend, Tensor t)
    {
        var values = new float[t.ElementCount];
        backend.Download(t, values);
        return values;
    }
}
