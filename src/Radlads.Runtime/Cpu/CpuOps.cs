using Radlads.Ops;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Cpu;

/// <summary>
/// The CPU reference implementation of <see cref="IOps"/>. Split by op family into partial files;
/// this one holds the row-wise and elementwise ops.
/// </summary>
public sealed partial class CpuOps : IOps
{
    // Work below this many multiply-adds runs on one thread: thread hand-off costs more than it saves.
    private const long ParallelThreshold = 1 << 16;

    internal static CpuTensor Cpu(Tensor t) => (CpuTensor)t;

    internal static Span<float> F(Tensor t) => Cpu(t).Floats;

    internal static void SameCount(Tensor a, Tensor b, string op)
    {
        if (a.ElementCount != b.ElementCount)
        {
            throw new ArgumentException($"{op}: shapes {a.ShapeText} and {b.ShapeText} differ");
        }
    }

    /// <summary>Runs body(i) for i in [0, count), in parallel when the total work is worth it.</summary>
    internal static void For(int count, long workPerItem, Action<int> body)
    {
        if (count <= 1 || count * workPerItem < ParallelThreshold)
        {
            for (int i = 0; i < count; i++)
            {
                body(i);
            }
        }
        else
        {
            Parallel.For(0, count, body);
        }
    }

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor y)
    {
        var t = Cpu(table);
        int vocab = t.RowCount;
        int c = t.RowLength;
        var output = F(y);
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)vocab)
            {
                throw new RadladsException($"token id {id} at position {i} is outside the model's vocabulary [0, {vocab})");
            }

            t.ReadRow(id, output.Slice(i * c, c));
        }
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y)
    {
        int c = x.RowLength;
        int rows = x.RowCount;
        var w = new float[c];
        Cpu(weight).ReadRange(0, w);
        var xs = Cpu(x);
        var ys = Cpu(y);
        For(rows, c, r =>
        {
            var xr = xs.Floats.Slice(r * c, c);
            var yr = ys.Floats.Slice(r * c, c);
            float inv = 1f / MathF.Sqrt((TensorPrimitives.SumOfSquares(xr) / c) + eps);
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        });
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        SameCount(a, b, nameof(Add));
        TensorPrimitives.Add(F(a), F(b), F(y));
    }

    public void Multiply(Tensor a, Tensor b, Tensor y)
    {
        SameCount(a, b, nameof(Multiply));
        TensorPrimitives.Multiply(F(a), F(b), F(y));
    }

    public void Scale(Tensor x, float s, Tensor y) => TensorPrimitives.Multiply(F(x), s, F(y));

    /// <summary>
    /// tanh, vectorised by TensorPrimitives except where |x| &lt; 1/16: there TensorPrimitives.Tanh has an absolute error
    /// of ~6e-8 (tanh(0) = −5.96e-8), a large relative error for the small LoRA activations of a freshly converted
    /// student (zero at init), so those elements take the scalar <see cref="MathF.Tanh"/>, exact at 0 like tanhf on CUDA.
    /// </summary>
    public void Tanh(Tensor x, Tensor y)
    {
        const float Small = 0.0625f;
        const int Chunk = 256;
        var xs = F(x);
        var ys = F(y);
        SameCount(x, y, nameof(Tanh));
        Span<float> input = stackalloc float[Chunk];
        for (int start = 0; start < xs.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, xs.Length - start);
            var saved = input[..n];
            xs.Slice(start, n).CopyTo(saved); // y may be x
            var output = ys.Slice(start, n);
            TensorPrimitives.Tanh(saved, output);
            for (int i = 0; i < n; i++)
            {
                if (MathF.Abs(saved[i]) < Small)
                {
                    output[i] = MathF.Tanh(saved[i]);
                }
            }
        }
    }

    public void Sigmoid(Tensor x, Tensor y) => TensorPrimitives.Sigmoid(F(x), F(y));

    public void AddSigmoid(Tensor x, Tensor bias, Tensor y)
    {
        int c = x.RowLength;
        var b = Row0(bias, c);
        var xs = F(x);
        var ys = F(y);
        for (int r = 0; r < x.RowCount; r++)
        {
            var yr = ys.Slice(r * c, c);
            TensorPrimitives.Add(xs.Slice(r * c, c), b, yr);
            TensorPrimitives.Sigmoid(yr, yr);
        }
    }

    public void SwiGlu(Tensor gate, Tensor up, Tensor y)
    {
        SameCount(gate, up, nameof(SwiGlu));
        var g = F(gate);
        var u = F(up);
        var o = F(y);
        // silu(g) = g·σ(g); computed into o first so that o may alias gate or up.
        var s = new float[g.Length];
        TensorPrimitives.Sigmoid(g, s);
        TensorPrimitives.Multiply(s, g, s);
        TensorPrimitives.Multiply(s, u, o);
    }

    public void GroupNorm(Tensor x, Tensor weight, Tensor bias, int groups, float eps, Tensor y)
    {
        int width = x.RowLength;
        if (width % groups != 0)
        {
            throw new ArgumentException($"GroupNorm: row of {width} does not split into {groups} groups");
        }

        int d = width / groups;
        var w = Row0(weight, width);
        var b = Row0(bias, width);
        var xs = F(x);
        var ys = F(y);
        for (int r = 0; r < x.RowCount; r++)
        {
            for (int g = 0; g < groups; g++)
            {
                int start = (r * width) + (g * d);
                var xg = xs.Slice(start, d);
                var yg = ys.Slice(start, d);
                double mean = 0;
                foreach (var v in xg)
                {
                    mean += v;
                }

                mean /= d;
                double variance = 0;
                foreach (var v in xg)
                {
                    variance += (v - mean) * (v - mean);
                }

                variance /= d;
                float inv = (float)(1.0 / Math.Sqrt(variance + eps));
                for (int i = 0; i < d; i++)
                {
                    yg[i] = ((float)(xg[i] - mean) * inv * w[(g * d) + i]) + b[(g * d) + i];
                }
            }
        }
    }

    /// <summary>A small parameter vector as fp32 (converted if the weight is bf16/f16).</summary>
    internal static ReadOnlySpan<float> Row0(Tensor t, int length)
    {
        if (t.ElementCount != length)
        {
            throw new ArgumentException($"expected {length} elements, got {t.ShapeText}");
        }

        var c = Cpu(t);
        if (c.IsFloat32)
        {
            return c.Float32Range(0, length);
        }

        var buffer = new float[length];
        c.ReadRange(0, buffer);
        return buffer;
    }
}
