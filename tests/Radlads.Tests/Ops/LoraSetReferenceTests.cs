using Radlads.Checkpoints;
using Radlads.Cpu;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// On the CPU reference, <see cref="IOps.LoraSet"/> is exactly the ops the mixers ran before it existed (MatMul in×out,
/// Tanh/Sigmoid, MatMul in×out, AddSigmoid/Rwkv7Decay/Rwkv6Decay in place): bit for bit, so CPU results did not move.
/// </summary>
public sealed class LoraSetReferenceTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void CpuLoraSetIsTheComposedOpsBitForBit(int t)
    {
        using var cpu = new CpuBackend();
        var ops = cpu.Ops;
        var data = new TestData(70 + t);
        const int c = 96;
        (int R, int M, LoraInner Inner, LoraOuter Outer)[] specs =
            [(16, 96, LoraInner.Tanh, LoraOuter.Rwkv7Decay), (8, 96, LoraInner.None, LoraOuter.AddSigmoid),
             (24, 40, LoraInner.Sigmoid, LoraOuter.Rwkv6Decay), (32, 96, LoraInner.Sigmoid, LoraOuter.None)];
        using var weights = new Disposables();
        var x = weights.Add(cpu.FromFloats(data.Normal(t * c), t, c));
        var set = new LoraBranch[specs.Length];
        var composed = new Tensor[specs.Length];
        for (int i = 0; i < specs.Length; i++)
        {
            var (r, m, inner, outer) = specs[i];
            var a = weights.Add(new NativeWeight(data.Normal(c * r, 0.1f), DType.BF16, [c, r]));
            var b = weights.Add(new NativeWeight(data.Normal(r * m, 0.2f), DType.BF16, [r, m]));
            var down = weights.Add(cpu.LoadWeight(a.Data));
            var up = weights.Add(cpu.LoadWeight(b.Data));
            var offset = outer == LoraOuter.None ? null : weights.Add(cpu.FromFloats(data.Normal(m), m));
            set[i] = new LoraBranch(down, up, weights.Add(cpu.Allocate(t, r)), weights.Add(cpu.Allocate(t, m)), inner, outer, offset);

            var hidden = weights.Add(cpu.Allocate(t, r));
            ops.MatMul(x, down, null, hidden, WeightLayout.InOut);
            if (inner == LoraInner.Tanh)
            {
                ops.Tanh(hidden, hidden);
            }
            else if (inner == LoraInner.Sigmoid)
            {
                ops.Sigmoid(hidden, hidden);
            }

            var y = composed[i] = weights.Add(cpu.Allocate(t, m));
            ops.MatMul(hidden, up, null, y, WeightLayout.InOut);
            switch (outer)
            {
                case LoraOuter.AddSigmoid: ops.AddSigmoid(y, offset!, y); break;
                case LoraOuter.Rwkv7Decay: ops.Rwkv7Decay(y, offset!, y); break;
                case LoraOuter.Rwkv6Decay: ops.Rwkv6Decay(y, offset!, y); break;
            }
        }

        ops.LoraSet(x, set);
        for (int i = 0; i < specs.Length; i++)
        {
            Assert.Equal(((CpuTensor)composed[i]).Floats.ToArray(), ((CpuTensor)set[i].Y).Floats.ToArray());
        }
    }

    private sealed class Disposables : IDisposable
    {
        private readonly List<IDisposable> items = [];

        public T Add<T>(T item)
            where T : IDisposable
        {
            items.Add(item);
            return item;
        }

        public void Dispose()
        {
            foreach (var item in items)
            {
                item.Dispose();
            }
        }
    }
}
