using ILGPU;
using ILGPU.Runtime;
using Radlads.Checkpoints;
using Radlads.Ilgpu.Kernels;
using Radlads.Ops;

namespace Radlads.Ilgpu;

/// <summary>
/// <see cref="IOps"/> on an ILGPU accelerator: each op checks its shapes as the CPU reference does, then queues one
/// kernel (rarely two or three) on the backend's stream. Split by op family like the CPU reference; this file holds
/// the row-wise and elementwise ops.
/// </summary>
internal sealed partial class IlgpuOps(IlgpuBackend backend) : IOps
{
    private IlgpuDevice Device => backend.Device;

    private KernelSet K => backend.Device.Kernels;

    private AcceleratorStream S => backend.Stream;

    private int GroupSize => backend.Device.GroupSize;

    private static IlgpuTensor I(Tensor t) => IlgpuBackend.Ilgpu(t);

    private static ArrayView<float> F(Tensor t) => I(t).Floats;

    /// <summary>A small parameter vector of any dtype, checked to hold <paramref name="length"/> elements.</summary>
    private WeightView Param(Tensor t, int length)
    {
        if (t.ElementCount != length)
        {
            throw new ArgumentException($"expected {length} elements, got {t.ShapeText}");
        }

        return I(t).Weight(Device);
    }

    /// <summary>The stand-in for an absent optional parameter (the kernel does not read it).</summary>
    private WeightView None => new() { F = Device.DummyFloats.View, H = Device.DummyHalves.View, DType = (int)DType.F32 };

    private static void SameCount(Tensor a, Tensor b, string op)
    {
        if (a.ElementCount != b.ElementCount)
        {
            throw new ArgumentException($"{op}: shapes {a.ShapeText} and {b.ShapeText} differ");
        }
    }

    private static void Fits(Tensor y, long count, string op)
    {
        if (y.ElementCount < count)
        {
            throw new ArgumentException($"{op}: output {y.ShapeText} holds fewer than {count} elements");
        }
    }

    private static void Float32(Tensor t, string op)
    {
        if (t.DType != DType.F32)
        {
            throw new InvalidOperationException($"{op}: tensor {t.ShapeText} is {t.DType}, not F32");
        }
    }

    /// <summary>The extent of an implicitly grouped launch, checked against ILGPU's 32-bit index.</summary>
    private static int Extent(long n, string op) =>
        n <= int.MaxValue ? (int)n : throw new NotSupportedException($"{op}: {n} elements exceed one ILGPU launch (2^31 − 1)");

    /// <summary>Groups × threads for an explicitly grouped launch.</summary>
    private KernelConfig Groups(long groups, string op) => new(Extent(groups, op), GroupSize);

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor y)
    {
        var t = I(table);
        int vocab = t.RowCount;
        int c = t.RowLength;
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)vocab)
            {
                throw new RadladsException($"token id {id} at position {i} is outside the model's vocabulary [0, {vocab})");
            }
        }

        Fits(y, (long)ids.Length * c, nameof(Embedding));
        Float32(y, nameof(Embedding));
        if (ids.Length == 0 || c == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        var view = backend.UploadIds(ids);
        K.Embedding(S, Extent((long)ids.Length * c, nameof(Embedding)), t.Weight(Device), view, c, F(y));
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y)
    {
        int c = x.RowLength;
        int rows = x.RowCount;
        if (weight.ElementCount < c)
        {
            throw new ArgumentException($"RmsNorm: weight {weight.ShapeText} is shorter than rows of {c}");
        }

        Fits(y, x.ElementCount, nameof(RmsNorm));
        if (rows == 0 || c == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        K.RmsNorm(S, Groups(rows, nameof(RmsNorm)), F(x), I(weight).Weight(Device), eps, c, F(y));
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        SameCount(a, b, nameof(Add));
        long n = a.ElementCount;
        Fits(y, n, nameof(Add));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Add(S, Extent(n, nameof(Add)), F(a), F(b), F(y));
        }
    }

    public void Multiply(Tensor a, Tensor b, Tensor y)
    {
        SameCount(a, b, nameof(Multiply));
        long n = a.ElementCount;
        Fits(y, n, nameof(Multiply));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Multiply(S, Extent(n, nameof(Multiply)), F(a), F(b), F(y));
        }
    }

    public void Scale(Tensor x, float s, Tensor y)
    {
        long n = x.ElementCount;
        Fits(y, n, nameof(Scale));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Scale(S, Extent(n, nameof(Scale)), F(x), s, F(y));
        }
    }

    public void Tanh(Tensor x, Tensor y)
    {
        long n = x.ElementCount;
        Fits(y, n, nameof(Tanh));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Tanh(S, Extent(n, nameof(Tanh)), F(x), F(y));
        }
    }

    public void Sigmoid(Tensor x, Tensor y)
    {
        long n = x.ElementCount;
        Fits(y, n, nameof(Sigmoid));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.Sigmoid(S, Extent(n, nameof(Sigmoid)), F(x), F(y));
        }
    }

    public void AddSigmoid(Tensor x, Tensor bias, Tensor y)
    {
        int c = x.RowLength;
        var b = Param(bias, c);
        long n = x.ElementCount;
        Fits(y, n, nameof(AddSigmoid));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.AddSigmoid(S, Extent(n, nameof(AddSigmoid)), F(x), b, c, F(y));
        }
    }

    public void SwiGlu(Tensor gate, Tensor up, Tensor y)
    {
        SameCount(gate, up, nameof(SwiGlu));
        long n = gate.ElementCount;
        Fits(y, n, nameof(SwiGlu));
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.SwiGlu(S, Extent(n, nameof(SwiGlu)), F(gate), F(up), F(y));
        }
    }

    public void GroupNorm(Tensor x, Tensor weight, Tensor bias, int groups, float eps, Tensor y)
    {
        int width = x.RowLength;
        if (groups <= 0 || width % groups != 0)
        {
            throw new ArgumentException($"GroupNorm: row of {width} does not split into {groups} groups");
        }

        int d = width / groups;
        var w = Param(weight, width);
        var b = Param(bias, width);
        Fits(y, x.ElementCount, nameof(GroupNorm));
        long items = (long)x.RowCount * groups;
        if (items == 0 || d == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        K.GroupNorm(S, Groups(items, nameof(GroupNorm)), F(x), w, b, groups, d, eps, F(y));
    }
}
